"""Vectorised auto-reset for long rollouts over a batch of environments."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def masked_update(fn, mask: jax.Array, capacity: int, base):
    """`base` with row i replaced by fn(i) wherever `mask` ([n] bool) is set.

    base is a pytree of [n, ...] arrays and fn(i) returns one row of it. The set rows are
    gathered `capacity` at a time into a buffer, vmapped over, and scattered back in place, so
    the cost follows the number of set rows: no row set, nothing runs; more than `capacity`,
    another round (the same answer, later).
    """
    n = mask.shape[0]
    capacity = min(capacity, n)

    def one_round(carry):
        pending, out = carry
        rows = jnp.nonzero(pending, size=capacity, fill_value=n)[0]  # n past the last set row
        new = jax.vmap(fn)(jnp.minimum(rows, n - 1))
        out = jax.tree.map(lambda o, r: o.at[rows].set(r, mode="drop"), out, new)
        return pending.at[rows].set(False, mode="drop"), out

    return jax.lax.while_loop(lambda c: jnp.any(c[0]), one_round, (mask, base))[1]


class AutoResetVec:
    """A batch of `num_envs` environments that start a new episode when one ends.

    `reset(key, params)` and `step(key, state, action, params)` take a single key and batched
    actions, and return batched observations and states ([num_envs, ...]). Reward, done and
    info belong to the step that ended an episode; the returned observation and state are the
    first of the next one, and `info["final_obs"]` keeps the last observation of the finished
    episode.

    Exact: environment i restarts as `env.reset(fold_in(key_reset, i))`, whatever the batch
    does. Fast: only the environments that finished are reset, gathered into a buffer of
    `reset_capacity` rows (default num_envs // 12, a little over the 7.5% of random-action
    episodes that end on each step; more endings take another round).
    An env with `reset_attempt` (GridPinpad) draws layouts in a cascade (see `restart`), so
    the redraw loop runs only for the very few rows whose first attempts all failed.
    """

    def __init__(self, env, num_envs: int, reset_capacity: int | None = None, cascade_attempts: int = 2):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if reset_capacity is not None and reset_capacity < 1:
            raise ValueError(f"reset_capacity must be >= 1, got {reset_capacity}")
        if cascade_attempts < 1:
            raise ValueError(f"cascade_attempts must be >= 1, got {cascade_attempts}")
        self.env = env
        self.num_envs = num_envs
        self.reset_capacity = reset_capacity or max(1, num_envs // 12)
        self.cascade_attempts = cascade_attempts

    def __getattr__(self, name):
        return getattr(self.env, name)

    def reset(self, key, params):
        return jax.vmap(self.env.reset, (0, None))(jax.random.split(key, self.num_envs), params)

    def restart(self, key, done, obs, state, params):
        """(obs, state) with every row i where done[i] replaced by `env.reset(fold_in(key, i))`.

        For an env with `reset_attempt` and `reset_from` (GridPinpad), a reset is the first
        solvable layout among attempts 0, 1, ...: each finished row tries attempt 0, the rows
        that failed try attempt 1 in a buffer a quarter the size, and so on for
        `cascade_attempts` attempts; the few rows left finish with `reset_from`. About one
        layout in eight fails, so each stage holds far fewer rows than the one before.
        """
        def reset_row(i):
            return self.env.reset(jax.random.fold_in(key, i), params)

        if not (hasattr(self.env, "reset_attempt") and hasattr(self.env, "reset_from")):
            return masked_update(reset_row, done, self.reset_capacity, (obs, state))
        pending, capacity = done, self.reset_capacity
        for attempt in range(self.cascade_attempts):
            def attempt_row(i, attempt=attempt):
                return self.env.reset_attempt(jax.random.fold_in(key, i), params, attempt)

            # rows not pending count as solved, so the failures are exactly ~solved
            obs, state, solved = masked_update(attempt_row, pending, capacity, (obs, state, ~pending))
            pending, capacity = ~solved, max(1, capacity // 4)

        def finish_row(i):
            return self.env.reset_from(jax.random.fold_in(key, i), params, self.cascade_attempts)

        return masked_update(finish_row, pending, capacity, (obs, state))

    def step(self, key, state, action, params):
        step_key, reset_key = jax.random.split(key)
        step_keys = jax.random.split(step_key, self.num_envs)
        obs, state, reward, done, info = jax.vmap(self.env.step, (0, 0, 0, None))(step_keys, state, action, params)
        obs_next, state = self.restart(reset_key, done, obs, state, params)
        return obs_next, state, reward, done, dict(info, final_obs=obs)

