"""The GridPinpad expert: a shortest path to the next colour (SPEC.md section 2).

Every wall and every colour but the next one is an obstacle. Distances come from a
breadth-first search run outward from the next colour on bitboards, stopped as soon as it
reaches one of the agent's neighbours: the neighbours reached first are the optimal moves.
The expert picks uniformly among them; with probability eps it instead picks uniformly among
the safe moves: those that neither fail the episode nor strand the agent.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from irl.envs import grid_paths
from irl.envs.grid_pinpad import BOARD, GRID_SIZE, N_ACTIONS, GridPinpadState


def _next_cells(state: GridPinpadState) -> tuple[jax.Array, jax.Array]:
    """Cells reached by each action, int32 [4, 2], and whether the action moves at all [4]."""
    cells = jax.vmap(lambda a: grid_paths.move(state.agent, a, state.walls, GRID_SIZE))(jnp.arange(N_ACTIONS))
    return cells, jnp.any(cells != state.agent, axis=-1)


def _target(state: GridPinpadState) -> jax.Array:
    """Index of the next colour of the task."""
    return jnp.maximum(state.task[jnp.minimum(state.progress, state.task_len - 1)], 0)


def _passable(state: GridPinpadState, target_bit):
    """Cells a walk to the next colour may use: neither wall nor colour, plus that colour."""
    free = BOARD.free_of(jnp.concatenate([state.colors, state.walls]))
    return tuple(f | t for f, t in zip(free, target_bit))


def _neighbour_bits(state: GridPinpadState):
    """Bitboards of the cell each action moves to ([4] each); empty for a move that bumps."""
    cells, moved = _next_cells(state)
    return tuple(jnp.where(moved, n, jnp.uint32(0)) for n in BOARD.from_cells(cells))


def safe_actions(state: GridPinpadState) -> jax.Array:
    """bool [4]: actions after which the episode neither fails nor becomes unwinnable.

    A move must not enter a colour other than the next one, nor a free pocket from which the
    next colour can no longer be reached (say, a cell whose only exit is the colour just
    visited). A bump into a wall or the edge is a safe no-op.
    """
    target_bit = BOARD.from_cells(state.colors[_target(state)])
    passable = _passable(state, target_bit)
    region = BOARD.flood(target_bit, passable)  # cells from which the next colour is reachable
    neighbours = _neighbour_bits(state)
    _, moved = _next_cells(state)
    return ~moved | BOARD.any(tuple(n & r for n, r in zip(neighbours, region)))


def optimal_actions(state: GridPinpadState) -> jax.Array:
    """bool [4]: actions that start a shortest path to the next colour. All False only when
    the next colour cannot be reached (never on a layout the environment accepts)."""
    target_bit = BOARD.from_cells(state.colors[_target(state)])
    passable = _passable(state, target_bit)
    neighbours = _neighbour_bits(state)

    def touched(seen):
        return BOARD.any(tuple(n & s for n, s in zip(neighbours, seen)))  # [4]

    # `seen` grows one move at a time from the next colour; the first neighbours it reaches are
    # the ones closest to it, i.e. the optimal moves.
    def grow(carry):
        seen, _ = carry
        new = tuple((d & p) | s for d, p, s in zip(BOARD.dilate(seen), passable, seen))
        return new, (new[0] != seen[0]) | (new[1] != seen[1])

    seen, _ = jax.lax.while_loop(
        lambda c: ~jnp.any(touched(c[0])) & c[1], grow, (target_bit, jnp.array(True))
    )
    return touched(seen)


def grid_expert_action(key: jax.Array, state: GridPinpadState, eps: float | jax.Array = 0.0) -> jax.Array:
    """int32 []: the expert's action. eps in [0, 1]: probability of a random safe action."""
    return grid_expert_actions(key, state, eps)[0]


def _choices(state: GridPinpadState) -> tuple[jax.Array, jax.Array]:
    """(optimal, safe), bool [4] each: the moves the expert draws from without and with noise."""
    optimal, safe = optimal_actions(state), safe_actions(state)
    return jnp.where(jnp.any(optimal), optimal, safe), safe  # unreachable target: wander safely


def _policy(optimal: jax.Array, safe: jax.Array, eps) -> jax.Array:
    uniform = lambda allowed: allowed / jnp.sum(allowed)
    return (1 - eps) * uniform(optimal) + eps * uniform(safe)


def grid_expert_step(key: jax.Array, state: GridPinpadState, eps: float | jax.Array = 0.0,
                     policy_eps: float | jax.Array | None = None):
    """(taken, optimal, policy): `grid_expert_actions`' two moves and, float32 [4], the
    distribution of a move drawn as the taken one is at noise `policy_eps` (default eps; 0 gives
    the distribution of `optimal`): uniform over the optimal moves, mixed with policy_eps of
    uniform over the safe ones. The policy is the grid's analogue of the ant expert's mean
    action, its intent without its draw. One search for the optimal moves serves all three."""
    noise_key, optimal_key, safe_key = jax.random.split(key, 3)
    optimal, safe = _choices(state)
    pick = lambda k, allowed: jax.random.categorical(k, jnp.where(allowed, 0.0, -jnp.inf)).astype(jnp.int32)
    noisy = jax.random.uniform(noise_key) < eps
    best = pick(optimal_key, optimal)
    policy = _policy(optimal, safe, eps if policy_eps is None else policy_eps)
    return jnp.where(noisy, pick(safe_key, safe), best), best, policy


def grid_expert_actions(key: jax.Array, state: GridPinpadState, eps: float | jax.Array = 0.0):
    """(taken, optimal), int32 [] each: the action the eps-noisy expert takes, and the optimal
    move it would have taken without noise (the same draw: equal whenever no noise fired)."""
    return grid_expert_step(key, state, eps)[:2]
