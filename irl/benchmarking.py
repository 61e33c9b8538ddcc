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


def time_interleaved(fns: dict, *args, repeats: int) -> dict:
    """Median seconds per call of each of several functions, after one warm-up call each, with
    the calls taken in turn (a, b, c, a, b, c, ...): on a shared, noisy machine every function
    sees the same slow and fast spells, so ratios between them hold better than timings taken
    one function after the other."""
    for fn in fns.values():
        jax.block_until_ready(fn(*args))
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            jax.block_until_ready(fn(*args))
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


@functools.cache
def matmul_peak_flops(n: int = 1024, repeats: int = 7) -> float:
    """FLOP/s of one jitted float32 n x n matmul: the yardstick for model-FLOP utilisation."""
    a = jax.random.normal(jax.random.key(0), (n, n))
    matmul = jax.jit(lambda x, y: x @ y)
    return 2 * n**3 / time_call(matmul, a, a, repeats=repeats)
