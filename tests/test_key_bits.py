import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from irl.envs.key_bits import key_bits

WORDS = jax.jit(jax.vmap(lambda k: key_bits(k, jnp.arange(16))))


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(0, 2**20))
def test_a_pure_function_of_key_and_counter(seed, counter):
    key = jax.random.key(seed)
    one = key_bits(key, counter)
    assert one.dtype == jnp.uint32
    assert int(one) == int(key_bits(key, jnp.array([counter, counter + 1]))[0])
    assert int(one) != int(key_bits(jax.random.fold_in(key, 1), counter))


def test_words_are_balanced_and_uncorrelated():
    """Every bit is set half the time, for nearby keys and counters alike, and a word says
    nothing about the next counter's word or the next key's (their xor is balanced too)."""
    words = np.asarray(WORDS(jax.random.split(jax.random.key(0), 4096)))  # [4096, 16]
    n = words.size
    bits = (words[..., None] >> np.arange(32, dtype=np.uint32)) & 1
    # each bit's frequency: 5 standard deviations of a fair coin over n draws
    assert np.abs(bits.mean(axis=(0, 1)) - 0.5).max() < 5 * 0.5 / np.sqrt(n)
    for other in (words[:, 1:] ^ words[:, :-1], words[1:] ^ words[:-1]):
        flips = (other[..., None] >> np.arange(32, dtype=np.uint32)) & 1
        assert np.abs(flips.mean(axis=(0, 1)) - 0.5).max() < 5 * 0.5 / np.sqrt(other.size)


def test_residues_are_uniform():
    """What the draws use: a word modulo a small number is uniform (chi-square, 48 dof)."""
    words = np.asarray(WORDS(jax.random.split(jax.random.key(1), 49 * 50))).reshape(-1)
    counts = np.bincount(words % 49, minlength=49)
    expected = words.size / 49
    assert ((counts - expected) ** 2 / expected).sum() < 90  # p < 1e-4 above ~90
