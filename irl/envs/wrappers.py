"""Vectorised auto-reset for long rollouts over a batch of environments."""

from __future__ import annotations

import jax

from irl.envs.masked import masked_update


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
    An env with `reset_attempts` (GridPinpad) draws layouts in a cascade (see `restart`), so
    the redraw loop runs only for the very few rows whose first attempts all failed.
    """

    def __init__(self, env, num_envs: int, reset_capacity: int | None = None, cascade: tuple[int, ...] = (1, 1)):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if reset_capacity is not None and reset_capacity < 1:
            raise ValueError(f"reset_capacity must be >= 1, got {reset_capacity}")
        if not cascade or min(cascade) < 1:
            raise ValueError(f"cascade must be attempts per stage, each >= 1, got {cascade}")
        self.env = env
        self.num_envs = num_envs
        self.reset_capacity = reset_capacity or max(1, num_envs // 12)
        self.cascade = tuple(cascade)

    def __getattr__(self, name):
        return getattr(self.env, name)

    def reset(self, key, params):
        return jax.vmap(self.env.reset, (0, None))(jax.random.split(key, self.num_envs), params)

    def restart(self, key, done, obs, state, params):
        """(obs, state) with every row i where done[i] replaced by `env.reset(fold_in(key, i))`.

        For an env with `reset_attempts` and `reset_from` (GridPinpad), a reset is the first
        solvable layout among attempts 0, 1, ...: each finished row tries attempt 0, the rows
        that failed try attempt 1 in a buffer a quarter the size, and so on for
        `cascade_attempts` attempts; the few rows left finish with `reset_from`. About one
        layout in eight fails, so each stage holds far fewer rows than the one before.
        """
        def keys(rows):
            return jax.vmap(jax.random.fold_in, (None, 0))(key, rows)

        if not (hasattr(self.env, "reset_attempts") and hasattr(self.env, "reset_from")):
            reset_rows = lambda rows: jax.vmap(self.env.reset, (0, None))(keys(rows), params)  # noqa: E731
            return masked_update(reset_rows, done, self.reset_capacity, (obs, state))
        pending, capacity, first = done, self.reset_capacity, 0
        for attempts in self.cascade:
            def attempt_rows(rows, first=first, attempts=attempts):
                return jax.vmap(lambda k: self.env.reset_attempts(k, params, first, attempts))(keys(rows))

            # rows not pending count as solved, so the failures are exactly ~solved
            obs, state, solved = masked_update(attempt_rows, pending, capacity, (obs, state, ~pending))
            pending, capacity, first = ~solved, max(1, capacity // 4 ** attempts), first + attempts

        def finish_rows(rows):
            return jax.vmap(lambda k: self.env.reset_from(k, params, first))(keys(rows))

        return masked_update(finish_rows, pending, capacity, (obs, state))

    def step(self, key, state, action, params):
        step_key, reset_key = jax.random.split(key)
        step_keys = jax.random.split(step_key, self.num_envs)
        obs, state, reward, done, info = jax.vmap(self.env.step, (0, 0, 0, None))(step_keys, state, action, params)
        obs_next, state = self.restart(reset_key, done, obs, state, params)
        return obs_next, state, reward, done, dict(info, final_obs=obs)

