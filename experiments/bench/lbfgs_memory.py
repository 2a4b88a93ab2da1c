"""L-BFGS pairs against iterations and time to a given J at 784-196 (MNIST).

Command:   .venv/bin/python -m experiments.bench.lbfgs_memory --mnist ../shared/data/mnist
           [--memory 5 10 20 50 100] [--steps 300] [--examples 10000] [--quick] [--out DIR]
Run time:  about 12 minutes on 2 CPU cores (5 runs of 300 iterations at m = 10,000); under a
           minute on one H200 (experiments.bench.gpu_check runs it as its lbfgs-memory check).
Expected:  bench_lbfgs_memory.md and .json in --out (default experiments/results; runs/quick
           with --quick). Each row: the final J after --steps iterations, the iterations and
           seconds each history length needs to come within 0.1% (and 1%) of the best final J
           of all of them, and the seconds per iteration.

The UFLDL MNIST settings (784-196-784, rho 0.1, beta 3, lambda 3e-3, the first --examples
training digits), float32, one standalone ``train.run`` per history length (--memory),
every run from the same initial point. minFunc's default keeps 100 pairs; most L-BFGS users
run with 5-20. At 784-196 a member's parameters number P = 308,308, so 100 pairs are
2 x 100 x P floats = 247 MB, read twice each iteration. Seconds exclude compilation
(``summary["compile_seconds"]``). The time to a J is the run's seconds per iteration times
the iterations it needed.
"""

from __future__ import annotations

import argparse
import platform

import jax
import numpy as np

from experiments.common import (
    add_out_argument,
    count,
    directory,
    measured_at,
    measured_label,
    results_dir,
    run_script,
    save_results,
)
from saejax import train
from saejax.config import PRESETS
from saejax.data import training_data

TOLERANCES = (1e-2, 1e-3)  # relative distance above the best final J that counts as reached


def first_within(losses, target: float):
    """The fewest iterations after which J is at most ``target`` (``losses[i]`` is J after i
    iterations), or None."""
    hits = np.nonzero(np.asarray(losses) <= target)[0]
    return int(hits[0]) if hits.size else None


def measure(x, memories, steps: int) -> list[dict]:
    """One standalone run per history length; its per-iteration J, seconds and stop reason."""
    rows = []
    for memory in memories:
        config = PRESETS["mnist"].replace(lbfgs_memory=memory, steps=steps,
                                          steps_per_call=steps, checkpoint_every=steps)
        result = train.run(config, x, progress=False)
        s = result.summary
        # a metrics row holds J where its iteration began; the final J comes after the last
        losses = [r["loss"] for r in result.history if "loss" in r and "step" in r][:s["steps"]]
        losses.append(s["final_loss"])
        seconds = s["wall_seconds"] - s["compile_seconds"]
        rows.append({"memory": memory, "final_loss": s["final_loss"], "losses": losses,
                     "iterations": s["steps"], "stop_reason": s["stop_reason"],
                     "seconds": seconds, "seconds_per_iteration": seconds / max(s["steps"], 1)})
        print(f"memory {memory}: J {s['final_loss']:.6f} after {s['steps']} iterations, "
              f"{seconds:.1f} s", flush=True)
    best = min(r["final_loss"] for r in rows)
    for r in rows:
        for tol in TOLERANCES:
            it = first_within(r["losses"], best * (1 + tol))
            r[f"iterations_to_{tol:g}"] = it
            r[f"seconds_to_{tol:g}"] = None if it is None else it * r["seconds_per_iteration"]
    return rows


def table(rows: list, machine: str, m: int, steps: int, when: dict) -> str:
    best = min(r["final_loss"] for r in rows)

    def cell(r, what, tol):
        v = r[f"{what}_to_{tol:g}"]
        return "not reached" if v is None else (f"{v}" if what == "iterations" else f"{v:.1f} s")

    lines = [f"{machine}; 784-196-784, m = {m}, float32, at most {steps} iterations; best final "
             f"J {best:.6f}; {measured_label(when)}\n\n"
             "| pairs | final J | iterations to 1% / 0.1% above the best J | seconds to 1% / 0.1% "
             "| s per iteration | stop |\n|---|---|---|---|---|---|\n"]
    for r in rows:
        lines.append(f"| {r['memory']} | {r['final_loss']:.6f} | {cell(r, 'iterations', 1e-2)} / "
                     f"{cell(r, 'iterations', 1e-3)} | {cell(r, 'seconds', 1e-2)} / "
                     f"{cell(r, 'seconds', 1e-3)} | {r['seconds_per_iteration']:.3f} | "
                     f"{r['stop_reason']} ({r['iterations']}) |\n")
    return "".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", required=True, type=directory,
                        help="directory of the MNIST idx files")
    parser.add_argument("--memory", type=count("memory"), nargs="+", default=[5, 10, 20, 50, 100])
    parser.add_argument("--steps", type=count("steps"), default=300)
    parser.add_argument("--examples", type=count("examples"), default=10_000)
    parser.add_argument("--quick", action="store_true", help="tiny settings: a smoke test")
    add_out_argument(parser, quick=True)
    args = parser.parse_args()
    m, steps = (500, 10) if args.quick else (args.examples, args.steps)
    memories = [3, 10] if args.quick else args.memory
    x, _ = training_data("mnist", args.mnist, m)
    device = jax.devices()[0]
    machine = f"{platform.machine()}, {jax.device_count()} x {device.device_kind}, jax {jax.__version__}"
    rows = measure(x, memories, steps)
    when = measured_at()
    save_results(results_dir(args.out, args.quick), "bench_lbfgs_memory",
                 {"machine": machine, "examples": m, "steps": steps, "measured_at": when,
                  "rows": rows}, table(rows, machine, m, steps, when))


if __name__ == "__main__":
    run_script(main)
