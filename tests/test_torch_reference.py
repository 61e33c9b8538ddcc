"""The PyTorch twin timed by benchmarks/train_speed.py --torch computes the same function as
our transformer, so the speed comparison is between equal models. Runs where torch is
installed (it is not a dependency of irl)."""

import jax
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from benchmarks.torch_reference import Transformer, loss_fn, random_batch  # noqa: E402
from irl.models.base import make_base_model  # noqa: E402
from irl.pretraining import grid_obs_nll  # noqa: E402


def _load(module, weight, bias=None, transpose=True):
    with torch.no_grad():
        w = torch.from_numpy(np.array(weight))
        module.weight.copy_(w.T if transpose else w)
        if bias is not None:
            module.bias.copy_(torch.from_numpy(np.array(bias)))


def test_torch_twin_equals_our_transformer():
    shape = dict(n_layers=2, width=32, n_heads=2, head_dim=16, mlp_width=48, n_buckets=8, max_distance=16)
    model = make_base_model("transformer", encoder="linear", **shape)
    params = jax.tree.map(np.asarray, model.init(jax.random.key(0)))
    params["rel_bias"] = np.asarray(jax.random.normal(jax.random.key(1), params["rel_bias"].shape))  # not all zeros
    twin = Transformer(fused_attention=False, **shape)
    _load(twin.embed, params["embed"]["w"], params["embed"]["b"])
    _load(twin.rel_bias, params["rel_bias"], transpose=False)
    _load(twin.ln_f, params["ln_f"]["scale"], params["ln_f"]["bias"], transpose=False)
    _load(twin.action_head, params["action_head"]["w"], params["action_head"]["b"])
    _load(twin.obs_head, params["obs_head"]["w"], params["obs_head"]["b"])
    for i, block in enumerate(twin.blocks):
        p = jax.tree.map(lambda w: w[i], params["layers"])
        _load(block.ln1, p["ln1"]["scale"], p["ln1"]["bias"], transpose=False)
        _load(block.ln2, p["ln2"]["scale"], p["ln2"]["bias"], transpose=False)
        for name in ("wq", "wk", "wv", "wo"):
            _load(getattr(block, name), p[name])
        _load(block.w1, p["w1"], p["b1"])
        _load(block.w2, p["w2"], p["b2"])

    obs, actions, next_obs = random_batch(2, 24, "cpu")
    ours_actions, ours_obs = model.forward(params, obs.numpy())
    with torch.no_grad():
        twin_actions, twin_obs = twin(obs)
        twin_fused = Transformer(fused_attention=True, **shape)
        twin_fused.load_state_dict(twin.state_dict())
        fused_actions, _ = twin_fused(obs)
        loss = loss_fn(twin, obs, actions, next_obs).item()
    np.testing.assert_allclose(twin_actions.numpy(), ours_actions, atol=1e-4)
    np.testing.assert_allclose(twin_obs.numpy(), ours_obs, atol=1e-4)
    np.testing.assert_allclose(fused_actions.numpy(), ours_actions, atol=1e-4)
    log_p = jax.nn.log_softmax(ours_actions)
    ours_loss = -np.take_along_axis(np.asarray(log_p), actions.numpy()[..., None], -1).mean()
    ours_loss += 0.01 * np.asarray(grid_obs_nll(ours_obs, next_obs.numpy())).mean()
    assert loss == pytest.approx(float(ours_loss), rel=1e-4)
