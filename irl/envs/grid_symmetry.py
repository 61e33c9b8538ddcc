"""The grid world's symmetries: the rotations and reflections of the board.

The layout distribution, the dynamics and the expert (shortest paths, uniform among the
optimal moves) do not change when the board is rotated or reflected and the moves are mapped
with it, so a transformed expert episode is an expert episode of the transformed layout, as
likely as the original. A code that names a subgoal (a colour pair) means the same in both; a
code that names a cell or a heading does not. Element 0 is the identity.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from irl.data import TokenBatch
from irl.envs.grid_pinpad import GRID_SIZE, N_CHANNELS

# the moves as (row, col) displacements: 0 up, 1 right, 2 down, 3 left (SPEC.md section 2)
DISPLACEMENTS = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]])


def _matrices() -> np.ndarray:
    """[8, 2, 2]: the four rotations by 90 degrees, then the same each followed by a mirror."""
    rotate, mirror = np.array([[0, -1], [1, 0]]), np.array([[1, 0], [0, -1]])
    rotations = [np.linalg.matrix_power(rotate, k) for k in range(4)]
    return np.stack(rotations + [mirror @ r for r in rotations])


MATRICES = _matrices()
N_SYMMETRIES = len(MATRICES)
CENTRE = (GRID_SIZE - 1) // 2


def _action_maps() -> np.ndarray:
    """[8, 4]: the move that move a becomes under each element."""
    moved = np.einsum("gij,aj->gai", MATRICES, DISPLACEMENTS)
    return np.argmax((moved[:, :, None, :] == DISPLACEMENTS[None, None]).all(-1), axis=-1)


def _source_cells() -> np.ndarray:
    """[8, G*G]: for each cell of the transformed board, the cell of the original it shows."""
    rc = np.stack(np.divmod(np.arange(GRID_SIZE * GRID_SIZE), GRID_SIZE), axis=-1) - CENTRE
    source = np.einsum("gji,cj->gci", MATRICES, rc) + CENTRE  # M^-1 = M^T for these matrices
    return source[..., 0] * GRID_SIZE + source[..., 1]


ACTION_MAPS = _action_maps()
SOURCE_CELLS = _source_cells()


def transform_cells(rc: jax.Array, g: int | jax.Array) -> jax.Array:
    """int (row, col) [..., 2] -> the same cells on the board transformed by element g."""
    return jnp.einsum("ij,...j->...i", jnp.asarray(MATRICES)[g], rc - CENTRE) + CENTRE


def transform_obs(obs: jax.Array, g: jax.Array) -> jax.Array:
    """Observations [B, T, G*G*C] of episode b -> those of its board transformed by g[b]."""
    cells = obs.reshape(*obs.shape[:-1], GRID_SIZE * GRID_SIZE, N_CHANNELS)
    index = jnp.asarray(SOURCE_CELLS)[g][:, None, :, None]  # [B, 1, G*G, 1]
    return jnp.take_along_axis(cells, index, axis=-2).reshape(obs.shape)


def transform_tokens(tokens: TokenBatch, key: jax.Array) -> TokenBatch:
    """Each row (one episode) seen on its board under a random element other than the
    identity: observations moved cell by cell, moves (and the expert's distribution over
    them) mapped with them."""
    g = jax.random.randint(key, (tokens.obs.shape[0],), 1, N_SYMMETRIES)
    maps = jnp.asarray(ACTION_MAPS)[g]  # [B, 4]
    policy = tokens.policy
    if policy is not None:  # the new move maps[a] gets the probability of the old move a
        inverse = jnp.argsort(maps, axis=-1)
        policy = jnp.take_along_axis(policy, jnp.broadcast_to(inverse[:, None], policy.shape), axis=-1)
    return TokenBatch(obs=transform_obs(tokens.obs, g), next_obs=transform_obs(tokens.next_obs, g),
                      actions=jnp.take_along_axis(maps, tokens.actions, axis=-1), mask=tokens.mask,
                      segments=tokens.segments, subgoal=tokens.subgoal, policy=policy)
