"""Timing helpers shared by the benchmark scripts: medians of repeats and a matmul peak."""

from __future__ import annotations

import statistics
import time

import jax
import jax.numpy as jnp


def median_seconds(fn, repeats: int = 7, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs, after ``warmup`` runs not counted.

    ``fn`` must block until its result is ready (``jax.block_until_ready``).
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def compile_seconds(jitted, *args, **kwargs):
    """Time to lower and compile ``jitted`` for these arguments; returns (seconds, compiled)."""
    t0 = time.perf_counter()
    compiled = jitted.lower(*args, **kwargs).compile()
    return time.perf_counter() - t0, compiled


def matmul_gflops(m: int, n: int, h: int, dtype=jnp.float32, repeats: int = 7) -> float:
    """Achieved GFLOP/s of a jitted (m, n) @ (n, h) matmul in this process: the reference peak."""
    ka, kb = jax.random.split(jax.random.key(0))
    a = jax.random.uniform(ka, (m, n), dtype)
    b = jax.random.uniform(kb, (n, h), dtype)
    f = jax.jit(jnp.matmul)
    t = median_seconds(lambda: f(a, b).block_until_ready(), repeats, warmup=2)
    return 2.0 * m * n * h / t / 1e9
