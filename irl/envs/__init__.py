"""Environments: `make(name, **overrides) -> (env, params)`."""

from __future__ import annotations

import jax.numpy as jnp

from irl.envs import tasks as task_tables
from irl.envs.grid_pinpad import GridPinpad, GridPinpadParams, GridPinpadState
from irl.envs.pinpad import PinpadParams
from irl.envs.wrappers import AutoResetVec

ENV_NAMES = ("grid_pinpad", "ant_pinpad")
TASK_MODES = ("pretrain", "post", "any_pretrain")


def obs_size(name: str) -> int:
    """The observation size of an environment (AntPinpad's needs MuJoCo, imported only then)."""
    if name == "grid_pinpad":
        return GridPinpad.obs_size
    if name == "ant_pinpad":
        from irl.envs.ant_pinpad import OBS_SIZE

        return OBS_SIZE
    raise ValueError(f"unknown environment {name!r}; known: {', '.join(ENV_NAMES)}")


def make(name: str, tasks: str | tuple[str, ...] = "pretrain", time_limit: int | None = None):
    """Build an environment and its params.

    tasks: "pretrain" (the 16 pretraining tasks, one drawn per episode), "post" (the
    post-training task), "any_pretrain" (success on completing any pretraining task; for
    judging a policy that cannot know which task was drawn), or explicit tasks as strings
    such as ("0-1-2-3",).
    """
    if name == "grid_pinpad":
        env, pretrain, post, default_limit = GridPinpad(), task_tables.GRID_PRETRAIN_TASKS, task_tables.GRID_POST_TASKS, 100
    elif name == "ant_pinpad":
        from irl.envs.ant_pinpad import AntPinpad  # imports MuJoCo: only when asked for

        env, pretrain, post, default_limit = AntPinpad(), task_tables.ANT_PRETRAIN_TASKS, task_tables.ANT_POST_TASKS, 500
    else:
        raise ValueError(f"unknown environment {name!r}; known: {', '.join(ENV_NAMES)}")
    if isinstance(tasks, str):
        if tasks not in TASK_MODES:
            raise ValueError(f"tasks={tasks!r}: expected one of {TASK_MODES} or a tuple of task strings")
        table = post if tasks == "post" else pretrain
    else:
        table = tuple(tasks)
    time_limit = default_limit if time_limit is None else time_limit
    if time_limit < 1:
        raise ValueError(f"time_limit must be >= 1, got {time_limit}")
    rows, lens = task_tables.parse_tasks(table, env.n_colors)
    params = PinpadParams(
        tasks=jnp.asarray(rows),
        task_lens=jnp.asarray(lens),
        time_limit=jnp.int32(time_limit),
        any_task=jnp.bool_(tasks == "any_pretrain"),
    )
    return env, params


__all__ = ["make", "AutoResetVec", "GridPinpad", "GridPinpadParams", "GridPinpadState", "PinpadParams"]
