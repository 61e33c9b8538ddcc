"""What the ant expert is told and rewarded by (SPEC.md section 3): for every cell of the 4x4
grid, the direction of the grid-level shortest path to the next colour of the task, avoiding
the wall and the other colours; and the reward, the torso's velocity along the direction of the
cell it stands in. The PPO expert trained on these walks the grid the way GridPinpad's expert does.

(ours) `path_progress_reward` is a second reward on the same path: the metres per second by
which the torso shortens its way to the colour along the path (straight to the centre of the
path's next cell, then one CELL per cell). It is a difference of potentials, so no loop of
moves earns anything (the paper's reward pays for crossing a turn's boundary forwards and costs
nothing for crossing back), and it steers the torso towards the cells' centres, away from the
colours and the wall beside the path.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from irl.envs import grid_paths
from irl.envs.ant_pinpad import CELL, CONTROL_DT, GRID_SIZE, AntPinpadState, cell_centre, cell_of, current_subgoal

N_DIRECTIONS = 4  # grid_paths.MOVES: 0 up (row-1), 1 right (col+1), 2 down (row+1), 3 left (col-1)
DIRECTION_XY = grid_paths.MOVES[:, ::-1].astype(jnp.float32)  # (d_col, d_row) = (dx, dy): rows grow with y


def path_directions(state: AntPinpadState) -> jax.Array:
    """int32 [GRID_SIZE, GRID_SIZE]: per cell, the move (0..3) that starts a shortest path to the
    next colour, or -1 on the target itself and where no path exists."""
    return path_field(state)[1]


def path_field(state: AntPinpadState) -> tuple[jax.Array, jax.Array]:
    """(distances, directions), int32 [GRID_SIZE, GRID_SIZE] each: per cell, the fewest moves to
    the next colour (grid_paths.UNREACHABLE where no path exists) and path_directions."""
    target = state.colors[current_subgoal(state)]
    others = jnp.any(state.colors != target, axis=-1)[:, None]  # every colour but the target
    blocked_cells = jnp.concatenate([jnp.where(others, state.colors, target), state.walls])
    blocked = grid_paths.cells_mask(blocked_cells, GRID_SIZE)
    dist = grid_paths.distance_field(target, blocked)
    # a path may start on a blocked cell (the colour just visited) but never step onto one
    rows, cols = jnp.meshgrid(jnp.arange(GRID_SIZE), jnp.arange(GRID_SIZE), indexing="ij")
    enterable = ~blocked | ((rows == target[0]) & (cols == target[1]))
    padded = jnp.pad(jnp.where(enterable, dist, grid_paths.UNREACHABLE), 1, constant_values=grid_paths.UNREACHABLE)
    neighbour = jnp.stack([padded[rows + 1 + dr, cols + 1 + dc] for dr, dc in grid_paths.MOVES.tolist()], -1)
    best = jnp.argmin(neighbour, axis=-1).astype(jnp.int32)  # ties: the first move in MOVES order
    useful = (dist > 0) & (dist < grid_paths.UNREACHABLE) & (jnp.min(neighbour, -1) == dist - 1)
    return dist, jnp.where(useful, best, -1)


def direction_features(state: AntPinpadState, directions: jax.Array | None = None) -> jax.Array:
    """float32 [GRID_SIZE * GRID_SIZE * 4]: a one-hot of each cell's path direction (all zeros on
    the target and where no path exists), appended to the observation for the expert.
    `directions`: path_directions(state), when the caller has it already."""
    directions = path_directions(state) if directions is None else directions
    return jax.nn.one_hot(directions, N_DIRECTIONS).reshape(-1)


def direction_reward(state: AntPinpadState, directions: jax.Array | None = None) -> jax.Array:
    """float32 []: the torso's velocity (m/s) along the path direction of its current cell; 0 on
    the target, off the grid and where no path exists."""
    directions = path_directions(state) if directions is None else directions
    inside, _, direction = _cell_and_direction(state.physics.qpos[:2], directions)
    along = state.physics.qvel[:2] @ DIRECTION_XY[jnp.maximum(direction, 0)]
    return jnp.where(inside & (direction >= 0), along, 0.0)


def _cell_and_direction(xy: jax.Array, directions: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(whether xy is on the grid, its cell clipped to the grid, that cell's path direction)."""
    cell = cell_of(xy)
    inside = jnp.all((cell >= 0) & (cell < GRID_SIZE))
    safe = jnp.clip(cell, 0, GRID_SIZE - 1)
    return inside, safe, directions[safe[0], safe[1]]


def metres_to_go(state: AntPinpadState, xy: jax.Array, field: tuple[jax.Array, jax.Array] | None = None) -> jax.Array:
    """float32 []: the way from the point xy to the colour `state` seeks, along its grid-level
    path: straight to the centre of the path's next cell, then CELL metres per cell; 0 on the
    colour; NaN off the grid and on cells with no path.
    `field`: path_field(state), when the caller has it already."""
    dist, directions = path_field(state) if field is None else field
    inside, cell, direction = _cell_and_direction(xy, directions)
    moves_left = dist[cell[0], cell[1]]
    following = cell + grid_paths.MOVES[jnp.maximum(direction, 0)]
    along = jnp.linalg.norm(cell_centre(following) - xy) + CELL * (moves_left - 1)
    return jnp.where(inside & (direction >= 0), along, jnp.where(inside & (moves_left == 0), 0.0, jnp.nan))


def path_progress_reward(before: AntPinpadState, after: AntPinpadState, failed: jax.Array) -> jax.Array:
    """float32 []: (ours) how fast the step from `before` to `after` shortened the torso's way
    (metres_to_go, m/s) to the colour `before` sought: a step that visits it is paid the rest of
    the way; 0 on a step that fails the task (bool `failed`: entering another colour may shorten
    the way; what failing costs is the trainer's penalty)."""
    field = path_field(before)
    gained = metres_to_go(before, before.physics.qpos[:2], field) - metres_to_go(before, after.physics.qpos[:2], field)
    return jnp.where(jnp.isfinite(gained) & ~failed, gained / CONTROL_DT, 0.0)


def guidance(state: AntPinpadState) -> tuple[jax.Array, jax.Array]:
    """(direction_features, direction_reward) of one state, with one shortest-path search."""
    directions = path_directions(state)
    return direction_features(state, directions), direction_reward(state, directions)
