"""Moves and shortest paths on a small grid with blocked cells, in JAX.

`move` is the movement rule shared by GridPinpad and its expert. `distance_field` is the plain
reference for shortest paths (min-plus relaxation over the four neighbours until nothing
changes): clear, but far slower on CPU than the bitboard searches the environment and the
expert use, which the tests check against it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

UNREACHABLE = 10_000
# Action numbering of SPEC.md: 0 up (row-1), 1 right (col+1), 2 down (row+1), 3 left (col-1).
MOVES = jnp.array([[-1, 0], [0, 1], [1, 0], [0, -1]], jnp.int32)


def distance_field(target: jax.Array, blocked: jax.Array, fixed_rounds: bool | None = None) -> jax.Array:
    """Fewest moves from every cell to `target`.

    target: int32 [2] (row, col). blocked: bool [G, G], cells a path may not pass through or
    end on; the target itself is always enterable and a path may start on a blocked cell.
    Returns int32 [G, G]; UNREACHABLE where no path exists.

    fixed_rounds: relax G*G - 1 times (the longest possible path), unrolled, instead of until
    nothing changes. Same result. On accelerators it avoids a data-dependent loop, whose exit
    test syncs with the host each round; on CPU the early exit is faster (AntPinpad's expert
    training on 2 cores: 14.4k steps/s with the loop, 5.9k unrolled). None: unrolled on
    every backend but the CPU.
    """
    if fixed_rounds is None:
        fixed_rounds = jax.default_backend() != "cpu"
    size = blocked.shape[0]
    rows, cols = jnp.meshgrid(jnp.arange(size), jnp.arange(size), indexing="ij")
    is_target = (rows == target[0]) & (cols == target[1])
    passable = ~blocked | is_target
    start = jnp.where(is_target, 0, UNREACHABLE).astype(jnp.int32)

    def relax(dist):
        through = jnp.pad(jnp.where(passable, dist, UNREACHABLE), 1, constant_values=UNREACHABLE)
        best = jnp.minimum(
            jnp.minimum(through[:-2, 1:-1], through[2:, 1:-1]),
            jnp.minimum(through[1:-1, :-2], through[1:-1, 2:]),
        )
        return jnp.minimum(dist, jnp.minimum(best + 1, UNREACHABLE))

    if fixed_rounds:
        dist = start
        for _ in range(size * size - 1):
            dist = relax(dist)
        return dist

    def body(carry):
        dist, _ = carry
        new = relax(dist)
        return new, jnp.any(new != dist)

    dist, _ = jax.lax.while_loop(lambda c: c[1], body, (start, jnp.array(True)))
    return dist


def cells_mask(cells: jax.Array, size: int) -> jax.Array:
    """bool [size, size], True on each (row, col) of cells int32 [N, 2]."""
    flat = cells[:, 0] * size + cells[:, 1]
    return jnp.any(flat[:, None] == jnp.arange(size * size)[None, :], axis=0).reshape(size, size)


def move(position: jax.Array, action: jax.Array, walls: jax.Array, size: int) -> jax.Array:
    """The cell reached by `action` from `position` (int32 [2]); a move off the grid or onto
    one of `walls` (int32 [W, 2]) leaves the position unchanged."""
    target = position + MOVES[action]
    inside = jnp.all((target >= 0) & (target < size))
    into_wall = jnp.any(jnp.all(walls == target, axis=-1))
    return jnp.where(inside & ~into_wall, target, position)

