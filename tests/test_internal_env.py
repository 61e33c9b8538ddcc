"""The internal-RL environment: it is the base model steered by the metacontroller's
controller, its caches carry across abstract steps, and the switch decides when to act."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import irl.envs as envs
from irl.control import linear, metacontroller
from irl.control.discovered import Discovered
from irl.models.base import make_base_model
from irl.rl.common import episode_keys, episode_stream
from irl.rl.internal_env import InternalEnv
from irl.rollout import run_base_model

ENV, POST = envs.make("grid_pinpad", tasks="post")
MODELS = {
    "transformer": make_base_model("transformer", n_layers=2, width=32, n_heads=2, head_dim=16, mlp_width=48,
                                   n_buckets=8, max_distance=32, init_scale=1.0, encoder="agent_relative"),
    "hawk": make_base_model("hawk", n_layers=2, width=32, n_heads=2, mlp_width=48, init_scale=1.0,
                            encoder="agent_relative"),
}


def tiny_discovered(arch="transformer", seeds=1, force_beta_one=False, switch_scale=3.0, key=0) -> Discovered:
    """Random-init base models and metacontrollers. switch_scale > 0 gives the switching unit
    random output weights (at init they are zero: beta is a constant 0.12, it never fires), so
    that it fires now and then."""
    model = MODELS[arch]
    cfg = metacontroller.MetacontrollerConfig(width=model.width, rank=4, force_beta_one=force_beta_one)
    k_base, k_mc, k_switch = jax.random.split(jax.random.key(key), 3)

    def init_mc(k):
        k_init, k_out = jax.random.split(k)
        params = metacontroller.init(k_init, cfg)
        w = jax.random.normal(k_out, params["switch"]["out"]["w"].shape) * switch_scale / cfg.switch_hidden**0.5
        return {**params, "switch": {**params["switch"], "out": {**params["switch"]["out"], "w": w}}}

    return Discovered(model, jax.vmap(model.init)(jax.random.split(k_base, seeds)), cfg,
                      jax.vmap(init_mc)(jax.random.split(k_mc, seeds)), layer=1)


def first(tree):
    return jax.tree.map(lambda x: x[0], tree)


def code_list_decide(codes):
    """A decide function that plays codes[i, k] at episode i's k-th decision."""
    def decide(count, e, keys):
        z = jnp.take_along_axis(codes, count[:, None, None], axis=1)[:, 0]
        return count + 1, z, jnp.zeros(codes.shape[0])
    return decide


def test_a_fixed_code_is_the_base_model_with_that_controller():
    discovered = tiny_discovered()
    frozen = first(InternalEnv.frozen_params(discovered))
    env = InternalEnv.from_discovered(discovered, ENV, POST, greedy=True)
    z = jax.random.normal(jax.random.key(1), (8,))
    n, key = 12, jax.random.key(2)

    def steer(e, state):
        a, b = metacontroller.controller(frozen["mc"], z, discovered.mc_cfg)
        return linear.apply(e, a, b, discovered.mc_cfg.decoder.form)

    ref = jax.jit(lambda k: run_base_model(discovered.model, frozen["base"], ENV, POST, k, n, greedy=True,
                                           layer=1, steer=steer, record=True))(key)
    decide = lambda count, e, keys: (count, jnp.broadcast_to(z, (n, 8)), jnp.zeros(n))
    traj, _ = jax.jit(lambda k: env.rollout(frozen, k, n, decide, jnp.zeros(n, jnp.int32), record_obs=True))(key)
    np.testing.assert_array_equal(traj.length, ref.length)
    np.testing.assert_array_equal(traj.success, ref.success)
    np.testing.assert_array_equal(traj.progress, ref.progress)
    assert len(set(np.asarray(traj.length).tolist())) > 1  # episodes of different lengths: not trivially equal
    for i in range(n):
        steps = int(traj.length[i]) + 1
        np.testing.assert_array_equal(traj.obs[i, :steps], ref.obs[i, :steps])
    assert 0 < traj.decision.sum() < traj.alive.sum()  # the switch fired, but not every step


@pytest.mark.parametrize("arch", ["transformer", "hawk"])
def test_abstract_steps_equal_one_unbroken_fixed_shape_rollout(arch):
    discovered = tiny_discovered(arch)
    frozen = first(InternalEnv.frozen_params(discovered))
    env = InternalEnv.from_discovered(discovered, ENV, POST)
    n, key = 6, jax.random.key(3)
    codes = jax.random.normal(jax.random.key(4), (n, 101, 8))
    traj, count = jax.jit(lambda k: env.rollout(frozen, k, n, code_list_decide(codes), jnp.zeros(n, jnp.int32)))(key)

    reset_keys, action_keys, _ = episode_keys(key, n)
    e, state = jax.jit(jax.vmap(env.reset, in_axes=(None, 0)))(frozen, reset_keys)
    step = jax.jit(jax.vmap(env.step, in_axes=(None, 0, 0, 0)))
    seen, total, decisions = [e], np.zeros(n), np.zeros(n, int)
    while not bool(state.done.all()):
        decisions += ~np.asarray(state.done)
        e, state, reward, done, info = step(frozen, action_keys, state, codes[np.arange(n), decisions - 1])
        total += np.asarray(reward)
        seen.append(e)
    np.testing.assert_array_equal(decisions, traj.decision.sum(1))
    np.testing.assert_array_equal(count, decisions)
    np.testing.assert_array_equal(state.length, traj.length)
    np.testing.assert_array_equal(state.success, traj.success)
    np.testing.assert_allclose(total, traj.returns)
    # the e the policy saw at each decision is the e the abstract step returned
    for i in range(n):
        at_decisions = np.asarray(traj.e[i])[np.asarray(traj.decision[i])]
        np.testing.assert_allclose(np.stack([s[i] for s in seen])[: decisions[i]], at_decisions, atol=1e-4)


@pytest.mark.parametrize("arch", ["transformer", "hawk"])
def test_back_to_back_episodes_each_equal_that_episode_played_alone(arch):
    """With more raw steps than T, a slot whose episode ends starts the next one at once: its
    caches, GRU state, code and policy state restarted. Episode j of slot i is then exactly the
    episode the abstract-step API plays from slot i's key streams for episode j; every episode
    begun ends within the rollout."""
    discovered = tiny_discovered(arch)
    frozen = first(InternalEnv.frozen_params(discovered))
    env = InternalEnv.from_discovered(discovered, ENV, POST)
    n, key, steps = 4, jax.random.key(3), env.max_steps + 40
    codes = jax.random.normal(jax.random.key(4), (n, 101, 8))
    traj, _ = jax.jit(lambda k: env.rollout(frozen, k, n, code_list_decide(codes), jnp.zeros(n, jnp.int32),
                                            steps=steps))(key)
    episodes = np.asarray(traj.episodes)
    assert episodes.max() >= 3  # several slots played several episodes
    np.testing.assert_array_equal(np.asarray(traj.episode).max(1) + 1, episodes)  # each one ended
    reset_keys, action_keys, _ = episode_keys(key, n)
    reset, step = jax.jit(env.reset), jax.jit(env.step)
    stream = lambda keys, i, j: episode_stream(keys[i:i + 1], jnp.array([j]))[0]
    for i in range(n):
        for j in range(episodes[i]):
            mine = np.asarray(traj.episode[i]) == j
            e, state = reset(frozen, stream(reset_keys, i, j))
            seen, total, k = [], 0.0, 0
            while not bool(state.done):
                seen.append(e)
                e, state, reward, _, _ = step(frozen, stream(action_keys, i, j), state, codes[i, k])
                total, k = total + float(reward), k + 1
            took = mine & np.asarray(traj.alive[i])
            assert took.sum() == int(state.length) and np.ptp(np.flatnonzero(took)) + 1 == took.sum()
            np.testing.assert_array_equal(np.asarray(traj.decision[i])[mine].sum(), k)
            np.testing.assert_allclose(np.asarray(traj.reward[i])[mine].sum(), total)
            assert bool(np.asarray(traj.succeeded[i])[mine].any()) == bool(state.success)
            np.testing.assert_array_equal(np.asarray(traj.end_progress[i])[mine].sum(), state.env_state.progress)
            at_decisions = mine & np.asarray(traj.decision[i])
            np.testing.assert_allclose(np.stack(seen), np.asarray(traj.e[i])[at_decisions], atol=1e-4)
            np.testing.assert_allclose(np.asarray(traj.z[i])[at_decisions], codes[i, :k])
    # the last episode begins by steps - T, so it is never cut short
    starts = np.asarray(traj.alive & (traj.episode > 0) & ~jnp.roll(traj.episode > 0, 1, axis=1))
    assert np.flatnonzero(starts.any(0)).max() <= steps - env.max_steps


def test_beta_one_decides_every_step_and_the_first_step_always():
    discovered = tiny_discovered(force_beta_one=True)
    env = InternalEnv.from_discovered(discovered, ENV, POST)
    n = 5
    decide = lambda c, e, k: (c, jnp.ones((n, 8)), jnp.zeros(n))
    traj, _ = jax.jit(lambda k: env.rollout(first(InternalEnv.frozen_params(discovered)), k, n, decide,
                                            jnp.zeros(n)))(jax.random.key(0))
    np.testing.assert_array_equal(traj.decision, traj.alive)
    # an unforced switch biased to "keep" still decides at t = 0
    keep = tiny_discovered(switch_scale=0.0)
    traj, _ = jax.jit(lambda k: InternalEnv.from_discovered(keep, ENV, POST).rollout(
        first(InternalEnv.frozen_params(keep)), k, n, decide, jnp.zeros(n)))(jax.random.key(0))
    np.testing.assert_array_equal(traj.decision.sum(1), 1)
    assert bool(traj.decision[:, 0].all())


def test_bad_construction_raises():
    discovered = tiny_discovered()
    with pytest.raises(ValueError, match="controlled layer"):
        InternalEnv(discovered.model, discovered.mc_cfg, 7, ENV, POST)
    with pytest.raises(ValueError, match="width"):
        InternalEnv(discovered.model, metacontroller.MetacontrollerConfig(width=16, rank=4), 1, ENV, POST)
