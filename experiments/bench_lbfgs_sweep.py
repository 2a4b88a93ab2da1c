"""L-BFGS sweep against a loop of the same standalone runs, and members against standalone runs.

Command:   .venv/bin/python experiments/bench_lbfgs_sweep.py --data ../shared/data/IMAGES_sparsenet.mat
           [--rho 0.005 0.01 0.03 0.1] [--beta 0.3 1 3 10] [--steps 400] [--repeats 3]
           The 8 x 8 grid of experiments/sweep_rho_beta.py: --grid-8x8 --repeats 1
           --name bench_lbfgs_sweep_8x8 (about 12 minutes)
Run time:  about 3 minutes on 2 CPU cores for the default 4 x 4 grid.
Expected:  the README's L-BFGS sweep table (experiments/results/bench_lbfgs_sweep.md).

The UFLDL exercise's settings (64-25-64, 10,000 8x8 patches, lambda 1e-4, float32, L-BFGS with
at most 400 iterations) on a rho x beta grid. Measured side by side in this process, programs
compiled beforehand for both sides:
1. a Python loop of ``train.run`` over the grid's members against ``sweep`` of the same grid
   (medians over --repeats);
2. each member's final J against its standalone run's (relative difference), with the
   iterations, evaluations and stop reason of both;
3. one evaluation of J and its gradient for all members at once (vmap, the members spread over
   the devices as in the sweep) against one evaluation for a single member, per member.

As ``saejax sweep`` does, the process splits a CPU host into one JAX device per core
(``saejax.devices.split_cpu``); a standalone run uses one of them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from saejax import devices, sweeps, train
from saejax.config import PRESETS
from saejax.data import training_data
from saejax.losses import Hyper


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def evaluation_cost(config, x, members, repeats=20):
    """Seconds of one vmapped evaluation per member, and of one single evaluation."""
    evaluate = train.make_evaluate(config)  # one member (blocks of train.EVAL_BLOCK)
    evaluate_batched = train.make_evaluate(config, batched=True)  # as a sweep evaluates each
    states = jax.vmap(lambda s: train.init_state(config, x.shape[1], seed=s))(
        jnp.arange(members, dtype=jnp.int32))
    hyper = Hyper(jnp.full(members, 0.01), jnp.full(members, 3.0), jnp.full(members, 1e-4))
    # members spread over the devices, as the sweep spreads them
    by_member = NamedSharding(Mesh(np.array(jax.devices()), ("members",)), P("members"))
    states, hyper = jax.device_put((states, hyper), by_member)
    data = jnp.asarray(x, jnp.float32)
    batched = jax.jit(jax.vmap(evaluate_batched, in_axes=(0, None, 0)))
    single = jax.jit(evaluate)
    one = jax.tree.map(lambda a: a[0], states.params)
    h1 = Hyper(0.01, 3.0, 1e-4)
    out = {}
    for name, fn, args in (("batched", batched, (states.params, data, hyper)),
                           ("single", single, (one, data, h1))):
        jax.block_until_ready(fn(*args))
        times = []
        for _ in range(repeats):
            t, res = timed(lambda fn=fn, args=args: jax.block_until_ready(fn(*args)))
            times.append(t)
        out[name] = statistics.median(times)
    return {"members": members, "batched_s": out["batched"], "single_s": out["single"],
            "per_member_ratio": out["batched"] / members / out["single"]}


def main():
    devices.split_cpu()  # as `saejax sweep` does: one CPU device per core
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="IMAGES.mat (default: the embedded images)")
    parser.add_argument("--rho", type=float, nargs="+", default=[0.005, 0.01, 0.03, 0.1])
    parser.add_argument("--beta", type=float, nargs="+", default=[0.3, 1.0, 3.0, 10.0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--grid-8x8", action="store_true",
                        help="experiments/sweep_rho_beta.py's grid: rho geomspace(0.005, 0.2, 8) "
                             "x beta geomspace(0.1, 10, 8)")
    parser.add_argument("--name", default="bench_lbfgs_sweep",
                        help="file name of the results (.json, .md) in --out")
    args = parser.parse_args()
    if args.grid_8x8:
        args.rho = [float(v) for v in np.geomspace(0.005, 0.2, 8)]
        args.beta = [float(v) for v in np.geomspace(0.1, 10, 8)]
    config = PRESETS["ufldl-patches"].replace(steps=args.steps, steps_per_call=args.steps,
                                              data=args.data)
    x, info = training_data("patches", args.data)
    members = [(r, b) for r in args.rho for b in args.beta]
    machine = (f"{platform.machine()}, {os.cpu_count()} CPU cores, "
               f"{jax.device_count()} x {jax.devices()[0].platform}, jax {jax.__version__}")

    def loop():
        return [train.run(config.replace(rho=r, beta=b), x, progress=False).summary
                for r, b in members]

    def sweep():
        return sweeps.sweep(config, x, args.rho, args.beta, chunk_size=len(members),
                            progress=False)

    loop(), sweep()  # compile both programs
    loop_s, sweep_s = [], []
    for _ in range(args.repeats):
        t, alone = timed(loop)
        loop_s.append(t)
        t, swept = timed(sweep)
        sweep_s.append(t)
    rows = []
    for (r, b), a, s in zip(members, alone, swept.rows, strict=True):
        rows.append({"rho": r, "beta": b, "standalone_J": a["final_loss"], "sweep_J": s["final_loss"],
                     "rel_diff": abs(s["final_loss"] - a["final_loss"]) / abs(a["final_loss"]),
                     "standalone": [a["iterations"], a["evaluations"], a["stop_reason"]],
                     "sweep": [s["iterations"], s["evaluations"], s["stop_reason"]]})
    ev = evaluation_cost(config, x, len(members))
    result = {"machine": machine, "data": info.get("source"), "members": len(members),
              "steps": args.steps, "loop_s": statistics.median(loop_s),
              "sweep_s": statistics.median(sweep_s), "loop_all": loop_s, "sweep_all": sweep_s,
              "rows": rows, "evaluation": ev}
    result["sweep_over_loop"] = result["sweep_s"] / result["loop_s"]
    worst = max(rows, key=lambda r: r["rel_diff"])
    table = (
        f"{machine}; float32; {len(members)} members ({len(args.rho)} rho x {len(args.beta)} "
        f"beta), at most {args.steps} L-BFGS iterations, {info.get('source')}; medians of "
        f"{args.repeats}.\n\n"
        "| benchmark | measured | goal |\n|---|---|---|\n"
        f"| sweep / loop of {len(members)} standalone runs (compiled beforehand) | "
        f"{result['sweep_s']:.2f} s / {result['loop_s']:.2f} s = "
        f"**{result['sweep_over_loop']:.2f}x** | <= 0.5x |\n"
        f"| largest relative difference of a member's final J from its standalone run | "
        f"**{100 * worst['rel_diff']:.3f}%** (rho {worst['rho']:.4g}, beta {worst['beta']:.4g}) | "
        "<= 0.5% |\n"
        f"| one evaluation of J and its gradient, {ev['members']} members at once, per member "
        f"vs one member | {1e3 * ev['batched_s'] / ev['members']:.2f} ms vs "
        f"{1e3 * ev['single_s']:.2f} ms: **{ev['per_member_ratio']:.2f}x** | < 1x |\n\n"
        "| rho | beta | standalone J | sweep J | rel. diff | standalone it/evals/stop | "
        "sweep it/evals/stop |\n|---|---|---|---|---|---|---|\n"
        + "".join(
            f"| {r['rho']:.4g} | {r['beta']:.4g} | {r['standalone_J']:.5f} | {r['sweep_J']:.5f} | "
            f"{100 * r['rel_diff']:.3f}% | {'/'.join(map(str, r['standalone']))} | "
            f"{'/'.join(map(str, r['sweep']))} |\n" for r in rows)
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2))
    (args.out / f"{args.name}.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
