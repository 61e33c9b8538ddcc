"""Vectorised auto-reset for long rollouts over a batch of environments."""

from __future__ import annotations

import jax
import jax.numpy as jnp


class AutoResetVec:
    """A batch of `num_envs` environments that start a new episode when one ends.

    `reset(key, params)` and `step(key, state, action, params)` take and return batched
    observations and states ([num_envs, ...]) and a single key. Reward, done and info belong to
    the step that ended an episode; the returned observation and state are the first of the
    next one, and `info["final_obs"]` keeps the last observation of the finished episode.

    Drawing a solvable layout costs several times a step, so only
    `num_resets = ceil(num_envs / reset_ratio)` fresh episodes are drawn per step and handed to
    the environments that finished, in order. With reset_ratio=1 (the default) every finished
    environment gets its own fresh episode: exactly a vmapped per-environment auto-reset. With
    a larger ratio, if more than `num_resets` episodes end on one step, some of them restart
    from the same start state (`info["reset_shortfall"]` counts them); choose the ratio so
    that num_resets exceeds the typical number of episodes ending per step.
    """

    def __init__(self, env, num_envs: int, reset_ratio: int = 1):
        if num_envs < 1 or reset_ratio < 1:
            raise ValueError(f"num_envs and reset_ratio must be >= 1, got {num_envs}, {reset_ratio}")
        self.env = env
        self.num_envs = num_envs
        self.num_resets = -(-num_envs // reset_ratio)

    def __getattr__(self, name):
        return getattr(self.env, name)

    def reset(self, key, params):
        return jax.vmap(self.env.reset, (0, None))(jax.random.split(key, self.num_envs), params)

    def step(self, key, state, action, params):
        step_key, reset_key = jax.random.split(key)
        step_keys = jax.random.split(step_key, self.num_envs)
        obs, state, reward, done, info = jax.vmap(self.env.step, (0, 0, 0, None))(step_keys, state, action, params)
        fresh_obs, fresh_state = jax.vmap(self.env.reset, (0, None))(
            jax.random.split(reset_key, self.num_resets), params
        )
        finished_before = jnp.cumsum(done) - done
        slot = finished_before % self.num_resets

        def restart(fresh, current):
            mask = done.reshape(done.shape + (1,) * (current.ndim - 1))
            return jnp.where(mask, fresh[slot], current)

        state = jax.tree.map(restart, fresh_state, state)
        info = dict(info, final_obs=obs, reset_shortfall=jnp.maximum(jnp.sum(done) - self.num_resets, 0))
        return restart(fresh_obs, obs), state, reward, done, info
