"""Random words from a JAX key by an integer hash, with no loop.

On CPU, `jax.random` runs each threefry call as a loop of five rounds, and a loop's fixed cost
per round outweighs the hashing itself when a call asks for a dozen words, as a reset does.
`key_bits` mixes a counter with each word of the key's data in turn through a 32-bit
finaliser (constants of the "lowbias32" hash), all elementwise, so XLA fuses it into the
code that uses the words. Distinct counters give independent-looking words; the draws it
serves (a task and a layout) need uniformity, not cryptographic strength.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _mix(x: jax.Array) -> jax.Array:
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def key_bits(key: jax.Array, counters: jax.Array) -> jax.Array:
    """uint32 words, one per counter (any shape), a pure function of (key, counter)."""
    bits = _mix(jnp.asarray(counters, jnp.uint32) * jnp.uint32(0x9E3779B9) + jnp.uint32(0x85EBCA6B))
    for word in jax.random.key_data(key).reshape(-1):  # two words for threefry keys
        bits = _mix(bits ^ word.astype(jnp.uint32))
    return bits
