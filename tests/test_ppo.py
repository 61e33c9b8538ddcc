"""Critic-free PPO: episode advantages, where they land, the gradient at ratio 1, configs."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from experiments.configs.grid import rl_config
from irl.rl import policy, ppo
from irl.rl.learner import validate
from test_policy import CFG, perturbed_policy


def test_episode_advantage_is_the_standardised_return():
    returns = jnp.array([0.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(ppo.episode_advantage(returns), (returns - 0.25) / (np.std(returns) + 1e-3), rtol=1e-6)
    np.testing.assert_allclose(ppo.episode_advantage(jnp.zeros(4)), 0.0)
    # over the episodes played only: the others neither count nor get an advantage
    padded = jnp.array([[0.0, 1.0, 7.0], [0.0, 0.0, 7.0]])
    played = jnp.array([[True, True, False], [True, True, False]])
    np.testing.assert_allclose(ppo.episode_advantage(padded, 1e-3, played),
                               jnp.array([[-0.25, 0.75, 0.0], [-0.25, -0.25, 0.0]]) / (np.std([0, 1, 0, 0]) + 1e-3),
                               rtol=1e-6)


def test_update_gives_each_decision_the_advantage_of_its_own_episode():
    """Slots of several episodes: the decisions of a solved episode are pushed up, those of a
    failed one in the same slot down, as the per-decision policy gradient says."""
    params = perturbed_policy(jax.random.key(0))
    e = jax.random.normal(jax.random.key(1), (2, 4, 32))
    z = jax.random.normal(jax.random.key(2), (2, 4, 8))
    episode = jnp.array([[0, 0, 1, 2], [0, 1, 1, 1]])
    returns = jnp.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    played = jnp.array([[True, True, True], [True, True, False]])
    log_prob_fn = lambda p, mb: policy.sequence_log_prob(p, CFG, mb["e"], mb["z"], mb["episode"])
    batch = {"e": e, "z": z, "episode": episode, "mask": jnp.ones((2, 4), bool), "returns": returns, "played": played}
    batch["log_prob_old"] = log_prob_fn(params, batch)
    cfg = ppo.PPOConfig(lr=1.0)
    sgd = optax.sgd(1.0)
    moved, _, _ = ppo.update(params, sgd.init(params), batch, log_prob_fn, sgd, cfg, jax.random.key(3))
    advantage = ppo.episode_advantage(returns, 1e-3, played)
    per_decision = jnp.array([[advantage[0, 0], advantage[0, 0], advantage[0, 1], advantage[0, 2]],
                              [advantage[1, 0], advantage[1, 1], advantage[1, 1], advantage[1, 1]]])
    expected = jax.grad(lambda p: (per_decision * log_prob_fn(p, batch)).sum() / 8)(params)
    for new, old, g in zip(jax.tree.leaves(moved), jax.tree.leaves(params), jax.tree.leaves(expected)):
        np.testing.assert_allclose(new - old, g, rtol=1e-4, atol=1e-6)


def test_advantages_land_on_the_decisions_of_their_own_episode():
    log_prob = jnp.zeros((3, 4))
    mask = jnp.array([[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 1]], bool)
    advantage = jnp.array([2.0, -1.0, 0.5])
    grad = jax.grad(lambda lp: ppo.clipped_loss(lp, jax.lax.stop_gradient(lp), advantage[:, None], mask, 0.2)[0])(
        log_prob)
    expected = -advantage[:, None] * mask / mask.sum()
    np.testing.assert_allclose(grad, expected, rtol=1e-6)


def test_loss_gradient_at_ratio_one_is_the_policy_gradient():
    params = perturbed_policy(jax.random.key(0))
    e = jax.random.normal(jax.random.key(1), (4, 6, 32))
    z = jax.random.normal(jax.random.key(2), (4, 6, 8))
    mask = jnp.arange(6)[None] < jnp.array([[6], [2], [4], [1]])
    advantage = ppo.episode_advantage(jnp.array([1.0, 0.0, 0.0, 1.0]))
    log_prob = lambda p: policy.sequence_log_prob(p, CFG, e, z)
    old = jax.lax.stop_gradient(log_prob(params))
    ppo_grad = jax.grad(lambda p: ppo.clipped_loss(log_prob(p), old, advantage[:, None], mask, 0.2)[0])(params)
    pg_grad = jax.grad(lambda p: -(advantage[:, None] * log_prob(p) * mask).sum() / mask.sum())(params)
    for a, b in zip(jax.tree.leaves(ppo_grad), jax.tree.leaves(pg_grad)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_clipping_stops_the_gradient_past_the_trust_region():
    lp = jnp.log(jnp.array([[1.5, 0.5]]))  # ratios 1.5 and 0.5 against log_prob_old = 0
    mask = jnp.ones((1, 2), bool)
    grad = jax.grad(lambda x: ppo.clipped_loss(x, jnp.zeros((1, 2)), jnp.array([[1.0]]), mask, 0.2)[0])(lp)
    np.testing.assert_allclose(grad, [[0.0, -0.5 * 0.5]], rtol=1e-6)  # high ratio clipped; low one still pushed up


def test_padding_with_extreme_log_probabilities_changes_neither_the_loss_nor_its_statistics():
    """Padded decisions carry whatever the recompute gives them (log-densities far below 0 at a
    zero input, or far above the zero-filled old ones): masked out, they must not turn the
    loss, its gradient or the logged KL into NaN."""
    mask = jnp.array([[True, False]])
    old = jnp.array([[-1.0, 0.0]])
    advantage = jnp.array([[1.0]])
    real = ppo.clipped_loss(jnp.array([[-1.1, 0.0]]), old, advantage, mask, 0.2)
    for padded in (-120.0, 120.0):  # the ratio underflows to 0 / overflows to inf
        lp = jnp.array([[-1.1, padded]])
        loss, stats = ppo.clipped_loss(lp, old, advantage, mask, 0.2)
        grad = jax.grad(lambda x: ppo.clipped_loss(x, old, advantage, mask, 0.2)[0])(lp)
        np.testing.assert_allclose(loss, real[0], rtol=1e-6)
        for name, value in stats.items():
            np.testing.assert_allclose(value, real[1][name], rtol=1e-6, err_msg=name)
        assert np.all(np.isfinite(grad)) and grad[0, 1] == 0.0


def test_update_runs_epochs_and_minibatches_and_equal_returns_change_nothing():
    params = perturbed_policy(jax.random.key(0))
    batch = {"e": jax.random.normal(jax.random.key(1), (8, 5, 32)), "z": jax.random.normal(jax.random.key(2), (8, 5, 8)),
             "mask": jnp.ones((8, 5), bool), "episode": jnp.zeros((8, 5), jnp.int32), "played": jnp.ones((8, 1), bool)}
    log_prob_fn = lambda p, mb: policy.sequence_log_prob(p, CFG, mb["e"], mb["z"])
    batch["log_prob_old"] = log_prob_fn(params, batch)
    cfg = ppo.PPOConfig(lr=1e-2, epochs=2, minibatches=4)
    opt = ppo.make_optimizer(cfg)
    step = jax.jit(lambda p, b: ppo.update(p, opt.init(p), b, log_prob_fn, opt, cfg, jax.random.key(3)))
    same, _, stats = step(params, dict(batch, returns=jnp.ones((8, 1))))
    for a, b in zip(jax.tree.leaves(same), jax.tree.leaves(params)):
        np.testing.assert_array_equal(a, b)
    moved, _, stats = step(params, dict(batch, returns=jnp.arange(8.0)[:, None]))
    assert np.isfinite(stats["loss"]) and any(not np.allclose(a, b) for a, b in
                                              zip(jax.tree.leaves(moved), jax.tree.leaves(params)))
    assert optax.tree.norm(jax.tree.map(lambda a, b: a - b, moved, params)) > 0


@pytest.mark.parametrize("field, value, message", [
    ("methods", ("internal", "nope"), "unknown methods"),
    ("train.batch", 7, "divisible by minibatches"),
    ("train.updates", 5, "multiple of chunk_updates"),
    ("train.rollout_steps", 50, "rollout_steps must be 0 or >= the time limit 100"),
    ("rl_seeds", 0, "rl_seeds"),
    ("ppo.lr", 0.0, "lr must be > 0"),
    ("ppo.clip", -0.1, "clip must be > 0"),
    ("policy.n_heads", 3, "divisible by policy.n_heads"),
])
def test_bad_configs_raise_before_compute(field, value, message):
    config = rl_config("tiny")
    section, _, name = field.rpartition(".")
    (config[section] if section else config)[name] = value
    with pytest.raises(ValueError, match=message):
        validate(config)


def test_every_preset_is_valid_and_paper_is_the_spec():
    for preset in ("tiny", "small", "paper"):
        validate(rl_config(preset))
    paper = rl_config("paper")
    assert (paper.train.updates, paper.train.batch, paper.ppo.lr, paper.ppo.weight_decay, paper.policy.width) == \
        (100_000, 1024, 3e-5, 0.0, 256)
    assert (paper.ppo.clip, paper.ppo.epochs, paper.ppo.minibatches) == (0.2, 1, 1)
