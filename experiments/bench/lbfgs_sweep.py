"""L-BFGS sweep against a loop of the same standalone runs, and members against standalone runs.

Command:   .venv/bin/python -m experiments.bench.lbfgs_sweep --data ../shared/data/IMAGES_sparsenet.mat
           [--rho 0.005 0.01 0.03 0.1] [--beta 0.3 1 3 10] [--steps 400] [--repeats 3]
           The 8 x 8 grid of experiments.reproduce.sweep_rho_beta: --grid-8x8 --repeats 1
           (about 12 minutes)
Run time:  about 3 minutes on 2 CPU cores for the default 4 x 4 grid.
Expected:  docs/benchmarks.md's L-BFGS sweep tables (bench_lbfgs_sweep.md in --out, default
           experiments/results). The file keeps the latest run of each grid, one section per
           grid, each labelled with its date and commit; a run replaces its own grid's section.

The UFLDL exercise's settings (64-25-64, 10,000 8x8 patches, lambda 1e-4, float32, L-BFGS with
at most 400 iterations) on a rho x beta grid. Measured side by side in this process, programs
compiled beforehand for both sides:
1. a Python loop of ``train.run`` over the grid's members against ``sweep`` of the same grid
   (medians over --repeats);
2. each member's final J against its standalone run's (relative difference), with the
   iterations, evaluations and stop reason of both;
3. one evaluation of J and its gradient for all members at once (vmap, the members spread over
   the devices as in the sweep) against one evaluation for a single member, per member.

The sweep runs in a child process split into one JAX device per core, as ``saejax sweep``
runs (``saejax.runtime.devices.split_cpu``); the loop and the single evaluation run in this process,
with JAX's default single CPU device, as a user's Python loop of ``train.run`` runs. (In a
split process a one-device run is slower: measured 6.9-8.2 ms against 3.5-4.6 ms for one
evaluation, which would flatter the sweep.)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from experiments.common import (
    add_out_argument,
    count,
    load_results,
    measured_at,
    measured_label,
    module_command,
    module_env,
    results_dir,
    run_script,
    save_results,
    timed_process,
)
from saejax import sweeps, train
from saejax.config import PRESETS
from saejax.data import training_data
from saejax.losses import Hyper
from saejax.runtime import devices

NAME = "bench_lbfgs_sweep"  # results file: one section per grid


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def evaluation_cost(evaluate, params, data, hyper, repeats=20):
    """Median seconds of one jitted ``evaluate(params, data, hyper)``."""
    fn = jax.jit(evaluate)
    jax.block_until_ready(fn(params, data, hyper))
    return statistics.median(
        timed(lambda: jax.block_until_ready(fn(params, data, hyper)))[0] for _ in range(repeats))


def member_states(config, x, members):
    states = jax.vmap(lambda s: train.init_state(config, x.shape[1], seed=s))(
        jnp.arange(members, dtype=jnp.int32))
    hyper = Hyper(jnp.full(members, 0.01), jnp.full(members, 3.0), jnp.full(members, 1e-4))
    return states.params, hyper


def sweep_side(args, config, x):
    """The child process (split into one CPU device per core by main); prints its timings."""
    n = len(args.rho) * len(args.beta)

    def sweep():
        return sweeps.sweep(config, x, args.rho, args.beta, chunk_size=n, progress=False)

    sweep()  # compile
    times = []
    for _ in range(args.repeats):
        t, swept = timed(sweep)
        times.append(t)
    # one evaluation for all members at once, spread over the devices as the sweep spreads them
    params, hyper = member_states(config, x, n)
    by_member = NamedSharding(Mesh(np.array(jax.devices()), ("members",)), P("members"))
    params, hyper = jax.device_put((params, hyper), by_member)
    batched = evaluation_cost(jax.vmap(train.make_evaluate(config, batched=True),
                                       in_axes=(0, None, 0)), params, jnp.asarray(x), hyper)
    print(json.dumps({"sweep_all": times, "rows": swept.rows, "batched_s": batched,
                      "devices": jax.device_count()}))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="IMAGES.mat (default: the embedded images)")
    parser.add_argument("--rho", type=float, nargs="+", default=[0.005, 0.01, 0.03, 0.1])
    parser.add_argument("--beta", type=float, nargs="+", default=[0.3, 1.0, 3.0, 10.0])
    parser.add_argument("--steps", type=count("steps"), default=400)
    parser.add_argument("--repeats", type=count("repeats"), default=3)
    add_out_argument(parser)
    parser.add_argument("--grid-8x8", action="store_true",
                        help="experiments.reproduce.sweep_rho_beta's grid: rho "
                             "geomspace(0.005, 0.2, 8) "
                             "x beta geomspace(0.1, 10, 8)")
    parser.add_argument("--sweep-side", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.grid_8x8:
        args.rho = [float(v) for v in np.geomspace(0.005, 0.2, 8)]
        args.beta = [float(v) for v in np.geomspace(0.1, 10, 8)]
    return args


def loop_side(config, x, members, repeats):
    """A Python loop of ``train.run`` over the members in this plain process (JAX's default
    single CPU device, as a user's loop runs; a split process slows a one-device run): its
    seconds each repeat, its summaries, and one evaluation's median seconds for one member."""
    def loop():
        return [train.run(config.replace(rho=r, beta=b), x, progress=False).summary
                for r, b in members]

    loop()  # compile
    loop_s = []
    for _ in range(repeats):
        t, alone = timed(loop)
        loop_s.append(t)
    params, _ = member_states(config, x, 1)
    single = evaluation_cost(train.make_evaluate(config), jax.tree.map(lambda a: a[0], params),
                             jnp.asarray(x), Hyper(0.01, 3.0, 1e-4))
    return loop_s, alone, single


def member_rows(members, alone, swept_rows) -> list[dict]:
    """Each member's final J, iterations, evaluations and stop, standalone and in the sweep."""
    return [{"rho": r, "beta": b, "standalone_J": a["final_loss"], "sweep_J": s["final_loss"],
             "rel_diff": abs(s["final_loss"] - a["final_loss"]) / abs(a["final_loss"]),
             "standalone": [a["iterations"], a["evaluations"], a["stop_reason"]],
             "sweep": [s["iterations"], s["evaluations"], s["stop_reason"]]}
            for (r, b), a, s in zip(members, alone, swept_rows, strict=True)]


def main(argv=None):
    args = parse_args(argv)
    if args.sweep_side:
        devices.split_cpu()  # before any computation, as `saejax sweep` does
    config = PRESETS["ufldl-patches"].replace(steps=args.steps, steps_per_call=args.steps,
                                              data=args.data)
    x, info = training_data("patches", args.data)
    if args.sweep_side:
        return sweep_side(args, config, x)
    members = [(r, b) for r in args.rho for b in args.beta]
    # The sweep in a process of its own, split into one device per core as `saejax sweep` is;
    # the loop here.
    _, stdout = timed_process(
        module_command("experiments.bench.lbfgs_sweep", *(sys.argv[1:] if argv is None else argv),
                       "--sweep-side"), module_env())
    side = json.loads(stdout.strip().splitlines()[-1])
    loop_s, alone, single = loop_side(config, x, members, args.repeats)
    n = len(members)
    ev = {"members": n, "batched_s": side["batched_s"], "single_s": single,
          "per_member_ratio": side["batched_s"] / n / single, "sweep_devices": side["devices"]}
    machine = (f"{platform.machine()}, {os.cpu_count()} CPU cores, "
               f"{jax.device_count()} x {jax.devices()[0].platform}, jax {jax.__version__}; "
               f"the sweep on {side['devices']} CPU devices, the loop on {jax.device_count()}")
    result = {"machine": machine, "data": info.get("source"), "rho": args.rho,
              "beta": args.beta, "members": n, "steps": args.steps,
              "loop_s": statistics.median(loop_s), "sweep_s": statistics.median(side["sweep_all"]),
              "loop_all": loop_s, "sweep_all": side["sweep_all"],
              "rows": member_rows(members, alone, side["rows"]), "evaluation": ev,
              "repeats": args.repeats}
    result["sweep_over_loop"] = result["sweep_s"] / result["loop_s"]
    save_grid(results_dir(args.out), result, render(result))


def render(result: dict) -> str:
    """The grid's section: the three benchmarks against their goals, then member by member."""
    rows, ev, n = result["rows"], result["evaluation"], result["members"]
    worst = max(rows, key=lambda r: r["rel_diff"])
    return (
        f"{result['machine']}; float32; {n} members ({len(result['rho'])} rho x "
        f"{len(result['beta'])} beta), at most {result['steps']} L-BFGS iterations, "
        f"{result['data']}; medians of {result['repeats']}.\n\n"
        "| benchmark | measured | goal |\n|---|---|---|\n"
        f"| sweep / loop of {n} standalone runs (compiled beforehand) | "
        f"{result['sweep_s']:.2f} s / {result['loop_s']:.2f} s = "
        f"**{result['sweep_over_loop']:.2f}x** | <= 0.5x |\n"
        f"| largest relative difference of a member's final J from its standalone run | "
        f"**{100 * worst['rel_diff']:.3f}%** (rho {worst['rho']:.4g}, beta "
        f"{worst['beta']:.4g}) | <= 0.5% |\n"
        f"| one evaluation of J and its gradient, {ev['members']} members at once, per member "
        f"vs one member | {1e3 * ev['batched_s'] / ev['members']:.2f} ms vs "
        f"{1e3 * ev['single_s']:.2f} ms: **{ev['per_member_ratio']:.2f}x** | < 1x |\n\n"
        "| rho | beta | standalone J | sweep J | rel. diff | standalone it/evals/stop | "
        "sweep it/evals/stop |\n|---|---|---|---|---|---|---|\n"
        + "".join(
            f"| {r['rho']:.4g} | {r['beta']:.4g} | {r['standalone_J']:.5f} | "
            f"{r['sweep_J']:.5f} | {100 * r['rel_diff']:.3f}% | "
            f"{'/'.join(map(str, r['standalone']))} | {'/'.join(map(str, r['sweep']))} |\n"
            for r in rows))


def save_grid(out, result, table):
    """Writes this grid's run into bench_lbfgs_sweep.json and .md, in place of the grid's
    previous run; the other grids' latest runs stay as they were."""
    grids = [g for g in (load_results(out, NAME) or {}).get("grids", [])
             if (g["rho"], g["beta"]) != (result["rho"], result["beta"])]
    grids.append(result | {"measured_at": measured_at(), "table": table})
    grids.sort(key=lambda g: (g["members"], g["rho"], g["beta"]))

    def values(vs):
        return " ".join(f"{v:.4g}" for v in vs)

    sections = "".join(
        f"\n## {len(g['rho'])} x {len(g['beta'])} grid: rho {values(g['rho'])}; beta "
        f"{values(g['beta'])} (measured {measured_label(g['measured_at'])})\n\n{g['table']}"
        for g in grids)
    save_results(out, NAME, {"grids": grids},
                 "An L-BFGS sweep against a loop of its standalone runs: the latest run on each "
                 "grid.\n" + sections)


if __name__ == "__main__":
    run_script(main)
