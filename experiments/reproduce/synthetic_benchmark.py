"""Feature recovery on synthetic data with a known dictionary: every architecture, swept over its
sparsity knob and seeds, each sweep one compiled program, scored against the true features.

Command:   .venv/bin/python -m experiments.reproduce.synthetic_benchmark [--quick]
Run time:  about 15 minutes on 2 CPU cores (measured 896 s as a whole process; --quick: 20 s).
Reading:   (measured; docs/synthetic.md) at the true L0 of 8, TopK recovers 94% of the true
           features above cosine 0.9 (MCC 0.957); BatchTopK, ReLU with L1 and JumpReLU reach MCC
           0.58, 0.53 and 0.45; the sigmoid network 0.39, near the chance of random decoder
           columns (0.378).

Settings: the default synthetic set of ``saejax synth`` (d = 64 inputs, F = 512 true features in
superposition, Zipf firing with mean L0 8, magnitudes |N(1, 0.5)|, 200,000 examples, seed 0).
Every network has H = 512 latents, lam = 0, and trains by Adam (peak learning rate 0.01, cosine
decay, batch 1024) for 1,500 steps; the sigmoid network has its linear decoder, JumpReLU a
bandwidth of 1.0. Each architecture's sweep covers its ``KNOBS`` x seeds 0 and 1, in blocks of
2. Writes the set, one sweep directory per architecture and frontier.png to --workdir, and the
table to experiments/results/synthetic_benchmark.{md,json,png} (--quick: tiny settings,
runs/quick).

The table's row of an architecture is its member at matched L0: of its knob values, the one
whose mean L0 over the seeds is nearest the true mean L0, with the seeds' mean of each column
(the sigmoid network's codes are never 0, so its L0 is H: its row is its best MCC instead).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from experiments.common import (
    add_out_argument,
    measured_at,
    measured_label,
    results_dir,
    run_script,
    save_results,
)
from saejax import metrics, sweeps
from saejax.config import TrainConfig
from saejax.data import synthetic
from saejax.records import rundir

NAME = "synthetic_benchmark"
SEEDS = (0, 1)
STEPS, BATCH, LR = 1500, 1024, 1e-2
# Each architecture's knob values, bracketing the true L0 of 8 where the budget lets them (the
# sigmoid network sweeps rho at beta = 0.3: at beta = 3 its FVU stayed near 0.9).
KNOBS = {
    "sigmoid": {"rho": (0.005, 0.015, 0.05), "beta": (0.3,)},
    "relu-l1": {"l1": (1.0, 1.5, 2.2)},
    "topk": {"k": (6, 8, 12)},
    "batchtopk": {"k": (8, 12, 16)},
    "jumprelu": {"l0": (0.03, 0.1, 0.3)},
}
# JumpReLU's pseudo-derivative bandwidth: at the default 1e-3 (and at 0.05 and 0.2) its
# thresholds hardly moved in this budget (L0 140, 60 and 49 whatever l0, from 0.03 to 10); at
# 1.0 the l0 coefficient sets L0 (23, 13 and 5 for 0.03, 0.1 and 0.3).
BANDWIDTH = 1.0
# Members trained at once: one per core. A block of all 6 top-k members took 390 s where three
# blocks of 2 took 163 s (the selection's passes over 3 members' codes at once leave the cache).
CHUNK = 2
# SAELens's SynthSAEBench (its docs: width 4096, L0 25, 200M samples), F1 and MCC.
SYNTHSAEBENCH = {"Matryoshka BatchTopK": (0.879, 0.793), "BatchTopK": (0.732, 0.757),
                 "JumpReLU": (0.732, 0.753), "standard L1": (0.556, 0.604)}
COLUMNS = ("mean_l0", "fvu", "dead_fraction", "mcc", "recovered_fraction", "f1")


def config_of(arch: str, quick: bool, n_hidden: int) -> TrainConfig:
    steps, batch = (60, 128) if quick else (STEPS, BATCH)
    extra = ({"decoder": "linear"} if arch == "sigmoid" else
             {"bandwidth": BANDWIDTH} if arch == "jumprelu" else {})
    return TrainConfig(arch=arch, n_hidden=n_hidden, lam=0.0, optimizer="adam", steps=steps,
                       batch_size=batch, lr=LR, schedule="cosine", dataset="array",
                       checkpoint_seconds=0, **extra)


def matched(rows: list, knob: str, true_l0: float, sigmoid: bool) -> dict:
    """The seeds' mean of every column at the knob value whose mean L0 is nearest the true L0
    (the sigmoid network: whose mean MCC is highest)."""
    values = sorted({r[knob] for r in rows})
    means = {v: {c: float(np.mean([r[c] for r in rows if r[knob] == v])) for c in COLUMNS}
             for v in values}
    if sigmoid:
        best = max(values, key=lambda v: means[v]["mcc"])
    else:
        best = min(values, key=lambda v: abs(means[v]["mean_l0"] - true_l0))
    return {knob: best, **means[best],
            "best_mcc": max(r["mcc"] for r in rows),
            "best_f1": max(r["f1"] for r in rows)}


def draw(path, rows_of: dict, true_l0: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_fvu, ax_mcc) = plt.subplots(1, 2, figsize=(11, 4.2))
    for arch, rows in rows_of.items():
        l0 = [r["mean_l0"] for r in rows]
        ax_fvu.scatter(l0, [r["fvu"] for r in rows], label=arch, s=22)
        ax_mcc.scatter(l0, [r["mcc"] for r in rows], label=arch, s=22)
    for ax, label in ((ax_fvu, "FVU (held-in data)"), (ax_mcc, "MCC against the true features")):
        ax.axvline(true_l0, color="grey", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_xlabel("L0 (active latents per example)")
        ax.set_ylabel(label)
    ax_fvu.set_yscale("log")
    ax_mcc.legend(fontsize=8)
    fig.suptitle(f"every member of every sweep; dashed: the true mean L0 ({true_l0:.2f})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", help="where the set and the sweeps go (default: a new "
                                          "runs/synthetic-benchmark-<time>)")
    parser.add_argument("--resume", action="store_true",
                        help="continue a stopped benchmark in --workdir: its set is read back "
                             "and every sweep resumed")
    add_out_argument(parser, quick=True)
    parser.add_argument("--quick", action="store_true",
                        help="a tiny set and a few steps: checks that the script runs")
    args = parser.parse_args()
    workdir = Path(args.workdir) if args.workdir else rundir.fresh("synthetic-benchmark")
    if args.resume and not synthetic.is_synthetic(workdir / "set"):
        raise ValueError(f"{workdir} holds no benchmark to resume (no set/synth.json).")
    if not args.resume and workdir.exists() and any(workdir.iterdir()):
        raise ValueError(f"{workdir} is not empty; nothing was changed. Choose another "
                         "--workdir, or --resume to continue the benchmark there.")
    t0 = time.perf_counter()
    set_config = synthetic.SynthConfig()
    if args.quick:
        set_config = replace(set_config, n_dims=8, n_features=24, num_examples=2000,
                             num_heldout=400, mean_l0=3.0)
    if not args.resume:
        synthetic.write(workdir / "set", set_config)
    truth = synthetic.load(workdir / "set")
    set_config = truth.config
    true_l0 = float(np.mean(np.sum(np.asarray(truth.heldout_codes) > 0, axis=1)))
    x = np.asarray(truth.x)
    info = {"dataset": "array", "synthetic": str(workdir / "set"), "shape": list(x.shape)}
    rows_of, table_rows, seconds = {}, {}, {}
    for arch, knobs in KNOBS.items():
        if args.quick:
            knobs = {k: v[:2] for k, v in knobs.items()}
            knobs = {**knobs, "k": (2, 3)} if "k" in knobs else knobs
        t = time.perf_counter()
        result = sweeps.sweep(config_of(arch, args.quick, set_config.n_features), x,
                              seed=list(SEEDS), chunk_size=CHUNK, workdir=workdir / arch,
                              data_info=info,
                              truth=truth, progress=False,
                              resume=args.resume and (workdir / arch / "config.json").exists(),
                              **{k: list(v) for k, v in knobs.items()})
        seconds[arch] = time.perf_counter() - t
        rows_of[arch] = [{c: r[c] for c in (*knobs, "seed", *COLUMNS)} for r in result.rows]
        knob = "rho" if arch == "sigmoid" else next(iter(knobs))
        table_rows[arch] = matched(rows_of[arch], knob, true_l0, arch == "sigmoid")
        print(f"{arch}: {len(result.rows)} members in {seconds[arch]:.0f} s; at matched L0 "
              f"MCC {table_rows[arch]['mcc']:.3f}, recovered "
              f"{table_rows[arch]['recovered_fraction']:.3f}", flush=True)
    # chance: decoder columns drawn at random, matched to the true directions the same way
    chance = [metrics.recovery(np.random.default_rng(s).standard_normal(
        (set_config.n_dims, set_config.n_features)), truth.dictionary) for s in SEEDS]
    chance = {k: float(np.mean([c[k] for c in chance])) for k in ("mcc", "recovered_fraction")}
    out = results_dir(args.out, args.quick)
    out.mkdir(parents=True, exist_ok=True)
    draw(out / f"{NAME}.png", rows_of, true_l0)
    draw(workdir / "frontier.png", rows_of, true_l0)
    total = time.perf_counter() - t0
    at = measured_at()
    lines = [f"## Feature recovery on the default synthetic set ({measured_label(at)})", "",
             f"d = {set_config.n_dims}, F = {set_config.n_features}, true mean L0 {true_l0:.2f} "
             f"(held-out), {set_config.num_examples:,} examples; H = {set_config.n_features}, "
             f"Adam {config_of('topk', args.quick, 1).steps} steps, batch "
             f"{config_of('topk', args.quick, 1).batch_size}, seeds {list(SEEDS)}; "
             f"whole benchmark {total:.0f} s on this machine.", "",
             "| architecture | knob at matched L0 | L0 | FVU | dead | MCC | recovered > 0.9 | "
             "F1 | best MCC | best F1 |", "|---|---|---|---|---|---|---|---|---|---|"]
    for arch, r in table_rows.items():
        knob = next(k for k in r if k not in (*COLUMNS, "best_mcc", "best_f1"))
        lines.append(f"| {arch} | {knob} = {r[knob]:g} | {r['mean_l0']:.2f} | {r['fvu']:.4f} | "
                     f"{100 * r['dead_fraction']:.1f}% | {r['mcc']:.3f} | "
                     f"{100 * r['recovered_fraction']:.1f}% | {r['f1']:.3f} | "
                     f"{r['best_mcc']:.3f} | {r['best_f1']:.3f} |")
    lines.append(f"| random decoder (chance) | | | | | {chance['mcc']:.3f} | "
                 f"{100 * chance['recovered_fraction']:.1f}% | | | |")
    lines += ["", "SynthSAEBench (SAELens's docs; width 4096, L0 25, 200M samples): " + ", ".join(
        f"{name} F1 {f1} MCC {mcc}" for name, (f1, mcc) in SYNTHSAEBENCH.items()), ""]
    save_results(out, NAME, {"measured": at, "set": set_config.__dict__, "true_l0": true_l0,
                             "seconds": seconds, "total_seconds": total, "matched": table_rows,
                             "chance": chance,
                             "members": rows_of}, "\n".join(lines))


if __name__ == "__main__":
    run_script(main)
