"""The policies' log-probabilities recomputed for the PPO update equal the ones recorded while
acting: the internal policy's decision-sequence form (same recurrent states) and the raw-action
baseline's teacher-forced forward."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from irl.rl import policy, raw_env
from irl.rl.common import compact
from irl.rl.internal_env import InternalEnv
from test_internal_env import ENV, POST, first, tiny_discovered

CFG = policy.PolicyConfig(input_width=32, latent_dim=8, width=16, n_heads=2, mlp_width=32)


def perturbed_policy(key):
    """Initialised, then every weight nudged: the zero-initialised mean head would hide errors."""
    params = policy.init(key, CFG)
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(99), len(leaves))
    return jax.tree.unflatten(tree, [x + 0.3 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)])


def test_initial_policy_is_the_prior():
    params = policy.init(jax.random.key(0), CFG)
    e = jax.random.normal(jax.random.key(1), (3, 5, 32))
    mu, log_std = policy.sequence(params, CFG, e)
    np.testing.assert_allclose(mu, 0.0)
    np.testing.assert_allclose(log_std, 0.0)


@pytest.mark.parametrize("extra_steps", [0, 40])
def test_sequence_log_probs_equal_the_ones_recorded_while_acting(extra_steps):
    """One episode per slot, and several back to back (the recurrence restarts at each)."""
    discovered = tiny_discovered()
    env = InternalEnv.from_discovered(discovered, ENV, POST)
    params, n = perturbed_policy(jax.random.key(0)), 8

    @jax.jit
    def act_then_recompute(key):
        decide = lambda s, e, k: policy.step(params, CFG, s, e, k)
        traj, _ = env.rollout(first(InternalEnv.frozen_params(discovered)), key, n, decide,
                              policy.initial_state(CFG, (n,)), steps=env.max_steps + extra_steps)
        e, z, episode = (compact(traj.decision, x) for x in (traj.e, traj.z, traj.episode))
        return traj, compact(traj.decision, traj.log_prob), policy.sequence_log_prob(params, CFG, e, z, episode)

    traj, recorded, recomputed = act_then_recompute(jax.random.key(1))
    decisions = np.asarray(traj.decision.sum(1))
    assert decisions.max() > 2  # several decisions per slot: the recurrent state matters
    assert (np.asarray(traj.episodes).max() > 1) == (extra_steps > 0)
    for i, k in enumerate(decisions):
        np.testing.assert_allclose(recomputed[i, :k], recorded[i, :k], rtol=1e-4, atol=1e-4)
    # and the recurrent state does matter: without it the log-probs differ
    alone = policy.sequence_log_prob(params, CFG, compact(traj.decision, traj.e)[:, :, None],
                                     compact(traj.decision, traj.z)[:, :, None])[..., 0]
    i = int(np.argmax(decisions))
    assert not np.allclose(alone[i, 1:decisions[i]], recorded[i, 1:decisions[i]], atol=1e-3)


def test_compact_moves_decisions_to_the_front_of_their_own_row():
    decision = jnp.array([[True, False, True, False], [False, False, False, True]])
    x = jnp.arange(8.0).reshape(2, 4)
    np.testing.assert_array_equal(compact(decision, x), [[0, 2, 0, 0], [7, 0, 0, 0]])


@pytest.mark.parametrize("extra_steps", [0, 40])
def test_raw_action_teacher_forced_log_probs_equal_the_step_wise_ones(extra_steps):
    """One episode per slot, and several back to back (each episode's own observations only)."""
    for arch in ("transformer", "hawk"):
        discovered = tiny_discovered(arch)
        params = first(discovered.base_params)
        steps = int(POST.time_limit) + extra_steps
        eps = jax.jit(lambda k: raw_env.rollout(discovered.model, params, ENV, POST, k, 6, steps=steps))(
            jax.random.key(0))
        recomputed = jax.jit(lambda o, a, ep: raw_env.log_prob(discovered.model, params, o, a, episode=ep))(
            eps.obs, eps.actions, eps.episode)
        alive = np.asarray(eps.alive)
        assert alive.sum() > 10
        np.testing.assert_allclose(np.asarray(recomputed)[alive], np.asarray(eps.log_prob)[alive], atol=1e-4)
        np.testing.assert_array_equal(eps.length, alive.sum(1))
        episodes = np.asarray(eps.ended.sum(1))
        assert (episodes.max() > 1) == (extra_steps > 0)
        np.testing.assert_array_equal(np.asarray(eps.episode).max(1) + 1, episodes)  # every episode begun ended
