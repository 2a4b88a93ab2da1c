"""A 64-member adam sweep as whole processes: `saejax sweep` against a PyTorch torch.func ensemble.

Command:   .venv/bin/python -m experiments.bench.adam_sweep [--repeats 3] [--quick]
           [--data ../shared/data/IMAGES_sparsenet.mat]
Needs:     PyTorch for the peer (pip install -e '.[bench]'; a CPU build suffices).
Run time:  about 3 minutes on 2 CPU cores (--quick: about 1 minute, 4 x 4 members, 100 steps).
Expected:  a table of wall seconds and mean final J (bench_adam_sweep.md and .json in --out,
           default experiments/results; runs/quick with --quick); the goal is
           PyTorch / saejax >= 2x.

The workload is experiments.bench.sweep's per-member row: 64 sparse autoencoders 64-25-64
(sigmoid encoder and decoder, KL sparsity, lambda = 1e-4), one per point of the 8 x 8 grid of
rho = geomspace(0.005, 0.2, 8) x beta = geomspace(0.1, 10, 8) (the grid of
experiments.reproduce.sweep_rho_beta), each trained by adam with lr 0.01 for 2,000 steps on minibatches of 256 drawn uniformly with
replacement from 10,000 8x8 patches, in float32. Each implementation runs as its own process,
timed from start to exit as a user would time it:
- ``saejax sweep --optimizer adam ...`` with a fresh --workdir (it writes results.csv/json,
  heatmaps.png, filters_grid.png and an orbax checkpoint of every member); once with an empty
  persistent compilation cache ("cold"), then with the cache it filled;
- experiments.peers.torch_sweep (torch.func.vmap of torch.func.grad, fused torch.optim.Adam).
Times are medians over --repeats processes, the two taking turns. Patches: with --data both
sample 10,000 patches of that IMAGES.mat, each with its own sampler (so the final J compare
samples too); without it saejax samples its embedded images and the peer gets exactly those
patches as a .npy. The two draw different minibatches, so their mean J agree only roughly.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

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
from experiments.extras import require


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="IMAGES.mat (UFLDL layout); default: the embedded images")
    parser.add_argument("--repeats", type=count("repeats"), default=3)
    parser.add_argument("--quick", action="store_true", help="4 x 4 members, 100 steps, 1 repeat")
    add_out_argument(parser, quick=True)
    args = parser.parse_args()
    require("bench", "torch")  # before the saejax runs, not after them
    q = args.quick
    steps, repeats = (100, 1) if q else (2000, args.repeats)
    rho, beta = np.geomspace(0.005, 0.2, 8), np.geomspace(0.1, 10, 8)
    if q:
        rho, beta = rho[::2], beta[::2]
    grid = ["--rho", *map(str, rho), "--beta", *map(str, beta)]
    members = len(rho) * len(beta)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = dict(os.environ, SAEJAX_CACHE_DIR=str(tmp / "xla"))
        data_flag = []
        if args.data:
            peer_data = data_flag = ["--data", str(Path(args.data).resolve())]
        else:  # the peer cannot read saejax's embedded images: hand it the very same patches
            from saejax.data import training_data

            np.save(tmp / "patches.npy", training_data("patches")[0])
            peer_data = ["--data", str(tmp / "patches.npy")]
        runs = iter(range(10_000))

        def run_saejax():
            workdir = tmp / f"sweep{next(runs)}"
            wall, out = timed_process(
                [str(Path(sys.executable).with_name("saejax")), "sweep", "--optimizer", "adam",
                 "--lr", "0.01", "--batch-size", "256", "--steps", str(steps), *grid, *data_flag,
                 "--workdir", str(workdir), "--no-progress"], env)
            J = [r["final_loss"] for r in json.loads((workdir / "results.json").read_text())]
            return {"seconds": wall, "J": float(np.nanmean(J)), "diverged": int(np.isnan(J).sum()),
                    "out": next((ln for ln in out.splitlines() if "members on" in ln), "")}

        def run_torch():
            wall, out = timed_process(
                module_command("experiments.peers.torch_sweep", *peer_data, "--lr", "0.01",
                               "--batch-size", "256", "--steps", steps, *grid), module_env())
            return {"seconds": wall, "J": float(J_LINE.search(out).group(1)), "out": out.strip()}

        cold = run_saejax()
        results = {"saejax": [], "torch": []}
        for _ in range(repeats):
            results["saejax"].append(run_saejax())
            results["torch"].append(run_torch())
    import jax
    import torch

    machine = (f"{platform.machine()}, {os.cpu_count()} CPU cores, jax {jax.__version__}, "
               f"torch {torch.__version__}")
    med = {k: statistics.median(r["seconds"] for r in v) for k, v in results.items()}
    ratio = med["torch"] / med["saejax"]
    setting = (f"{members} members (rho x beta {len(rho)} x {len(beta)}), 64-25-64, adam lr 0.01, "
               f"batch 256, {steps} steps, float32, "
               + (f"patches of {args.data}" if args.data else "embedded images"))
    summary = {"machine": machine, "setting": setting, "cold": cold, "runs": results,
               "median_seconds": med, "torch_over_saejax": ratio}
    rows = [("saejax sweep, empty compilation cache (1 run)", cold),
            (f"saejax sweep, warm cache (median of {repeats})", results["saejax"][0]
             | {"seconds": med["saejax"]}),
            (f"PyTorch torch.func ensemble, fused Adam (median of {repeats})", results["torch"][0]
             | {"seconds": med["torch"]})]
    table = (f"An adam sweep, whole process: {setting}; {machine}.\n\n"
             "| implementation | wall s | mean final J | this / saejax warm | its own report |\n"
             "|---|---|---|---|---|\n"
             + "".join(f"| {name} | {r['seconds']:.2f} | {r['J']:.4f} | "
                       f"{r['seconds'] / med['saejax']:.2f}x | {r['out'][:160]} |\n"
                       for name, r in rows)
             + f"\nPyTorch / saejax (warm): **{ratio:.2f}x** (goal >= 2x).\n")
    save_results(results_dir(args.out, q), "bench_adam_sweep", summary, table)


if __name__ == "__main__":
    run_script(main)
