"""The UFLDL exercise as whole processes: `saejax train` against PyTorch and NumPy + SciPy.

Command:   .venv/bin/python -m experiments.bench.exercise --data ../shared/data/IMAGES_sparsenet.mat
           [--repeats 5] [--no-scipy]
Needs:     PyTorch for the PyTorch peer (pip install -e '.[bench]'); it is skipped when absent.
Run time:  about 2 minutes on 2 CPU cores (the SciPy peer is most of it).
Expected:  docs/benchmarks.md's exercise table (experiments/results/bench_exercise.md).

Each implementation runs as its own process, timed from start to exit as a user would time it:
- ``saejax train --data IMAGES.mat`` (the exercise preset: 10,000 patches, 64-25-64, float32,
  at most 400 L-BFGS iterations), writing its run directory, checkpoints and three figures;
  once with an empty persistent compilation cache ("cold"), then with the cache it filled;
- experiments.peers.torch_exercise (torch.optim.LBFGS, strong Wolfe, history 100, float32);
- experiments.peers.scipy_exercise (NumPy cost and gradient, SciPy L-BFGS-B, float64).
Times are medians over --repeats processes, interleaved, so load on the shared machine hits
every implementation alike. Writes bench_exercise.json and bench_exercise.md to --out.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

from experiments.common import (
    J_LINE,
    add_out_argument,
    count,
    module_command,
    module_env,
    results_dir,
    run_script,
    save_results,
    timed_process,
)


def timed_run(cmd, env=None) -> dict:
    """A whole process's wall time and the J it printed."""
    wall, stdout = timed_process(cmd, env)
    found = J_LINE.search(stdout)
    line = next((ln for ln in stdout.splitlines() if J_LINE.search(ln)), "")
    return {"seconds": wall, "J": float(found.group(1)) if found else None,
            "out": line.strip()[:160]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="IMAGES.mat (UFLDL layout)")
    parser.add_argument("--repeats", type=count("repeats"), default=5)
    parser.add_argument("--no-scipy", action="store_true", help="skip the slow SciPy peer")
    add_out_argument(parser)
    args = parser.parse_args()
    data = str(Path(args.data).resolve())
    saejax_bin = str(Path(sys.executable).with_name("saejax"))
    have_torch = importlib.util.find_spec("torch") is not None
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, SAEJAX_CACHE_DIR=str(Path(tmp) / "xla"))
        runs = iter(range(10_000))

        def saejax_cmd():
            return [saejax_bin, "train", "--data", data, "--workdir",
                    str(Path(tmp) / f"run{next(runs)}"), "--no-progress"]

        cold = timed_run(saejax_cmd(), env)
        results = {"saejax": [], "torch": [], "scipy": []}
        for i in range(args.repeats):
            results["saejax"].append(timed_run(saejax_cmd(), env))
            if have_torch:
                results["torch"].append(timed_run(
                    module_command("experiments.peers.torch_exercise", "--data", data),
                    module_env()))
            if not args.no_scipy and i == 0:
                results["scipy"].append(timed_run(
                    module_command("experiments.peers.scipy_exercise", "--data", data),
                    module_env()))
    import jax

    machine = (f"{platform.machine()}, {os.cpu_count()} CPU cores, jax {jax.__version__}"
               + (f", torch {__import__('torch').__version__}" if have_torch else ""))
    med = {k: statistics.median(r["seconds"] for r in v) for k, v in results.items() if v}
    summary = {"machine": machine, "cold": cold, "runs": results, "median_seconds": med}
    rows = [("saejax train, empty compilation cache", cold["seconds"], cold["J"], "1 run"),
            (f"saejax train, warm cache (median of {args.repeats})", med["saejax"],
             results["saejax"][0]["J"], results["saejax"][0]["out"])]
    if results["torch"]:
        rows.append((f"PyTorch LBFGS, float32 (median of {args.repeats})", med["torch"],
                     results["torch"][0]["J"], results["torch"][0]["out"]))
    if results["scipy"]:
        rows.append(("NumPy + SciPy L-BFGS-B, float64 (1 run)", med["scipy"],
                     results["scipy"][0]["J"], results["scipy"][0]["out"]))
    table = (f"The UFLDL exercise, whole process, {machine}.\n\n"
             "| implementation | wall s | final J | this / saejax warm | its own report |\n"
             "|---|---|---|---|---|\n"
             + "".join(f"| {name} | {s:.2f} | {j:.4f} | {s / med['saejax']:.2f}x | {out} |\n"
                       for name, s, j, out in rows))
    save_results(results_dir(args.out), "bench_exercise", summary, table)


if __name__ == "__main__":
    run_script(main)
