import jax.numpy as jnp

from irl.benchmarking import time_interleaved


def test_time_interleaved_takes_the_calls_in_turn():
    order = []

    def counted(name):
        def fn(x):
            order.append(name)
            return jnp.asarray(x)
        return fn

    medians = time_interleaved({"a": counted("a"), "b": counted("b")}, 1.0, repeats=3)
    assert set(medians) == {"a", "b"} and all(m >= 0 for m in medians.values())
    assert order == ["a", "b"] * 4  # one warm-up call each, then three rounds in turn
