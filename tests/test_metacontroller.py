"""The metacontroller's pieces: temporal integration, KL, causality of the switch and decoder,
non-causality of the encoder, and the batched `sequence` against the step-wise functions."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from irl.control import linear
from irl.control import metacontroller as mc

CFG = mc.MetacontrollerConfig(width=16, latent_dim=4, gru_size=8, embed_size=8, encoder_hidden=16, switch_hidden=16,
                              decoder_hidden=8, rank=4)
B, T = 3, 12


def params_and_inputs(seed=0, cfg=CFG):
    k_init, k_e, k_noise = jax.random.split(jax.random.key(seed), 3)
    params = mc.init(k_init, cfg)
    # a non-trivial switch (its output layer starts at zero) and a visible controller
    params["switch"]["out"]["w"] = jax.random.normal(jax.random.fold_in(k_init, 1), (cfg.switch_hidden, 1))
    e = jax.random.normal(k_e, (B, T, cfg.width))
    return params, e, jnp.ones((B, T), bool), k_noise


def with_switch_bias(params, bias):
    return {**params, "switch": {**params["switch"], "out": {"w": jnp.zeros_like(params["switch"]["out"]["w"]),
                                                             "b": jnp.full(1, bias)}}}


run = jax.jit(mc.sequence, static_argnames=("cfg", "sample", "switch_noise", "hard_switch"))
dataclasses_replace = dataclasses.replace


@pytest.mark.parametrize("decoder_form", linear.FORMS)
def test_sequence_equals_stepping_the_public_step_functions(decoder_form):
    cfg = dataclasses.replace(CFG, decoder_form=decoder_form)
    params, e, mask, key = params_and_inputs(cfg=cfg)
    seq = run(params, cfg, e, mask, key)
    noise = jax.random.normal(key, seq.mu.shape)  # the draw sequence() makes from the same key
    s = mc.embed_sequence(params, e, mask)
    h, z = jnp.zeros((B, CFG.gru_size)), jnp.zeros((B, CFG.latent_dim))
    for t in range(T):
        beta = jnp.ones(B) if t == 0 else mc.switch(params, e[:, t], h, z)
        mu, log_std = mc.encode(params, e[:, t], h, s[:, t])
        z = beta[:, None] * (mu + jnp.exp(log_std) * noise[:, t]) + (1 - beta[:, None]) * z
        h = mc.gru_step(params, e[:, t], h)
        np.testing.assert_allclose(seq.beta[:, t], beta, atol=1e-5)
        np.testing.assert_allclose(seq.mu[:, t], mu, atol=1e-5)
        np.testing.assert_allclose(seq.z[:, t], z, atol=1e-5)
    a, b = mc.controller(params, seq.z, cfg)
    np.testing.assert_allclose(seq.controlled, linear.apply(e, a, b, cfg.decoder.form), atol=1e-5)


def test_beta_zero_holds_the_code_exactly_and_beta_one_is_forced_at_the_start():
    params, e, mask, key = params_and_inputs()
    seq = run(with_switch_bias(params, -1e4), CFG, e, mask, key)
    assert np.all(np.asarray(seq.beta[:, 0]) == 1.0) and np.all(np.asarray(seq.beta[:, 1:]) == 0.0)
    np.testing.assert_array_equal(seq.z, jnp.broadcast_to(seq.z[:, :1], seq.z.shape))
    a, b = mc.controller(params, seq.z, CFG)
    np.testing.assert_array_equal(linear.dense(a, b), jnp.broadcast_to(linear.dense(a, b)[:, :1], (B, T, 16, 16)))


def test_the_hard_switch_holds_each_code_exactly_until_the_soft_gate_crosses_one_half():
    params, e, mask, key = params_and_inputs()
    params["switch"]["out"]["b"] = jnp.zeros(1)  # open at some steps, closed at others
    hard = run(params, CFG, e, mask, key, sample=False, hard_switch=True)
    s = mc.embed_sequence(params, e, mask)
    h, z, opened = jnp.zeros((B, CFG.gru_size)), jnp.zeros((B, CFG.latent_dim)), []
    for t in range(T):
        beta = jnp.ones(B) if t == 0 else (mc.switch(params, e[:, t], h, z) >= mc.SWITCH_THRESHOLD).astype(jnp.float32)
        mu, _ = mc.encode(params, e[:, t], h, s[:, t])
        z = jnp.where(beta[:, None] == 1, mu, z)  # a switch takes the new code, otherwise it is held
        h = mc.gru_step(params, e[:, t], h)
        np.testing.assert_array_equal(hard.beta[:, t], beta)
        np.testing.assert_allclose(hard.z[:, t], z, atol=1e-5)
        opened.append(np.asarray(beta))
    assert 0 < np.mean(opened[1:]) < 1
    # the gradient reaches the switch through the soft gate (straight-through)
    loss = lambda p: run(p, CFG, e, mask, key, sample=False, hard_switch=True).controlled.sum()
    assert np.abs(np.asarray(jax.grad(loss)(params)["switch"]["out"]["w"])).sum() > 0


def test_beta_one_takes_a_fresh_code_every_step():
    params, e, mask, key = params_and_inputs()
    seq = run(params, CFG, e, mask, key, sample=False)
    forced = run(params, dataclasses_replace(CFG, force_beta_one=True), e, mask, key, sample=False)
    assert np.all(np.asarray(forced.beta) == 1.0)
    np.testing.assert_allclose(forced.z, forced.mu, atol=1e-6)
    assert not np.allclose(seq.z, seq.mu)  # the free gate integrates




def test_kl_matches_the_closed_form_and_monte_carlo():
    mu = jnp.array([0.3, -1.2, 0.0, 2.0])
    log_std = jnp.array([-0.5, 0.2, 0.0, -1.0])
    var = jnp.exp(2 * log_std)
    closed = 0.5 * jnp.sum(var + mu**2 - 1 - jnp.log(var))
    np.testing.assert_allclose(mc.kl_to_prior(mu, log_std), closed, rtol=1e-6)
    x = mu + jnp.exp(log_std) * jax.random.normal(jax.random.key(0), (200_000, 4))
    log_q = -0.5 * jnp.sum(((x - mu) / jnp.exp(log_std)) ** 2 + 2 * log_std + jnp.log(2 * jnp.pi), -1)
    log_p = -0.5 * jnp.sum(x**2 + jnp.log(2 * jnp.pi), -1)
    np.testing.assert_allclose(jnp.mean(log_q - log_p), closed, rtol=0.02)
    assert float(mc.kl_to_prior(jnp.zeros(4), jnp.zeros(4))) == 0.0


def test_binary_entropy_is_zero_at_a_decided_gate_and_log_2_at_one_half():
    beta = jnp.array([0.0, 1.0, 0.5, 0.12, 0.9])
    expected = [0.0, 0.0, np.log(2), -(0.12 * np.log(0.12) + 0.88 * np.log(0.88)), -(0.9 * np.log(0.9) + 0.1 * np.log(0.1))]
    np.testing.assert_allclose(mc.binary_entropy(beta), expected, rtol=1e-5, atol=2e-5)
    assert np.isfinite(jax.grad(lambda b: mc.binary_entropy(b).sum())(beta)).all()


def without_future_summary(params):
    """The encoder's weights on s zeroed: then only the embedder could see the future."""
    w = params["encoder"]["hidden"]["w"]
    return {**params, "encoder": {**params["encoder"], "hidden": {**params["encoder"]["hidden"],
                                                                   "w": w.at[-CFG.embed_size:].set(0.0)}}}


@pytest.mark.parametrize("t_future", [4, 9])
def test_switch_gru_integration_and_decoder_are_causal(t_future):
    params, e, mask, key = params_and_inputs(1)
    params = without_future_summary(params)
    perturbed = e.at[:, t_future:].add(3.0 * jax.random.normal(jax.random.key(5), e[:, t_future:].shape))
    a, b = run(params, CFG, e, mask, key), run(params, CFG, perturbed, mask, key)
    for name in ("beta", "z", "controlled"):
        np.testing.assert_allclose(getattr(a, name)[:, :t_future], getattr(b, name)[:, :t_future], atol=1e-6)
    assert not np.allclose(a.beta[:, t_future:], b.beta[:, t_future:])
    # the GRU state each step reads is causal too
    np.testing.assert_allclose(mc.gru_sequence(params, e)[:, :t_future + 1],
                               mc.gru_sequence(params, perturbed)[:, :t_future + 1], atol=1e-6)


def test_the_switch_reads_only_its_own_step_and_the_decoder_only_z():
    """beta_t = switch(e_t, h_t-1, z_t-1): in the full (non-causal-encoder) sequence, a future
    input can reach beta_t only through z_t-1; with z held, it cannot. U_t depends on z_t alone."""
    params, e, mask, key = params_and_inputs(2)
    seq = run(params, CFG, e, mask, key)
    h_prev = mc.gru_sequence(params, e)
    z_prev = jnp.concatenate([jnp.zeros_like(seq.z[:, :1]), seq.z[:, :-1]], 1)
    beta = jax.vmap(lambda e_t, h, z: mc.switch(params, e_t, h, z), in_axes=1, out_axes=1)(e, h_prev, z_prev)
    np.testing.assert_allclose(seq.beta[:, 1:], beta[:, 1:], atol=1e-5)
    a1, b1 = mc.controller(params, seq.z, CFG)
    a2, b2 = mc.controller(params, seq.z, CFG)  # no other input exists: a function of z_t only
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_allclose(seq.controlled - e, linear.apply(e, a1, b1, CFG.decoder.form) - e, atol=1e-5)


def test_the_encoder_is_not_causal():
    params, e, mask, key = params_and_inputs(3)
    perturbed = e.at[:, -1].add(5.0)
    a, b = run(params, CFG, e, mask, key), run(params, CFG, perturbed, mask, key)
    assert not np.allclose(a.mu[:, 0], b.mu[:, 0], atol=1e-6)


@pytest.mark.parametrize("inputs", ["future", "future_observations"])
def test_a_future_only_encoder_reads_no_past(inputs):
    cfg = dataclasses_replace(CFG, encoder_inputs=inputs)
    params, e, mask, key = params_and_inputs(5, cfg)
    observed = jax.random.normal(jax.random.key(9), e.shape)
    base = run(params, cfg, e, mask, key, observed=observed)
    read = "observed" if inputs == "future_observations" else "e"
    moved = lambda x: x.at[:, 6].add(5.0)
    args = dict(e=e, observed=observed)
    args[read] = moved(args[read])
    # what the embedder reads, changed at step 6, changes the codes up to it and none after it
    mu = run(params, cfg, args["e"], mask, key, observed=args["observed"]).mu
    assert not np.allclose(mu[:, :7], base.mu[:, :7], atol=1e-4)
    np.testing.assert_allclose(mu[:, 7:], base.mu[:, 7:], atol=1e-6)
    if inputs == "future_observations":  # the controlled layer (the past, through attention) does not reach them
        np.testing.assert_allclose(run(params, cfg, e + 3.0, mask, key, observed=observed).mu, base.mu, atol=1e-6)
        with pytest.raises(ValueError, match="observed"):
            run(params, cfg, e, mask, key)


def test_an_unknown_encoder_input_is_refused():
    with pytest.raises(ValueError, match="encoder_inputs"):
        dataclasses_replace(CFG, encoder_inputs="past")
    with pytest.raises(ValueError, match="sequence_embedding"):
        dataclasses_replace(CFG, sequence_embedding="pooled")


def test_a_whole_sequence_embedding_gives_every_step_one_summary_of_the_episode():
    cfg = dataclasses_replace(CFG, encoder_inputs="future", sequence_embedding="whole")
    params, e, _, key = params_and_inputs(6, cfg)
    mask = jnp.arange(T)[None, :] < jnp.array([[5], [T], [8]])
    base = run(params, cfg, e, mask, key, sample=False)
    # the encoder reads s alone here, so one summary means one code at every step
    np.testing.assert_allclose(base.mu, jnp.broadcast_to(base.mu[:, :1], base.mu.shape), atol=1e-6)
    # the first step is in it (a per-step s_t would not see it from t = 1 on) ...
    moved = run(params, cfg, e.at[:, 0].add(5.0), mask, key, sample=False).mu
    assert not np.allclose(moved[:, 1:], base.mu[:, 1:], atol=1e-4)
    # ... and the padding after the episode's end is not
    padded = jnp.where(mask[..., None], e, e + 7.0)
    np.testing.assert_allclose(run(params, cfg, padded, mask, key, sample=False).mu, base.mu, atol=1e-6)


def test_the_sequence_embedding_ignores_padding():
    params, e, _, _ = params_and_inputs(4)
    mask = jnp.arange(T)[None, :] < jnp.array([[5], [T], [8]])
    noisy = jnp.where(mask[..., None], e, 100.0)
    np.testing.assert_allclose(jnp.where(mask[..., None], mc.embed_sequence(params, e, mask), 0),
                               jnp.where(mask[..., None], mc.embed_sequence(params, noisy, mask), 0), atol=1e-5)


def test_switch_bias_sets_the_initial_gate():
    _, e, mask, key = params_and_inputs()
    fresh = mc.init(jax.random.key(0), dataclasses_replace(CFG, switch_bias=-4.0))
    seq = run(fresh, CFG, e, mask, key)
    np.testing.assert_allclose(seq.beta[:, 1:], jax.nn.sigmoid(-4.0), rtol=1e-5)


def test_the_gumbel_sigmoid_gate_samples_around_the_deterministic_one():
    """With switch_temperature > 0 training draws beta_t = sigmoid((logit + logistic) / tau):
    the codes' noise is unchanged, analysis (no switch noise) keeps sigmoid(logit), and at a
    fixed logit the sampled gate switches (beta > 0.5) with probability sigmoid(logit)."""
    params, e, mask, key = params_and_inputs()
    cfg = dataclasses_replace(CFG, switch_temperature=0.5)
    plain = run(params, CFG, e, mask, key)
    np.testing.assert_array_equal(run(params, cfg, e, mask, key).beta, plain.beta)  # no switch noise: unchanged
    noisy = run(params, cfg, e, mask, key, switch_noise=True)
    np.testing.assert_array_equal(noisy.mu, plain.mu)
    assert np.all(np.asarray(noisy.beta[:, 0]) == 1.0) and not np.allclose(noisy.beta[:, 1:], plain.beta[:, 1:])
    np.testing.assert_array_equal(run(params, CFG, e, mask, key, switch_noise=True).beta, plain.beta)  # tau = 0: off
    wide_e = jax.random.normal(jax.random.key(7), (2_000, T, CFG.width))
    wide_mask = jnp.ones((2_000, T), bool)
    fixed = with_switch_bias(params, -1.0)  # logit -1 everywhere
    beta = np.asarray(run(fixed, cfg, wide_e, wide_mask, key, switch_noise=True).beta[:, 1:])
    np.testing.assert_allclose((beta > 0.5).mean(), jax.nn.sigmoid(-1.0), atol=0.01)
    # the temperature scales the logit: beta < 0.1 iff (-1 + noise) / tau < logit(0.1)
    tau, low = 0.5, jnp.log(0.1 / 0.9)
    np.testing.assert_allclose((beta < 0.1).mean(), jax.nn.sigmoid(1.0 + tau * low), atol=0.01)


def test_a_negative_switch_temperature_is_refused():
    with pytest.raises(ValueError, match="switch_temperature"):
        dataclasses_replace(CFG, switch_temperature=-1.0)


def test_gradients_stay_finite_when_the_embedders_gate_saturates():
    """At a decay of exactly 1 (gate r = 0) sqrt(1 - a^2) has an infinite derivative."""
    params, e, mask, key = params_and_inputs(5)
    params["embedder"]["gates"]["b"] = jnp.full_like(params["embedder"]["gates"]["b"], -1e3)
    grads = jax.grad(lambda p: run(p, CFG, e, mask, key).controlled.sum())(params)
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
