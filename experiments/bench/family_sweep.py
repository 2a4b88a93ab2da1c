"""A 64-member adam sweep of relu-l1 or topk sparse autoencoders as whole processes: `saejax sweep`
against a PyTorch torch.func ensemble.

Command:   .venv/bin/python -m experiments.bench.family_sweep [--arch relu-l1 topk]
           [--steps 300] [--repeats 3] [--quick]
Needs:     PyTorch for the peer (pip install -e '.[bench]'; a CPU build suffices).
Run time:  on 2 CPU cores, relu-l1 about 5 minutes (one cold saejax process, then 3 rounds of
           saejax and PyTorch, about 35 and 45 s each); topk about 8 minutes with --steps 100
           --repeats 1 with the sort-based top-k of before; at the defaults, with the bisection,
           about 50 s a process (docs/benchmarks.md);
           --quick: about 2 minutes (8 members, 50 steps, 10,000 examples, 1 round).
Expected:  a table per architecture of wall seconds, mean final FVU and L0
           (bench_family_sweep.md and .json in --out, default experiments/results; runs/quick
           with --quick); the goal is PyTorch / saejax >= 2x. A run of one architecture keeps
           the other's latest table.

The workload: 64 members of 256 latents on d_in = 64, each trained by adam (lr 1e-3) for
--steps steps on minibatches of 256 rows drawn uniformly with replacement, in float32, from
100,000 8x8 patches of saejax's embedded whitened photographs (``saejax.data.sample_patches``,
seed 0), each pixel standardized to mean 0 and standard deviation 1 over the 100,000, written to
a .npy file that both read:
- relu-l1: l1 = geomspace(0.01, 10, 64), one seed, so every member sees the same batches;
- topk: k in {4, 8, 16, 32} x seeds 0-15, so each seed's 4 members share their batches and the
  16 seeds draw their own; no auxiliary loss (``--aux-coeff 0``), which the peer leaves out too.
No weight decay on either side (``--lam 0``). Each implementation runs as its own process, timed
from start to exit as a user would time it:
- ``saejax sweep --arch ... --data x.npy --optimizer adam ...`` with a fresh --workdir (it writes
  results.csv/json, frontier.png, filters_grid.png and an orbax checkpoint of every member); once
  with an empty persistent compilation cache ("cold"), then with the cache it filled;
- experiments.peers.torch_family_sweep (torch.func.vmap of torch.func.grad, fused
  torch.optim.Adam; topk in one vmapped group per k, since torch.topk's k is static).
Both end with every member's FVU and L0 on all 100,000 rows. Times are medians over --repeats
processes, the two taking turns. The two draw different initial weights and minibatches, so
their mean FVU and L0 agree only roughly.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

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
from experiments.extras import require

NAME = "bench_family_sweep"
ARCHS = ("relu-l1", "topk")
PEER_LINE = re.compile(r"FVU = ([0-9.]+) L0 = ([0-9.]+)")
DATA = ("{n:,} 8x8 patches of the embedded whitened photographs (seed 0), each pixel "
        "standardized")


def make_data(path: Path, num_examples: int) -> None:
    """``num_examples`` 8x8 patches of saejax's embedded images, standardized, float32, saved."""
    from saejax.data import embedded_images, sample_patches

    x = sample_patches(embedded_images(), num_examples, 8, seed=0)
    np.save(path, ((x - x.mean(0)) / x.std(0)).astype(np.float32))


def grid(arch: str, quick: bool) -> dict:
    """The members: {flag: values} for both command lines (product of the lists)."""
    if arch == "relu-l1":
        l1 = np.geomspace(0.01, 10, 8 if quick else 64)
        return {"--l1": [f"{v:.6g}" for v in l1], "--seed": ["0"]}
    return {"--k": ["4", "8", "16", "32"], "--seed": [str(s) for s in range(2 if quick else 16)]}


def measure(arch: str, tmp: Path, data: Path, examples: int, steps: int, repeats: int,
            quick: bool) -> dict:
    """One cold saejax process, then ``repeats`` rounds of saejax and the peer taking turns."""
    env = dict(os.environ, SAEJAX_CACHE_DIR=str(tmp / f"xla-{arch}"))
    members = [str(a) for flag, values in grid(arch, quick).items() for a in (flag, *values)]
    common = ["--data", str(data), "--n-hidden", "256", "--lr", "0.001", "--steps", str(steps),
              "--batch-size", "256", *members]
    runs = iter(range(10_000))

    def run_saejax():
        workdir = tmp / f"{arch}-sweep{next(runs)}"
        extra = ["--aux-coeff", "0"] if arch == "topk" else []
        wall, out = timed_process(
            [str(Path(sys.executable).with_name("saejax")), "sweep", "--arch", arch,
             "--optimizer", "adam", "--lam", "0", *extra, *common, "--workdir", str(workdir),
             "--no-progress"], env)
        rows = json.loads((workdir / "results.json").read_text())
        return {"seconds": wall, "fvu": float(np.nanmean([r["fvu"] for r in rows])),
                "l0": float(np.nanmean([r["mean_l0"] for r in rows])),
                "diverged": int(sum(r["diverged"] for r in rows)),
                "out": next((ln for ln in out.splitlines() if "members on" in ln), "")}

    def run_torch():
        wall, out = timed_process(
            module_command("experiments.peers.torch_family_sweep", "--arch", arch, *common),
            module_env())
        fvu, l0 = PEER_LINE.search(out).groups()
        return {"seconds": wall, "fvu": float(fvu), "l0": float(l0), "out": out.strip()}

    cold = run_saejax()
    results = {"saejax": [], "torch": []}
    for _ in range(repeats):
        results["saejax"].append(run_saejax())
        results["torch"].append(run_torch())
    med = {k: statistics.median(r["seconds"] for r in v) for k, v in results.items()}
    knobs = grid(arch, quick)
    knob = "l1" if arch == "relu-l1" else "k"
    values = knobs[f"--{knob}"]
    setting = (f"{arch}, {len(values) * len(knobs['--seed'])} members ({knob} "
               + (f"geomspace({values[0]}, {values[-1]}, {len(values)})" if arch == "relu-l1"
                  else f"{{{', '.join(values)}}}")
               + f" x seeds {knobs['--seed'][0]}-{knobs['--seed'][-1]}" * (len(knobs["--seed"]) > 1)
               + f"), 64-256-64, adam lr 1e-3, batch 256, {steps} steps, float32"
               + (", no auxiliary loss" if arch == "topk" else ""))
    return {"arch": arch, "setting": setting, "data": DATA.format(n=examples), "steps": steps, "cold": cold, "runs": results,
            "median_seconds": med, "torch_over_saejax": med["torch"] / med["saejax"],
            "measured_at": measured_at()}


def table_of(part: dict, machine: str) -> str:
    repeats = len(part["runs"]["saejax"])
    med = part["median_seconds"]

    def median_run(name):  # the run of median wall time, with its own FVU, L0 and report
        runs = sorted(part["runs"][name], key=lambda r: r["seconds"])
        return runs[(len(runs) - 1) // 2] | {"seconds": med[name]}

    rows = [("saejax sweep, empty compilation cache (1 run)", part["cold"]),
            (f"saejax sweep, warm cache (median of {repeats})", median_run("saejax")),
            (f"PyTorch torch.func ensemble, fused Adam (median of {repeats})",
             median_run("torch"))]
    return (f"An adam sweep, whole process: {part['setting']}; {part['data']}; {machine}.\n\n"
            "| implementation | wall s | mean final FVU | mean final L0 | this / saejax warm "
            "| its own report |\n|---|---|---|---|---|---|\n"
            + "".join(f"| {name} | {r['seconds']:.2f} | {r['fvu']:.4f} | {r['l0']:.2f} | "
                      f"{r['seconds'] / med['saejax']:.2f}x | {r['out'][:200]} |\n"
                      for name, r in rows)
            + f"\nPyTorch / saejax (warm): **{part['torch_over_saejax']:.2f}x** (goal >= 2x). "
            "All processes, per round (s): saejax "
            + ", ".join(f"{r['seconds']:.1f}" for r in part["runs"]["saejax"]) + "; PyTorch "
            + ", ".join(f"{r['seconds']:.1f}" for r in part["runs"]["torch"]) + ".\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", nargs="+", choices=ARCHS, default=list(ARCHS))
    parser.add_argument("--steps", type=count("steps"), default=300)
    parser.add_argument("--repeats", type=count("repeats"), default=3)
    parser.add_argument("--quick", action="store_true",
                        help="8 members, 50 steps, 10,000 examples, 1 round")
    add_out_argument(parser, quick=True)
    args = parser.parse_args()
    require("bench", "torch")  # before the saejax runs, not after them
    q = args.quick
    steps, repeats, examples = (50, 1, 10_000) if q else (args.steps, args.repeats, 100_000)
    out = results_dir(args.out, q)
    parts = {p["arch"]: p for p in (load_results(out, NAME) or {}).get("parts", [])}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_data(tmp / "x.npy", examples)
        for arch in args.arch:
            parts[arch] = measure(arch, tmp, tmp / "x.npy", examples, steps, repeats, q)
    import jax
    import torch

    machine = (f"{platform.machine()}, {os.cpu_count()} CPU cores, jax {jax.__version__}, "
               f"torch {torch.__version__}")
    for arch in args.arch:
        parts[arch]["machine"] = machine
    ordered = [parts[a] for a in ARCHS if a in parts]
    table = "".join(f"## {p['arch']} (measured {measured_label(p['measured_at'])})\n\n"
                    f"{table_of(p, p['machine'])}\n" for p in ordered)
    save_results(out, NAME, {"parts": ordered}, table)


if __name__ == "__main__":
    run_script(main)
