import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from irl.envs.bitboard import Bitboard


def decode(board, bb: Bitboard) -> np.ndarray:
    lo, hi = (int(w) for w in board)
    grid = np.zeros((bb.size, bb.size), bool)
    for r in range(bb.size):
        word, row = (lo, r) if r < bb.rows_lo else (hi, r - bb.rows_lo)
        for c in range(bb.size):
            grid[r, c] = (word >> (row * bb.size + c)) & 1
    return grid


@given(st.sampled_from([4, 7, 8]), st.lists(st.tuples(st.integers(0, 7), st.integers(0, 7)), min_size=1, max_size=10))
def test_dilate_and_free_of_match_a_plain_grid(size, cells):
    bb = Bitboard(size)
    cells = np.array([(r % size, c % size) for r, c in cells])
    board = bb.union(bb.from_cells(jnp.asarray(cells)))
    grid = np.zeros((size, size), bool)
    grid[cells[:, 0], cells[:, 1]] = True
    assert (decode(board, bb) == grid).all()
    grown = grid.copy()
    grown[1:] |= grid[:-1]
    grown[:-1] |= grid[1:]
    grown[:, 1:] |= grid[:, :-1]
    grown[:, :-1] |= grid[:, 1:]
    assert (decode(bb.dilate(board), bb) == grown).all()
    assert (decode(bb.free_of(jnp.asarray(cells)), bb) == ~grid).all()


def test_flood_stays_inside_passable_cells():
    bb = Bitboard(7)
    wall = [(r, 3) for r in range(7)]  # a full column splits the grid in two
    passable = bb.free_of(jnp.asarray(wall))
    seed = bb.from_cells(jnp.array([0, 0]))
    region = decode(jax.jit(bb.flood)(seed, passable), bb)
    assert region[:, :3].all() and not region[:, 3:].any()


@given(st.sampled_from([4, 7]), st.tuples(st.integers(0, 6), st.integers(0, 6)),
       st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), max_size=20))
def test_distance_field_fixed_rounds_equals_the_early_exit_loop(size, target, blocked_cells):
    from irl.envs import grid_paths

    target = jnp.array(target) % size
    blocked = grid_paths.cells_mask(jnp.array(blocked_cells, jnp.int32).reshape(-1, 2) % size, size)
    loop = grid_paths.distance_field(target, blocked, fixed_rounds=False)
    unrolled = grid_paths.distance_field(target, blocked, fixed_rounds=True)
    assert (np.asarray(loop) == np.asarray(unrolled)).all()
