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


def interleaved_medians(fns: dict, repeats: int = 7, warmup: int = 1, burst: int = 1) -> dict:
    """Median wall time of each ``fns[name]()``, the functions taking turns in every round.

    Taking turns spreads the noise of a shared machine evenly over the contenders, so their
    ratio is fairer than that of back-to-back blocks of runs. With ``burst`` > 1 each turn calls
    its function ``burst + 1`` times and times the last ``burst``: the first call of a turn can
    pay for the previous contender's threads (OpenMP's spin-waiting ones, say) still holding the
    cores.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            if burst > 1:
                fn()
            for _ in range(burst):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def compile_seconds(jitted, *args, **kwargs):
    """Time to lower and compile ``jitted`` for these arguments; returns (seconds, compiled)."""
    t0 = time.perf_counter()
    compiled = jitted.lower(*args, **kwargs).compile()
    return time.perf_counter() - t0, compiled


def matmul_gflops(m: int, k: int, n: int, dtype=jnp.float32, repeats: int = 7) -> float:
    """Achieved GFLOP/s of a jitted (m, k) @ (k, n) matmul in this process."""
    ka, kb = jax.random.split(jax.random.key(0))
    a = jax.random.uniform(ka, (m, k), dtype)
    b = jax.random.uniform(kb, (k, n), dtype)
    f = jax.jit(jnp.matmul)
    t = median_seconds(lambda: f(a, b).block_until_ready(), repeats, warmup=2)
    return 2.0 * m * k * n / t / 1e9


def matmul_peak_gflops(m: int, n: int, h: int, dtype=jnp.float32) -> float:
    """The best matmul throughput measured here: over a 2048^3 square matmul and the three
    shapes of an autoencoder step with m examples, n visible and h hidden units."""
    shapes = [(2048, 2048, 2048), (m, n, h), (m, h, n), (h, m, n)]
    return max(matmul_gflops(*s, dtype=dtype) for s in shapes)


def save_results(out, name: str, result, table: str) -> None:
    """Writes a benchmark's ``result`` to out/<name>.json and its ``table`` to out/<name>.md,
    and prints the table."""
    import json
    from pathlib import Path

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(result, indent=2, default=str))
    (out / f"{name}.md").write_text(table)
    print(table)
