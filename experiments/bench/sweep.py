"""Benchmarks of sweeps: per-member cost, a loop of runs, throughput, compile time, memory.

L-BFGS sweeps have a benchmark of their own: experiments.bench.lbfgs_sweep.

Command:   .venv/bin/python -m experiments.bench.sweep [--quick]
Run time:  about 6 minutes on 2 CPU cores (--quick: about 1 minute, smaller settings).
Expected:  see docs/benchmarks.md's sweep benchmark table, which this script regenerates
           (bench_sweep.md and .json in --out, default experiments/results; runs/quick with
           --quick).

Everything is measured side by side in this process, except peak memory, which is measured in a
subprocess of its own (`saejax sweep` with 1,024 members).

1. Per-member cost: a 64-member adam sweep (64-25-64, batch 256, 2,000 steps) against one
   standalone run of the same settings; compilation excluded from both.
2. A Python loop of standalone runs (`train.run` called once per member, compilation included,
   as a user would write it) against the sweep (compilation included).
3. Throughput in GFLOP/s (10 m n h FLOPs per step per member) against the float32 matmul peak
   measured here: at 64-25-64 with batch 256, and at 784-196-784 full batch.
4. Compile time of the sweep program for G = 4 and G = 256 members.
5. Peak RSS of a 1,024-member sweep at 64-25-64 on 10,000 patches (chunks of 64).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from experiments.common import (
    add_out_argument,
    matmul_gflops,
    results_dir,
    run_script,
    save_results,
    timed_process,
)
from saejax import sweeps, train
from saejax.config import TrainConfig
from saejax.data import training_data
from saejax.losses import Hyper


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def grid(g):
    """g members: rho x beta log-spaced (as square as possible)."""
    a = int(np.sqrt(g))
    while g % a:
        a -= 1
    return np.geomspace(0.005, 0.2, a), np.geomspace(0.1, 10, g // a)


def per_member(x, steps, members, loop_members):
    config = TrainConfig(optimizer="adam", lr=1e-2, batch_size=256, steps=steps,
                         steps_per_call=min(steps, 500))
    rho, beta = grid(members)
    # Warm both programs first so the timed runs exclude compilation.
    sweeps.sweep(config.replace(steps=config.steps_per_call), x, rho, beta,
                chunk_size=members, progress=False)
    sweep_s, res = timed(lambda: sweeps.sweep(config, x, rho, beta, chunk_size=members,
                                             progress=False))
    run = train.run(config, x, progress=False)
    alone_s = run.summary["wall_seconds"] - run.summary["compile_seconds"]
    # The loop as a user writes it: one train.run per member, compilation included each time.
    loop_times = []
    for r in res.rows[:loop_members]:
        t, _ = timed(lambda r=r: train.run(config.replace(rho=r["rho"], beta=r["beta"]), x,
                                           progress=False))
        loop_times.append(t)
    loop_s = float(np.mean(loop_times)) * members  # extrapolated when loop_members < members
    flops = 10.0 * 256 * 64 * 25 * steps * members
    return {
        "members": members, "steps": steps, "sweep_s": sweep_s, "standalone_s": alone_s,
        "per_member_ratio": sweep_s / members / alone_s,
        "loop_runs_timed": loop_members, "loop_s": loop_s, "loop_over_sweep": loop_s / sweep_s,
        "sweep_gflops": flops / sweep_s / 1e9,
    }


def throughput_784(members, steps, m):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (m, 784)).astype(np.float32)
    config = TrainConfig(optimizer="adam", lr=1e-3, batch_size=None, steps=steps,
                         steps_per_call=steps, n_hidden=196, rho=0.1)
    rho, beta = grid(members)
    sweeps.sweep(config, x, rho, beta, chunk_size=members, progress=False)  # compile
    s, _ = timed(lambda: sweeps.sweep(config, x, rho, beta, chunk_size=members, progress=False))
    return {"members": members, "steps": steps, "m": m, "seconds": s,
            "gflops": 10.0 * m * 784 * 196 * steps * members / s / 1e9}


def compile_time(x, g):
    config = TrainConfig(optimizer="adam", lr=1e-2, batch_size=256, steps=100,
                         steps_per_call=100)
    init = jax.vmap(partial(train.init_state, config, x.shape[1]))
    states = init(jnp.arange(g, dtype=jnp.int32), jnp.full(g, 1e-2))
    hyper = Hyper(jnp.full(g, 0.01), jnp.full(g, 3.0), jnp.full(g, 1e-4))
    run = jax.jit(sweeps.make_sweep_chunk(config),
                  static_argnames="num_steps")
    lowered = run.lower(states, jnp.asarray(x, jnp.float32), hyper, num_steps=100)
    s, _ = timed(lowered.compile)
    return s


def peak_rss(members, steps):
    side = int(np.sqrt(members))
    rho = " ".join(f"{v:.6g}" for v in np.geomspace(0.005, 0.2, side))
    beta = " ".join(f"{v:.6g}" for v in np.geomspace(0.1, 10, members // side))
    with tempfile.TemporaryDirectory() as home:  # a new sweep directory every run
        code = (
            "import resource, sys; from saejax import cli; "
            f"rc = cli.main('sweep --optimizer adam --batch-size 256 --steps {steps} "
            f"--steps-per-call {steps} --chunk-size 64 --rho {rho} --beta {beta} "
            f"--workdir {home}/sweep --no-progress'.split()); "
            "print('MAXRSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); "
            "sys.exit(rc)"
        )
        wall, stdout = timed_process([sys.executable, "-c", code])
    kb = [int(line.split()[1]) for line in stdout.splitlines() if line.startswith("MAXRSS_KB")]
    return {"members": members, "steps": steps, "peak_rss_gib": kb[0] / 2**20, "wall_s": wall}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    add_out_argument(parser, quick=True)
    args = parser.parse_args()
    q = args.quick
    x, _ = training_data("patches")
    machine = (f"{platform.machine()}, {os.cpu_count()} CPU cores, "
               f"{jax.device_count()} x {jax.devices()[0].platform}, jax {jax.__version__}")
    peak = max(matmul_gflops(2048, 2048, 2048), matmul_gflops(10_000, 784, 196))
    r = {"machine": machine, "matmul_peak_gflops": peak}
    r["per_member"] = per_member(x, 200 if q else 2000, 16 if q else 64, 4 if q else 16)
    r["throughput_784"] = throughput_784(4 if q else 8, 5 if q else 10, 2000 if q else 10_000)
    r["compile_s"] = {g: statistics.median(compile_time(x, g) for _ in range(3))
                      for g in (4, 256)}
    r["memory"] = peak_rss(256 if q else 1024, 20 if q else 100)
    pm, t7, mem = r["per_member"], r["throughput_784"], r["memory"]
    table = (
        f"{machine}; float32; medians where repeated.\n\n"
        "| benchmark | measured | goal |\n|---|---|---|\n"
        f"| per-member cost, {pm['members']}-member adam sweep, 64-25-64, batch 256, "
        f"{pm['steps']} steps | {pm['sweep_s']:.2f} s / {pm['members']} = "
        f"{1e3 * pm['sweep_s'] / pm['members']:.0f} ms per member vs {1e3 * pm['standalone_s']:.0f}"
        f" ms standalone: **{pm['per_member_ratio']:.2f}x** | <= 0.6x |\n"
        f"| Python loop of standalone runs / sweep (compilation included; "
        f"{pm['loop_runs_timed']} runs timed, scaled to {pm['members']}) | "
        f"**{pm['loop_over_sweep']:.1f}x** | report |\n"
        f"| throughput at 64-25-64, batch 256 | {pm['sweep_gflops']:.1f} GFLOP/s = "
        f"**{100 * pm['sweep_gflops'] / peak:.0f}%** of {peak:.0f} GFLOP/s matmul peak | report |\n"
        f"| throughput at 784-196-784, full batch (m = {t7['m']}, {t7['members']} members) | "
        f"{t7['gflops']:.1f} GFLOP/s = **{100 * t7['gflops'] / peak:.0f}%** of peak | >= 50% |\n"
        f"| compile time, G = 256 vs G = 4 | {r['compile_s'][256]:.2f} s vs "
        f"{r['compile_s'][4]:.2f} s: **{r['compile_s'][256] / r['compile_s'][4]:.2f}x** | "
        "<= 1.5x |\n"
        f"| peak RSS, {mem['members']}-member sweep at 64-25-64 on 10,000 patches, chunks of 64,"
        f" {mem['steps']} adam steps | **{mem['peak_rss_gib']:.2f} GiB** | <= 4 GiB |\n"
    )
    save_results(results_dir(args.out, q), "bench_sweep", r, table)


if __name__ == "__main__":
    run_script(main)
