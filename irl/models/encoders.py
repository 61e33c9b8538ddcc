"""Observation encoders: how one observation becomes the embedding e_0 (a config choice).

- "linear" (the paper's): e_0 = obs @ W + b on the raw observation (for the grid, the flattened
  637-value one-hot).
- "agent_relative" (ours, grid only): the same observation re-expressed around the agent. Each
  object (8 colours, and the 4 walls sharing one table) contributes the embedding row of its
  offset from the agent, (d_row, d_col) in -6..6, and the agent contributes embeddings of its
  own row and column, so that the grid border stays visible. It is linear in a one-hot of those
  offsets, computed with gathers; "a wrong colour is right above me" is one embedding row
  instead of a conjunction over 49 cells, which is what makes it learn much faster on a CPU
  budget. It is a deterministic function of the observation: nothing the paper's model does
  not see.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from irl.envs.grid_pinpad import GRID_SIZE, N_CHANNELS, N_COLORS, OBS_SIZE
from irl.models.common import dense

ENCODERS = ("linear", "agent_relative")
_SPAN = 2 * GRID_SIZE - 1  # offsets -6..6
_KINDS = N_COLORS + 1  # one table per colour, one shared by the walls
_TERMS = N_CHANNELS - 1 + 2  # summed embedding rows: 12 objects, agent row, agent col


def check_encoder(encoder: str, obs_size: int) -> None:
    if encoder not in ENCODERS:
        raise ValueError(f"encoder must be one of {ENCODERS}, got {encoder!r}")
    if encoder == "agent_relative" and obs_size != OBS_SIZE:
        raise ValueError(f"the agent_relative encoder reads GridPinpad observations ({OBS_SIZE} values), got obs_size={obs_size}")


def init_embed(key: jax.Array, encoder: str, obs_size: int, width: int, scale: float) -> dict:
    """Embedding parameters, variance-scaled by the number of inputs that are summed."""
    if encoder == "linear":
        return {"w": jax.random.normal(key, (obs_size, width)) * jnp.sqrt(scale / obs_size), "b": jnp.zeros(width)}
    k_obj, k_row, k_col = jax.random.split(key, 3)
    std = jnp.sqrt(scale / _TERMS)
    return {
        "offsets": jax.random.normal(k_obj, (_KINDS, _SPAN, _SPAN, width)) * std,
        "row": jax.random.normal(k_row, (GRID_SIZE, width)) * std,
        "col": jax.random.normal(k_col, (GRID_SIZE, width)) * std,
        "b": jnp.zeros(width),
    }


def object_cells(obs: jax.Array) -> jax.Array:
    """Grid observation [..., 637] -> (row, col) of each channel's object [..., 13, 2]."""
    grid = obs.reshape(*obs.shape[:-1], GRID_SIZE * GRID_SIZE, N_CHANNELS)
    cell = jnp.argmax(grid, axis=-2)
    return jnp.stack([cell // GRID_SIZE, cell % GRID_SIZE], axis=-1)


def embed(params: dict, obs: jax.Array, encoder: str) -> jax.Array:
    """obs [..., obs_size] (any numeric dtype) -> e_0 [..., D]."""
    p = params["embed"]
    if encoder == "linear":
        return dense(obs.astype(jnp.float32), p["w"]) + p["b"]
    cells = object_cells(obs)
    agent, objects = cells[..., -1, :], cells[..., :-1, :]
    offset = objects - agent[..., None, :] + GRID_SIZE - 1  # [..., 12, 2] in 0..12
    kind = jnp.minimum(jnp.arange(N_CHANNELS - 1), N_COLORS)  # walls share table N_COLORS
    rows = p["offsets"][kind, offset[..., 0], offset[..., 1]]  # [..., 12, D]
    return rows.sum(-2) + p["row"][agent[..., 0]] + p["col"][agent[..., 1]] + p["b"]
