"""Work on the set rows of a batch only: gather them into a buffer, compute, scatter back."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def masked_update(rows_fn, mask: jax.Array, capacity: int, base):
    """`base` with row i replaced by the computed row i wherever `mask` ([n] bool) is set.

    base is a pytree of [n, ...] arrays; rows_fn maps int32 row indices [capacity] to a pytree
    of those rows ([capacity, ...] each; `jax.vmap` of a one-row function serves). The set
    rows are gathered `capacity` at a time, computed, and scattered back in place, so the cost
    follows the number of set rows: no row set, nothing runs; more than `capacity`, another
    round (the same answer, later). Rows past the last set one repeat row n - 1 and are dropped.
    """
    n = mask.shape[0]
    capacity = min(capacity, n)

    def one_round(carry):
        pending, out = carry
        rows = jnp.nonzero(pending, size=capacity, fill_value=n)[0]  # n past the last set row
        new = rows_fn(jnp.minimum(rows, n - 1))
        out = jax.tree.map(lambda o, r: o.at[rows].set(r, mode="drop"), out, new)
        return pending.at[rows].set(False, mode="drop"), out

    return jax.lax.while_loop(lambda c: jnp.any(c[0]), one_round, (mask, base))[1]
