"""Discovery pieces that need no pretrained model: config checks, CompILE's segmentation,
and the per-alpha metric names."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs.grid import PRESETS, discover_config
from irl.control import compile as compile_
from irl.discovery import Discoverer, gate_entropy_ramp, kl_ramp, per_alpha_metrics, validate


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_is_valid(preset):
    validate(discover_config(preset))


def test_the_paper_preset_is_the_spec():
    c = discover_config("paper")
    assert (c.train.steps, c.data.batch, c.optim.lr, c.optim.weight_decay) == (64_000, 512, 1e-3, 0.03)
    assert tuple(c.alphas) == (0.0, 0.05, 0.1, 0.17, 0.3, 0.5, 1.0)
    m = c.metacontroller
    assert (m.latent_dim, m.gru_size, m.embed_size, m.encoder_hidden, m.decoder_hidden, m.rank) == (8, 32, 32, 64, 32, 16)
    assert c.compile.max_segments == 4


@pytest.mark.parametrize("change, message", [
    (lambda c: c.update(methods=("metacontroller", "nope")), "methods"),
    (lambda c: c.update(alphas=(0.1, -1.0)), "alphas"),
    (lambda c: c.update(best_alpha=0.123), "best_alpha"),
    (lambda c: c.update(methods=("beta1",)), "beta1.alpha"),
    (lambda c: c.train.update(steps=5), "train.steps"),
    (lambda c: c.data.update(max_episode_steps=501), "max_episode_steps"),
    (lambda c: c.metacontroller.update(latent_dim=0), "latent_dim"),
    (lambda c: c.compile.update(max_segments=1), "max_segments"),
    (lambda c: c.optim.update(schedule="linear"), "schedule"),
    (lambda c: c.train.update(gate_entropy=-1.0), "gate_entropy"),
    (lambda c: c.eval.update(prior_episodes=-1), "prior_episodes"),
    (lambda c: c.eval.code_oracle.update(steps=-1), "code_oracle"),
    (lambda c: c.eval.code_oracle.update(steps=5, batch=0), "code_oracle"),
    (lambda c: c.eval.code_oracle.update(steps=5, restarts=0), "code_oracle"),
    (lambda c: c.metacontroller.update(encoder_inputs="past"), "encoder_inputs"),
    (lambda c: c.metacontroller.update(sequence_embedding="pooled"), "sequence_embedding"),
    (lambda c: c.train.update(action_targets="mean"), "action_targets"),
    (lambda c: c.data.update(drop_prefixes=1.5), "drop_prefixes"),
    (lambda c: c.train.update(view_window=-1), "view_window"),
    (lambda c: c.train.update(view_weight=-0.5), "view_weight"),
    (lambda c: c.train.update(init_frozen_steps=-1), "init_frozen_steps"),
    (lambda c: c.train.update(init_frozen_steps=2), "init_from"),
])
def test_bad_configs_fail_before_any_compute(change, message, tmp_path):
    config = discover_config("tiny")
    change(config)
    with pytest.raises(ValueError, match=message):
        Discoverer(config, tmp_path / "no-such-run")  # the config check comes before loading


def test_rows_longer_than_the_models_world_fail_before_the_model_is_loaded(tmp_path):
    (tmp_path / "config.json").write_text('{"env": "grid_pinpad"}')  # no checkpoint: loading would fail
    config = discover_config("tiny")
    config.data.max_episode_steps = 101  # the grid's T is 100 (the ant's 500)
    with pytest.raises(ValueError, match="<= 100 on grid_pinpad"):
        Discoverer(config, tmp_path)


@pytest.mark.parametrize("change, message", [
    (lambda c: c.train.update(action_targets="expert_policy"), "grid's expert"),
    (lambda c: c.data.update(drop_prefixes=0.5), "grid's expert episodes"),
    (lambda c: c.train.update(view_window=4), "transformer's attention"),
    (lambda c: c.train.update(view_symmetry=True), "grid's board"),
])
def test_options_that_need_the_grids_expert_are_refused_on_the_ant(change, message, tmp_path):
    (tmp_path / "config.json").write_text('{"env": "ant_pinpad"}')  # refused before the model is loaded
    config = discover_config("tiny")
    change(config)
    with pytest.raises(ValueError, match=message):
        Discoverer(config, tmp_path)


def test_a_warm_start_from_a_folder_without_a_metacontroller_is_named(tmp_path):
    config = discover_config("tiny")
    config.init_from = str(tmp_path / "nothing-here")
    with pytest.raises(FileNotFoundError, match="init_from"):
        Discoverer(config, tmp_path)  # before the pretrained model is loaded


def test_a_missing_pretraining_run_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="pretraining"):
        Discoverer(discover_config("tiny"), tmp_path)


def test_the_kl_ramps_in_after_its_free_steps_and_the_gate_entropy_after_the_kl():
    train = discover_config("small").train  # 200 KL-free steps, then 300-step ramps
    steps = jnp.array([0, 199, 349, 499, 649, 799, 1199])
    np.testing.assert_allclose(kl_ramp(train, steps), [0, 0, 0.5, 1, 1, 1, 1], atol=1e-6)
    np.testing.assert_allclose(gate_entropy_ramp(train, steps), [0, 0, 0, 0, 0.5, 1, 1], atol=1e-6)
    train.update(kl_free_steps=0, kl_warmup_steps=0)  # the paper's constant alpha: both on from the start
    np.testing.assert_allclose(kl_ramp(train, steps), 1.0)
    np.testing.assert_allclose(gate_entropy_ramp(train, steps), 1.0)


def test_per_alpha_metrics_split_the_alpha_axis():
    metrics = {"loss": np.zeros((2, 3, 2)), "kl": np.arange(12.0).reshape(2, 3, 2)}
    out = per_alpha_metrics(metrics, (0.0, 0.5))
    assert out["loss"].shape == (2, 3, 2)
    np.testing.assert_array_equal(out["kl/alpha=0.5"], metrics["kl"][..., 1])
    assert set(per_alpha_metrics({"loss": np.zeros((2, 3, 1))}, (0.1,))) == {"loss"}


CFG = compile_.CompileConfig(width=16, obs_size=10, latent_dim=3, hidden=8, max_segments=4, decoder_hidden=8, rank=2)


def compile_inputs(seed=0):
    params = compile_.init(jax.random.key(seed), CFG)
    params["boundary"]["out"]["w"] = params["boundary"]["out"]["w"] * 30  # boundaries spread over the episode
    obs = jax.random.bernoulli(jax.random.key(seed + 1), 0.3, (5, 20, 10)).astype(jnp.uint8)
    mask = jnp.arange(20)[None] < jnp.array([[20], [12], [7], [3], [16]])
    return params, obs, mask


@pytest.mark.parametrize("sample, hard", [(True, False), (True, True), (False, True)])
def test_compile_segments_cover_each_step_once_and_codes_follow_them(sample, hard):
    params, obs, mask = compile_inputs()
    seg = jax.jit(compile_.segment, static_argnames=("cfg", "sample", "hard"))(
        params, CFG, obs, mask, jax.random.key(2), sample=sample, hard=hard)
    np.testing.assert_allclose(seg.weights.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(seg.boundaries.sum(-1), 1.0, atol=1e-5)
    assert np.all(np.asarray(seg.kl) >= 0)
    if hard:
        switch = np.asarray(seg.switch)
        assert set(np.unique(switch)) <= {0.0, 1.0} and np.all(switch[~np.asarray(mask)] == 0)
        assert np.all(switch[:, 0] == 1) and np.all(switch.sum(1) <= CFG.max_segments)
        # z is constant between switches: a piecewise-constant code, one per segment
        z = np.asarray(seg.z)
        for b in range(z.shape[0]):
            for t in range(1, int(mask[b].sum())):
                if not switch[b, t]:
                    np.testing.assert_allclose(z[b, t], z[b, t - 1], atol=1e-5)
            # boundaries arrive in order: each at or after the previous one
            positions = np.argmax(np.asarray(seg.boundaries[b]), -1)
            assert np.all(np.diff(positions) >= 0)


def test_compile_reads_raw_observations_non_causally():
    params, obs, mask = compile_inputs(3)
    changed = obs.at[:, -1].set(1 - obs[:, -1])
    run = jax.jit(compile_.segment, static_argnames=("cfg", "sample", "hard"))
    a = run(params, CFG, obs, mask, jax.random.key(0), sample=False)
    b = run(params, CFG, changed, mask, jax.random.key(0), sample=False)
    assert not np.allclose(a.z[0, 0], b.z[0, 0])  # the first segment's code sees the whole episode
