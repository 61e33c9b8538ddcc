"""Pieces both base models share: the layer-range slice of stacked block weights, the check of
a split layer, and a dense product whose gradient XLA's CPU backend computes well. (The
observation embedding lives in encoders.py.)"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def layer_slice(params, start: int, stop: int):
    """The stacked per-layer weights of blocks start..stop-1."""
    return jax.tree.map(lambda w: w[start:stop], params["layers"])


def unstacked_layers(params, start: int, stop: int) -> list:
    """The weights of blocks start..stop-1 as one pytree per layer, for a Python loop over
    layers. Split rather than indexed: the gradient of a split is one concatenation, where
    indexing each layer out would pad every layer's gradient to the whole stack and add them."""
    if stop <= start:
        return []
    leaves, tree = jax.tree.flatten(layer_slice(params, start, stop))
    per_leaf = [jnp.split(w, stop - start) for w in leaves]
    return [jax.tree.unflatten(tree, [parts[i][0] for parts in per_leaf]) for i in range(stop - start)]


@jax.custom_vjp
def dense(x: jax.Array, w: jax.Array) -> jax.Array:
    """x [..., D] @ w [D, E]. The same product and gradients as `x @ w`; only the form of the
    gradients differs: both are products of the flattened [tokens, features] matrices with
    the contraction named in place (tokens for the weight, features for the input), which
    XLA's CPU backend runs without the transposes it inserts for autodiff's products over the
    unflattened leading axes (about 5% of the paper-size training step, measured)."""
    return x @ w


def _dense_fwd(x, w):
    return x @ w, (x, w)


def _dense_bwd(residuals, g):
    x, w = residuals
    flat = lambda a: a.reshape(-1, a.shape[-1])
    dx = jax.lax.dot_general(flat(g), w, (((1,), (1,)), ((), ()))).reshape(x.shape)
    dw = jax.lax.dot_general(flat(x), flat(g), (((0,), (0,)), ((), ())))
    return dx, dw


dense.defvjp(_dense_fwd, _dense_bwd)


def check_layer(layer: int, n_layers: int) -> None:
    if not 0 <= layer <= n_layers:
        raise ValueError(f"layer must be in 0..{n_layers}, got {layer}")
