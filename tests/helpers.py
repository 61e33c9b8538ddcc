"""Shared test helpers: hand-built GridPinpad states and a slow reference for path lengths."""

import jax
import jax.numpy as jnp
import numpy as np

import irl.envs as envs
from irl.envs import grid_paths
from irl.envs.grid_pinpad import GridPinpadState
from irl.envs.tasks import MAX_TASK_LEN, parse_tasks

ENV, PRETRAIN = envs.make("grid_pinpad")
_, POST = envs.make("grid_pinpad", tasks="post")
_, ANY = envs.make("grid_pinpad", tasks="any_pretrain")
step = jax.jit(ENV.step)
reset = jax.jit(ENV.reset)


def make_state(agent, colors, walls, task="0-1-4-5-0-1", progress=0, t=0, params=PRETRAIN):
    """A state with a hand-placed layout. `task` must be a row of params' table."""
    row, length = parse_tasks((task,), 8)
    table = np.asarray(params.tasks)
    matches = np.where((table == row[0]).all(axis=1))[0]
    task_id = int(matches[0]) if len(matches) else 0
    if bool(params.any_task):
        candidates = np.asarray(params.task_lens) > 0
    else:
        candidates = np.arange(table.shape[0]) == task_id
    return GridPinpadState(
        agent=jnp.asarray(agent, jnp.int32),
        colors=jnp.asarray(colors, jnp.int32),
        walls=jnp.asarray(walls, jnp.int32),
        task=jnp.asarray(row[0]),
        task_len=jnp.int32(length[0]),
        task_id=jnp.int32(task_id),
        progress=jnp.int32(progress),
        candidates=jnp.asarray(candidates),
        t=jnp.int32(t),
    )


# Colours along the top row, walls along the bottom row: an open field in between.
ROW_COLORS = [[0, c] for c in range(7)] + [[1, 6]]
ROW_WALLS = [[6, 0], [6, 1], [6, 2], [6, 3]]


@jax.jit
def reference_leg_distances(agent, colors, walls, task, task_len):
    """Slow, obviously-correct leg lengths: one distance field per leg."""
    wall_mask = grid_paths.cells_mask(walls, 7)

    def leg(i):
        target = jnp.maximum(task[i], 0)
        others = jnp.where((jnp.arange(8) != target)[:, None], colors, -1)
        blocked = wall_mask | grid_paths.cells_mask(others, 7)
        source = jnp.where(i == 0, agent, colors[jnp.maximum(task[i - 1], 0)])
        dist = grid_paths.distance_field(colors[target], blocked)[source[0], source[1]]
        return jnp.where(i < task_len, dist, 0)

    return jax.vmap(leg)(jnp.arange(MAX_TASK_LEN))
