"""GridPinpad: visit coloured cells of a 7x7 grid in a task-specific order (SPEC.md section 2).

Pure JAX: `reset` and `step` are jittable and vmappable functions of (key, state, params).
The layout (8 colours, 4 walls, the agent) is redrawn at every reset; a layout on which the
drawn task cannot be solved is redrawn inside the jitted reset, a bounded number of times.
Visits become progress, failure or success by the rule the pinpad worlds share (pinpad.py).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from irl.envs import grid_paths
from irl.envs.bitboard import FLOOD_CHUNK, Bitboard
from irl.envs.key_bits import key_bits
from irl.envs.pinpad import PinpadParams, initial_candidates, visit_outcome
from irl.envs.tasks import MAX_TASK_LEN

GRID_SIZE = 7
N_COLORS = 8
N_WALLS = 4
N_CHANNELS = N_COLORS + N_WALLS + 1  # colours, wall ids, agent
OBS_SIZE = GRID_SIZE * GRID_SIZE * N_CHANNELS  # 637
N_ACTIONS = 4
COLORS_PER_SUBGOAL = 2  # subgoal k is the colour pair (2k, 2k+1)
MAX_REDRAWS = 64  # at most ~19% of layouts fail, so 64 failures in a row has odds below 1e-45


GridPinpadParams = PinpadParams


@struct.dataclass
class GridPinpadState:
    agent: jax.Array  # int32 [2] (row, col)
    colors: jax.Array  # int32 [N_COLORS, 2]
    walls: jax.Array  # int32 [N_WALLS, 2]
    task: jax.Array  # int32 [MAX_TASK_LEN], the drawn task, padded with -1
    task_len: jax.Array  # int32 []
    task_id: jax.Array  # int32 [], row of the task table
    progress: jax.Array  # int32 [], colours of the task visited so far, in order
    candidates: jax.Array  # bool [n_tasks], tasks still consistent with the visits so far
    t: jax.Array  # int32 [], steps taken


def current_subgoal(state: GridPinpadState) -> jax.Array:
    """Identity (0..3) of the subgoal being pursued: the pair holding the next colour."""
    index = jnp.minimum(state.progress, state.task_len - 1)
    return state.task[index] // COLORS_PER_SUBGOAL


def observation(state: GridPinpadState) -> jax.Array:
    """uint8 [637]: one-hot [G, G, 13] flattened in C order (SPEC.md section 2).

    Channel c < 8 is colour c, 8 + w is wall number w, 12 the agent. Neither the task nor the
    progress is observed. uint8 rather than float: a quarter of the bytes in rollouts and data
    batches (models cast on input); written as a scatter of 13 ones, the cheapest form on CPU.
    """
    objects = jnp.concatenate([state.colors, state.walls, state.agent[None]], axis=0)  # [13, 2]
    channel = jnp.arange(N_CHANNELS)
    flat = (objects[:, 0] * GRID_SIZE + objects[:, 1]) * N_CHANNELS + channel
    return jnp.zeros(OBS_SIZE, jnp.uint8).at[flat].set(1, unique_indices=True)


N_OBJECTS = N_COLORS + N_WALLS + 1  # colours, walls, then the agent
BOARD = Bitboard(GRID_SIZE)


def draw_cells(bits: jax.Array, n_cells: int) -> jax.Array:
    """int32 [n]: distinct cells of 0..n_cells-1, a uniform ordered sample without replacement,
    from n random words (uint32 [n]).

    Object k takes the r-th free cell, r uniform over the n_cells - k still free. With the taken
    cells kept sorted, o_1 < o_2 < ..., the r-th free cell is r + #{j : o_j - (j-1) <= r}
    (o_j - (j-1) free cells lie below o_j). Everything is elementwise on [n] vectors, so a batch
    of draws fuses into a few kernels, several times cheaper on CPU than sorting n_cells keys.
    """
    n = bits.shape[0]
    index = jnp.arange(n)
    taken_sorted = jnp.full((n,), n_cells + n, jnp.int32)  # padding sorts last
    cells = []
    for k in range(n):
        rank = (bits[k] % jnp.uint32(n_cells - k)).astype(jnp.int32)
        cell = rank + jnp.sum(taken_sorted - index <= rank)
        position = jnp.sum(taken_sorted < cell)
        shifted = jnp.concatenate([taken_sorted[:1], taken_sorted[:-1]])
        taken_sorted = jnp.where(index < position, taken_sorted, jnp.where(index == position, cell, shifted))
        cells.append(cell)
    return jnp.stack(cells)


def _draw_layout(bits):
    cells = draw_cells(bits, GRID_SIZE * GRID_SIZE)
    rc = jnp.stack([cells // GRID_SIZE, cells % GRID_SIZE], axis=-1)
    return rc[N_COLORS + N_WALLS], rc[:N_COLORS], rc[N_COLORS:N_COLORS + N_WALLS]


LEG_GROUP = 6  # legs searched together: every leg of a pretraining task (6 colours)
if MAX_TASK_LEN % LEG_GROUP:
    raise ValueError(f"MAX_TASK_LEN ({MAX_TASK_LEN}) must be a multiple of LEG_GROUP ({LEG_GROUP})")


def leg_distances(agent, colors, walls, task, task_len) -> jax.Array:
    """int32 [MAX_TASK_LEN]: shortest-path length of each leg of the task (start -> colour 0,
    colour 0 -> colour 1, ...) avoiding walls and every colour but the leg's target; 0 for
    legs past the task's length, UNREACHABLE for a leg that cannot be walked.

    A breadth-first search per leg on bitboards, LEG_GROUP legs at once; a group that starts
    past the task's length is not searched (the 6 padded legs of a pretraining task cost
    nothing, 17% of a random-action rollout at batch 8192). The expert (eps=0) walks exactly
    these paths, so sum(leg_distances) is its episode length.
    """
    ends = jnp.concatenate([colors, agent[None]])  # [N_COLORS + 1, 2]; the agent is index N_COLORS
    end_bits = BOARD.from_cells(ends)
    free = BOARD.free_of(jnp.concatenate([colors, walls]))
    legs = jnp.arange(MAX_TASK_LEN)
    source = jnp.where(legs == 0, N_COLORS, jnp.maximum(jnp.roll(task, 1), 0))

    def search(first):
        """Distances of legs first .. first + LEG_GROUP - 1."""
        group = lambda x: jax.lax.dynamic_slice_in_dim(x, first, LEG_GROUP)  # noqa: E731
        target = tuple(e[jnp.maximum(group(task), 0)] for e in end_bits)
        unused = group(legs) >= task_len

        def touches_target(seen):
            return BOARD.any(tuple(g & t for g, t in zip(BOARD.dilate(seen), target)))

        # `seen` holds the cells within k moves of the source after k steps; the target is k+1
        # moves away at the first k where it touches `seen`, so counting the steps before that
        # gives the distance. Carrying only (seen, count) keeps XLA's fused loop body small.
        def chunk(carry):
            seen, untouched, _ = carry
            for _ in range(FLOOD_CHUNK):
                touched = touches_target(seen)
                untouched = untouched + (~touched).astype(jnp.int32)
                new = tuple((g & f) | s for g, f, s in zip(BOARD.dilate(seen), free, seen))
                grew = (new[0] != seen[0]) | (new[1] != seen[1])
                seen = new
            return seen, untouched, jnp.any(~touched & grew & ~unused)

        start = tuple(e[group(source)] for e in end_bits)
        seen, untouched, _ = jax.lax.while_loop(
            lambda c: c[2], chunk, (start, jnp.zeros(LEG_GROUP, jnp.int32), jnp.array(True))
        )
        return jnp.where(unused, 0, jnp.where(touches_target(seen), untouched + 1, grid_paths.UNREACHABLE))

    def next_group(carry):
        first, dist = carry
        return first + LEG_GROUP, jax.lax.dynamic_update_slice_in_dim(dist, search(first), first, 0)

    dist = jnp.zeros(MAX_TASK_LEN, jnp.int32)
    return jax.lax.while_loop(lambda c: c[0] < task_len, next_group, (jnp.int32(0), dist))[1]


def solvable(agent, colors, walls, task, task_len, time_limit) -> jax.Array:
    """bool []: can the expert finish the task on this layout within the time limit?"""
    dist = leg_distances(agent, colors, walls, task, task_len)
    return jnp.all(dist < grid_paths.UNREACHABLE) & (jnp.sum(dist) <= time_limit)


class GridPinpad:
    """The GridPinpad world. Stateless: every method is a pure function of its arguments."""

    grid_size = GRID_SIZE
    n_colors = N_COLORS
    n_walls = N_WALLS
    obs_size = OBS_SIZE
    n_actions = N_ACTIONS
    colors_per_subgoal = COLORS_PER_SUBGOAL
    current_subgoal = staticmethod(current_subgoal)

    def _first_state(self, key: jax.Array, params: GridPinpadParams, attempt: jax.Array | int) -> GridPinpadState:
        """Attempt `attempt` at a first state for the task drawn from `key`, solvable or not.
        The task depends on the key only; the layout on the key and the attempt (key_bits
        counter 0 draws the task, counters 1 + N_OBJECTS * attempt + k the layout)."""
        n_tasks = params.tasks.shape[0]
        task_id = (key_bits(key, 0) % jnp.uint32(n_tasks)).astype(jnp.int32)
        counters = 1 + N_OBJECTS * jnp.asarray(attempt, jnp.uint32) + jnp.arange(N_OBJECTS, dtype=jnp.uint32)
        agent, colors, walls = _draw_layout(key_bits(key, counters))
        return GridPinpadState(
            agent=agent,
            colors=colors,
            walls=walls,
            task=params.tasks[task_id],
            task_len=params.task_lens[task_id],
            task_id=task_id,
            progress=jnp.int32(0),
            candidates=initial_candidates(task_id, params),
            t=jnp.int32(0),
        )

    def reset_attempt(
        self, key: jax.Array, params: GridPinpadParams, attempt: jax.Array | int = 0
    ) -> tuple[jax.Array, GridPinpadState, jax.Array]:
        """One draw of the layout for the task drawn from `key`: (obs, state, solvable).

        `reset(key)` is the first solvable attempt 0, 1, 2, ... of the same key, so a batched
        caller can try attempt 0 for many keys and finish only the failures with `reset_from`.
        """
        state = self._first_state(key, params, attempt)
        ok = solvable(state.agent, state.colors, state.walls, state.task, state.task_len, params.time_limit)
        return observation(state), state, ok

    def reset(self, key: jax.Array, params: GridPinpadParams) -> tuple[jax.Array, GridPinpadState]:
        """A new episode: a task drawn uniformly from the table and a solvable layout for it
        (drawn uniformly, redrawn while the expert could not finish within the time limit)."""
        return self.reset_from(key, params, 0)

    def reset_from(
        self, key: jax.Array, params: GridPinpadParams, first_attempt: int
    ) -> tuple[jax.Array, GridPinpadState]:
        """`reset(key)` for a caller that knows attempts 0 .. first_attempt - 1 failed: the first
        solvable attempt from `first_attempt` on (the last one, MAX_REDRAWS - 1, if none is)."""

        def redraw(carry):
            attempt = carry[0]
            return (attempt + 1, *self.reset_attempt(key, params, attempt))

        first = self.reset_attempt(key, params, first_attempt)
        _, obs, state, _ = jax.lax.while_loop(
            lambda c: ~c[3] & (c[0] < MAX_REDRAWS), redraw, (jnp.int32(first_attempt + 1), *first)
        )
        return obs, state

    def step(
        self, key: jax.Array, state: GridPinpadState, action: jax.Array, params: GridPinpadParams
    ) -> tuple[jax.Array, GridPinpadState, jax.Array, jax.Array, dict[str, Any]]:
        """One move. `key` is unused (the world is deterministic) but kept for the env contract.

        Returns (obs [637], state, reward [], done [], info) with info holding `success`,
        `failure`, `truncated`, `subgoal` (of the new state) and `progress`.
        """
        del key
        agent = grid_paths.move(state.agent, action, state.walls, GRID_SIZE)
        moved = jnp.any(agent != state.agent)
        on_color = jnp.all(state.colors == agent, axis=-1)  # [N_COLORS]
        visit = moved & jnp.any(on_color)
        color = jnp.argmax(on_color)

        progress, candidates, success, failure = visit_outcome(state.progress, state.candidates, visit, color, params)
        t = state.t + 1
        truncated = (t >= params.time_limit) & ~success & ~failure
        done = success | failure | truncated

        state = state.replace(agent=agent, progress=progress, candidates=candidates, t=t)
        info = {
            "success": success,
            "failure": failure,
            "truncated": truncated,
            "subgoal": current_subgoal(state),
            "progress": progress,
        }
        return observation(state), state, success.astype(jnp.float32), done, info
