"""A GPU run checked end to end: the big sweeps and the step, with GFLOP/s against the matmul peak.

Command:   .venv/bin/python experiments/gpu_check.py --images ../shared/data/IMAGES_sparsenet.mat
           --mnist ../shared/data/mnist [--quick]
Needs:     a GPU build of jax (the script runs on whatever ``jax.devices()`` offers; --quick
           shrinks everything to a CPU smoke test of a minute).
Run time:  aimed at under 8 minutes on one H100-class GPU.
Expected:  a table (experiments/results/gpu_check.md). Goals on one H100-class GPU: the
           1,024-member exercise sweep in under a minute; at least 50% of the matmul peak at
           784-196.

Measured in this one process, programs compiled before they are timed (compile time reported
apart):
1. the UFLDL exercise as a 1,024-member L-BFGS sweep (rho x beta 32 x 32, 10,000 8x8 patches,
   64-25-64, at most 400 iterations), whole-sweep wall time;
2. a 256-member L-BFGS sweep at 784-196 on 10,000 MNIST digits (rho x beta 16 x 16, 50
   iterations), its throughput in GFLOP/s (10 m n h FLOPs per member evaluation, counted from
   the members' own evaluation counts) against the matmul peak;
3. one value-and-gradient evaluation at 64-25 and at 784-196 (m = 10,000), single member.
The matmul peak is the best of a 4096^3 (2048^3 with --quick) matmul and the step's shapes.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from timing import matmul_gflops, median_seconds, save_results

from saejax import sweeps, train
from saejax.config import PRESETS
from saejax.data import training_data
from saejax.losses import Hyper


def timed_sweep(config, x, rho, beta, chunk):
    """(compile-and-run seconds, run seconds, result): the second call reuses the programs."""
    t0 = time.perf_counter()
    sweeps.sweep(config, x, rho, beta, chunk_size=chunk, progress=False)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = sweeps.sweep(config, x, rho, beta, chunk_size=chunk, progress=False)
    return first, time.perf_counter() - t0, result


def step_seconds(config, x):
    evaluate = jax.jit(train.make_evaluate(config))
    params = train.init_state(config, x.shape[1], seed=0).params
    data = jnp.asarray(x, jnp.float32)
    hyper = Hyper(config.rho, config.beta, config.lam)
    return median_seconds(lambda: jax.block_until_ready(evaluate(params, data, hyper)), 21,
                          warmup=3)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", help="IMAGES.mat (default: the embedded images)")
    parser.add_argument("--mnist", required=True, help="directory of the MNIST idx files")
    parser.add_argument("--quick", action="store_true", help="tiny settings: a CPU smoke test")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    q = args.quick
    device = jax.devices()[0]
    machine = (f"{platform.machine()}, {jax.device_count()} x {device.device_kind} "
               f"({device.platform}), jax {jax.__version__}")
    rows = []

    side = 4 if q else 32
    exercise = PRESETS["ufldl-patches"].replace(data=args.images, steps=20 if q else 400,
                                                steps_per_call=20 if q else 400)
    x, _ = training_data("patches", args.images)
    rho, beta = np.geomspace(0.005, 0.2, side), np.geomspace(0.1, 10, side)
    first, run, res = timed_sweep(exercise, x, rho, beta, side * side)
    evals = sum(r["evaluations"] for r in res.rows)
    rows.append((f"exercise sweep, {side * side} members, L-BFGS {exercise.steps} iterations",
                 f"{run:.1f} s (first call with compilation {first:.1f} s); {evals} member "
                 "evaluations", "< 60 s (1,024 members, H100)"))

    side = 2 if q else 16
    mnist = PRESETS["mnist"].replace(data=args.mnist, num_examples=1000 if q else 10_000,
                                     steps=3 if q else 50, steps_per_call=3 if q else 50)
    xm, _ = training_data("mnist", args.mnist, mnist.num_examples)
    m, n, h = xm.shape[0], xm.shape[1], mnist.n_hidden
    peak = max(matmul_gflops(*s) for s in [(2048,) * 3 if q else (4096,) * 3, (m, n, h),
                                           (m, h, n), (h, m, n)])
    first, run, res = timed_sweep(mnist, xm, np.geomspace(0.02, 0.2, side),
                                  np.geomspace(0.3, 10, side), side * side)
    evals = sum(r["evaluations"] for r in res.rows)
    gflops = 10.0 * m * n * h * evals / run / 1e9
    rows.append((f"MNIST sweep {n}-{h}, {side * side} members, m = {m}, L-BFGS "
                 f"{mnist.steps} iterations",
                 f"{run:.1f} s; {gflops:.0f} GFLOP/s = **{100 * gflops / peak:.0f}%** of the "
                 f"{peak:.0f} GFLOP/s matmul peak", ">= 50% of peak (H100)"))

    for name, config, data in (("64-25", exercise, x), (f"{n}-{h}", mnist, xm)):
        t = step_seconds(config, data)
        flops = 10.0 * data.shape[0] * data.shape[1] * config.n_hidden
        rows.append((f"one evaluation of J and its gradient at {name}, m = {data.shape[0]}",
                     f"{1e3 * t:.2f} ms, {flops / t / 1e9:.0f} GFLOP/s", "report"))

    table = (f"{machine}; float32{' (--quick: tiny settings)' if q else ''}.\n\n"
             "| check | measured | goal |\n|---|---|---|\n"
             + "".join(f"| {a} | {b} | {c} |\n" for a, b, c in rows))
    save_results(args.out, "gpu_check_quick" if q else "gpu_check",
                 {"machine": machine, "rows": rows}, table)


if __name__ == "__main__":
    main()
