"""Vectorised auto-reset for long rollouts over a batch of environments."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def masked_map(fn, mask: jax.Array, capacity: int):
    """vmap(fn) over the row indices where `mask` ([n] bool) is set, at the cost of `capacity`
    rows: the set rows are gathered into a buffer of that size. Returns fn's outputs stacked to
    [n, ...]; rows whose mask is unset hold zeros. No row set: nothing runs. More than
    `capacity` set: every row runs (the same answer, slower)."""
    n = mask.shape[0]
    capacity = min(capacity, n)
    shapes = jax.eval_shape(fn, jnp.int32(0))

    def nothing():
        return jax.tree.map(lambda s: jnp.zeros((n, *s.shape), s.dtype), shapes)

    def gathered():
        rows = jnp.nonzero(mask, size=capacity, fill_value=n)[0]
        out = jax.vmap(fn)(jnp.minimum(rows, n - 1))
        return jax.tree.map(lambda o: jnp.zeros((n, *o.shape[1:]), o.dtype).at[rows].set(o, mode="drop"), out)

    def everything():
        out = jax.vmap(fn)(jnp.arange(n))
        return jax.tree.map(lambda o: jnp.where(mask.reshape((n,) + (1,) * (o.ndim - 1)), o, jnp.zeros_like(o)), out)

    count = jnp.sum(mask)
    branch = jnp.where(count == 0, 0, jnp.where(count <= capacity, 1, 2))
    return jax.lax.switch(branch, [nothing, gathered, everything])


class AutoResetVec:
    """A batch of `num_envs` environments that start a new episode when one ends.

    `reset(key, params)` and `step(key, state, action, params)` take a single key and batched
    actions, and return batched observations and states ([num_envs, ...]). Reward, done and
    info belong to the step that ended an episode; the returned observation and state are the
    first of the next one, and `info["final_obs"]` keeps the last observation of the finished
    episode.

    Exact: environment i restarts as `env.reset(fold_in(key_reset, i))`, whatever the batch
    does. Fast: only the environments that finished are reset, gathered into a buffer of
    `reset_capacity` rows (default num_envs // 8; more endings on one step fall back to
    resetting all rows). An env with `reset_attempt` (GridPinpad) first tries one layout per
    finished environment and runs the full redraw loop only for the few that failed.
    """

    def __init__(self, env, num_envs: int, reset_capacity: int | None = None):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if reset_capacity is not None and reset_capacity < 1:
            raise ValueError(f"reset_capacity must be >= 1, got {reset_capacity}")
        self.env = env
        self.num_envs = num_envs
        self.reset_capacity = reset_capacity or max(1, num_envs // 8)

    def __getattr__(self, name):
        return getattr(self.env, name)

    def reset(self, key, params):
        return jax.vmap(self.env.reset, (0, None))(jax.random.split(key, self.num_envs), params)

    def restarts(self, key, done, params):
        """(obs, state) of `env.reset(fold_in(key, i), params)` for every i with done[i]."""
        reset_row = lambda i: self.env.reset(jax.random.fold_in(key, i), params)
        if not hasattr(self.env, "reset_attempt"):
            return masked_map(reset_row, done, self.reset_capacity)
        obs, state, ok = masked_map(
            lambda i: self.env.reset_attempt(jax.random.fold_in(key, i), params), done, self.reset_capacity
        )
        retry = done & ~ok
        # One layout in eight fails for a pretraining task (one in five for the post-training
        # task); a step with more failures than this buffer resets every row: exact, but slower.
        retry_capacity = max(min(self.reset_capacity, 4), self.reset_capacity // 8)
        retry_obs, retry_state = masked_map(reset_row, retry, retry_capacity)
        return jax.tree.map(lambda r, a: jnp.where(_rows(retry, a), r, a), (retry_obs, retry_state), (obs, state))

    def step(self, key, state, action, params):
        step_key, reset_key = jax.random.split(key)
        step_keys = jax.random.split(step_key, self.num_envs)
        obs, state, reward, done, info = jax.vmap(self.env.step, (0, 0, 0, None))(step_keys, state, action, params)
        fresh = self.restarts(reset_key, done, params)
        obs_next, state = jax.tree.map(lambda f, c: jnp.where(_rows(done, c), f, c), fresh, (obs, state))
        return obs_next, state, reward, done, dict(info, final_obs=obs)


def _rows(mask, like):
    """mask [n] broadcast against an array [n, ...]."""
    return mask.reshape(mask.shape + (1,) * (like.ndim - 1))
