"""Pieces both base models share: the observation embedding, the layer-range slice of stacked
block weights, and the check of a split layer."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def embed(params, obs):
    """obs [..., T, obs_size] (any numeric dtype) -> e_0 [..., T, D]."""
    return obs.astype(jnp.float32) @ params["embed"]["w"] + params["embed"]["b"]


def layer_slice(params, start: int, stop: int):
    """The stacked per-layer weights of blocks start..stop-1."""
    return jax.tree.map(lambda w: w[start:stop], params["layers"])


def check_layer(layer: int, n_layers: int) -> None:
    if not 0 <= layer <= n_layers:
        raise ValueError(f"layer must be in 0..{n_layers}, got {layer}")
