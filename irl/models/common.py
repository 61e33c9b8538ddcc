"""Pieces both base models share: the layer-range slice of stacked block weights and the check
of a split layer. (The observation embedding lives in encoders.py.)"""

from __future__ import annotations

import jax


def layer_slice(params, start: int, stop: int):
    """The stacked per-layer weights of blocks start..stop-1."""
    return jax.tree.map(lambda w: w[start:stop], params["layers"])


def check_layer(layer: int, n_layers: int) -> None:
    if not 0 <= layer <= n_layers:
        raise ValueError(f"layer must be in 0..{n_layers}, got {layer}")
