"""Timing helpers: warm-up then the median of repeats, and this machine's matmul peak."""

from __future__ import annotations

import functools
import statistics
import time

import jax


def time_call(fn, *args, repeats: int) -> float:
    """Median seconds of `repeats` calls after one warm-up (compile) call."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@functools.cache
def matmul_peak_flops(n: int = 1024, repeats: int = 7) -> float:
    """FLOP/s of one jitted float32 n x n matmul: the yardstick for model-FLOP utilisation."""
    a = jax.random.normal(jax.random.key(0), (n, n))
    matmul = jax.jit(lambda x, y: x @ y)
    return 2 * n**3 / time_call(matmul, a, a, repeats=repeats)
