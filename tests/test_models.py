import jax
import jax.numpy as jnp
import numpy as np
import pytest

from irl.models import encoders, hawk
from irl.models import transformer as tf
from irl.models.common import dense

T = 12
MODELS = {
    "transformer": (tf, tf.TransformerConfig(obs_size=20, n_actions=4, n_layers=3, width=32, n_heads=2, head_dim=16,
                                             mlp_width=48, n_buckets=8, max_distance=16, init_scale=1.0)),
    "hawk": (hawk, hawk.HawkConfig(obs_size=20, n_actions=4, n_layers=3, width=32, n_heads=4, mlp_width=48,
                                   init_scale=1.0)),
}


@pytest.fixture(scope="module", params=list(MODELS))
def setup(request):
    model, cfg = MODELS[request.param]
    params = model.init(jax.random.key(0), cfg)
    if "rel_bias" in params:  # a non-zero relative bias, so that the tests exercise it
        params["rel_bias"] = jax.random.normal(jax.random.key(1), params["rel_bias"].shape)
    obs = jax.random.bernoulli(jax.random.key(2), 0.3, (2, T, cfg.obs_size)).astype(jnp.uint8)
    return model, cfg, params, obs


def test_upper_of_lower_equals_forward_at_every_layer(setup):
    model, cfg, params, obs = setup
    full = jax.jit(lambda p, o: model.forward(p, o, cfg))(params, obs)
    for layer in range(cfg.n_layers + 1):
        split = model.upper(params, model.lower(params, obs, layer, cfg), layer, cfg)
        for a, b in zip(split, full):
            np.testing.assert_allclose(a, b, atol=1e-5)


def test_stepwise_with_cache_equals_full_forward(setup):
    model, cfg, params, obs = setup
    full_actions, full_obs = model.forward(params, obs, cfg)
    for layer in (0, 1, cfg.n_layers):

        @jax.jit
        def rollout(params, obs):
            def body(cache, o):
                e, cache = model.lower_step(params, cache, o, layer, cfg)
                out, cache = model.upper_step(params, cache, e, layer, cfg)
                return cache, out

            cache = model.init_cache(cfg, (obs.shape[0],), T)
            return jax.lax.scan(body, cache, jnp.swapaxes(obs, 0, 1))[1]

        actions, next_obs = rollout(params, obs)
        assert float(jnp.max(jnp.abs(jnp.swapaxes(actions, 0, 1) - full_actions))) <= 1e-4
        assert float(jnp.max(jnp.abs(jnp.swapaxes(next_obs, 0, 1) - full_obs))) <= 1e-4


def test_a_restarted_cache_row_equals_a_fresh_sequence_even_after_the_ring_wraps(setup):
    """Rows of one step-wise cache restart at their own times (row 0 at 5 and 9, row 1 at 4):
    each then sees only its new sequence, as the packed full forward does with segment ids,
    although the cache holds fewer slots (8) than the tokens written (12)."""
    model, cfg, params, obs = setup
    segments = jnp.array([[0] * 5 + [1] * 4 + [2] * 3, [0] * 4 + [1] * 8])
    restarts = (segments[:, 1:] != segments[:, :-1]).T  # [T-1, 2]: a new sequence at token t+1
    full_actions, _ = model.forward(params, obs, cfg, segments)

    @jax.jit
    def rollout(params, obs):
        def body(cache, xs):
            o, restart = xs
            cache = model.restart(cache, restart)
            e, cache = model.lower_step(params, cache, o, 1, cfg)
            (actions, _), cache = model.upper_step(params, cache, e, 1, cfg)
            return cache, actions

        restart = jnp.concatenate([jnp.zeros((1, 2), bool), restarts])
        return jax.lax.scan(body, model.init_cache(cfg, (2,), 8), (jnp.swapaxes(obs, 0, 1), restart))[1]

    np.testing.assert_allclose(jnp.swapaxes(rollout(params, obs), 0, 1), full_actions, atol=1e-4)
    unpacked, _ = model.forward(params, obs, cfg)  # and the restart matters
    assert float(jnp.max(jnp.abs(unpacked[0, 5:] - full_actions[0, 5:]))) > 1e-3


def test_causal_output_at_t_ignores_later_inputs(setup):
    model, cfg, params, obs = setup
    changed = obs.at[:, 7:].set(1 - obs[:, 7:])
    a, _ = model.forward(params, obs, cfg)
    b, _ = model.forward(params, changed, cfg)
    np.testing.assert_allclose(a[:, :7], b[:, :7], atol=1e-6)
    assert float(jnp.max(jnp.abs(a[:, 7:] - b[:, 7:]))) > 1e-3


def test_attention_window_limits_the_reach_of_every_layer_and_steps_match_the_full_pass():
    import dataclasses
    _, cfg = MODELS["transformer"]
    window, layer = 3, 2
    windowed = dataclasses.replace(cfg, window=window)
    params = tf.init(jax.random.key(0), cfg)
    params["rel_bias"] = jax.random.normal(jax.random.key(1), params["rel_bias"].shape)
    obs = jax.random.bernoulli(jax.random.key(2), 0.3, (2, T, cfg.obs_size)).astype(jnp.uint8)
    # after `layer` blocks, token t has seen tokens back to t - layer * (window - 1) and no further
    reach = layer * (window - 1)
    t = T - 1
    changed_far = obs.at[:, t - reach - 1].set(1 - obs[:, t - reach - 1])
    changed_near = obs.at[:, t - reach].set(1 - obs[:, t - reach])
    e = tf.lower(params, obs, layer, windowed)
    np.testing.assert_allclose(tf.lower(params, changed_far, layer, windowed)[:, t], e[:, t], atol=1e-6)
    assert float(jnp.max(jnp.abs(tf.lower(params, changed_near, layer, windowed)[:, t] - e[:, t]))) > 1e-4
    unlimited = tf.lower(params, changed_far, layer, cfg)[:, t] - tf.lower(params, obs, layer, cfg)[:, t]
    assert float(jnp.max(jnp.abs(unlimited))) > 1e-4
    # a window as long as the sequence is the whole past
    np.testing.assert_allclose(tf.forward(params, obs, dataclasses.replace(cfg, window=T))[0],
                               tf.forward(params, obs, cfg)[0], atol=1e-6)
    # one token at a time with the cache gives the windowed full pass
    def body(cache, o):
        e, cache = tf.lower_step(params, cache, o, layer, windowed)
        return tf.upper_step(params, cache, e, layer, windowed)[::-1]

    stepped = jax.lax.scan(body, tf.init_cache(windowed, (2,), T), jnp.swapaxes(obs, 0, 1))[1][0]
    np.testing.assert_allclose(jnp.swapaxes(stepped, 0, 1), tf.forward(params, obs, windowed)[0], atol=1e-4)
    with pytest.raises(ValueError, match="window"):
        tf.TransformerConfig(window=-1)


def test_relative_buckets_and_bad_layer():
    buckets = np.asarray(tf.relative_bucket(jnp.arange(200), 32, 128))
    assert (buckets[:16] == np.arange(16)).all() and (np.diff(buckets) >= 0).all() and buckets.max() == 31
    for model, cfg in MODELS.values():
        with pytest.raises(ValueError, match="layer"):
            model.lower({}, jnp.zeros((1, 1, 20)), 4, cfg)
    with pytest.raises(ValueError, match="n_buckets"):
        tf.TransformerConfig(n_buckets=7)
    with pytest.raises(ValueError, match="divisible"):
        hawk.HawkConfig(width=30, n_heads=4)


def test_every_registered_architecture_is_tested():
    from irl.models.base import ARCHITECTURES

    assert set(MODELS) == set(ARCHITECTURES)


def test_hand_written_gradients_equal_autodiff(setup, monkeypatch):
    """The custom gradients (the layer norm's, the dense products', the layer loop's split)
    change how XLA computes a training step, never its numbers: the whole model's gradient
    equals autodiff's through the plain formulas."""
    model, cfg, params, obs = setup
    segments = jnp.repeat(jnp.arange(2), T // 2)[None].repeat(2, 0)

    def loss(p):
        actions, next_obs = model.forward(p, obs, cfg, segments)
        return (actions**2).mean() + (jnp.sin(next_obs) * jnp.arange(cfg.obs_size)).mean()

    custom = jax.grad(loss)(params)
    for module in (tf, encoders):  # hawk's only dense product is the encoder's
        monkeypatch.setattr(module, "dense", lambda x, w: x @ w)
    monkeypatch.setattr(tf, "_normalize", lambda x: tf._normalize_fwd(x)[0])
    monkeypatch.setattr(tf, "unstacked_layers",
                        lambda p, start, stop: [jax.tree.map(lambda w, i=i: w[i], p["layers"]) for i in range(start, stop)])
    plain = jax.grad(loss)(params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6), custom, plain)
    assert any(float(jnp.abs(g).max()) > 0 for g in jax.tree.leaves(custom))


def test_dense_gradient_with_leading_axes():
    x = jax.random.normal(jax.random.key(0), (3, 5, 7))
    w = jax.random.normal(jax.random.key(1), (7, 4))
    for argnum in (0, 1):
        ours = jax.grad(lambda x, w: jnp.tanh(dense(x, w)).sum(), argnum)(x, w)
        plain = jax.grad(lambda x, w: jnp.tanh(x @ w).sum(), argnum)(x, w)
        np.testing.assert_allclose(ours, plain, rtol=1e-5, atol=1e-6)
