"""Training on an activations cache read a minibatch at a time against the same run on the
cache loaded whole: wall time and peak memory of the whole process, side by side.

Command:   .venv/bin/python -m experiments.bench.stream --data ACTS [--steps 100] [--rounds 3]
           [--n-hidden 4608] [--k 32] [--batch-size 1024] [--out DIR]
           (ACTS: a directory that `saejax activations` wrote, e.g. 500,000 tokens of
           SmolLM2-135M's layer 6, 1.15 GB)
Run time:  about 5 minutes on 2 CPU cores with the defaults on that cache (3 rounds of two
           processes of about 45 s each).
Expected:  bench_stream.md and .json in --out (default experiments/results): for each way, the
           median wall seconds and peak resident memory of its processes; the streamed run's
           peak stays near the evaluation rows (``data.stream.EVAL_ROWS``) and the model, not
           the cache's size. The two train on the same minibatches; on a cache of at most
           EVAL_ROWS rows their params are equal (checked here), on a larger one the streamed
           run starts its decoder bias at the evaluation rows' mean and reports J on them.

Each process imports saejax, opens the cache (loaded: ``data.load_array``; streamed:
``data.ActivationStream.open``), trains a TopK autoencoder with Adam for --steps steps, and
reports its wall time, ``ru_maxrss`` and the peak of its anonymous memory. The two ways take turns, so the machine's noise falls
on both alike.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

from experiments.common import (
    add_out_argument,
    count,
    measured_at,
    measured_label,
    results_dir,
    run_script,
    save_results,
    timed_process,
)
from saejax.data.stream import EVAL_ROWS

CHILD = """
import json, resource, sys, threading, time
t0 = time.perf_counter()
peak_anon = [0]
def watch():  # the anonymous memory (not the page cache a memory map shows), every 50 ms
    while True:
        with open("/proc/self/status") as f:
            kb = next(int(l.split()[1]) for l in f if l.startswith("RssAnon:"))
        peak_anon[0] = max(peak_anon[0], kb)
        time.sleep(0.05)
threading.Thread(target=watch, daemon=True).start()
import numpy as np
from saejax import train
from saejax.config import TrainConfig
from saejax.data import ActivationStream, load_array
way, home, steps, n_hidden, k, batch, out = sys.argv[1:8]
data, info = (load_array(home) if way == "loaded" else ActivationStream.open(home))
cfg = TrainConfig(arch="topk", k=int(k), n_hidden=int(n_hidden), optimizer="adam", lr=1e-3,
                  lam=0.0, batch_size=int(batch), steps=int(steps), decoder="linear",
                  dataset="array", data=home)
run = train.run(cfg, data, progress=False, data_info=info)
np.savez(out, **{k: np.asarray(v) for k, v in run.state.params.items()})
print(json.dumps({"wall": time.perf_counter() - t0,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "peak_anon_mb": peak_anon[0] / 1024,
                  "train_seconds": run.summary["wall_seconds"],
                  "final_loss": run.summary["final_loss"]}))
"""


def one(way: str, args, out: Path) -> dict:
    argv = [sys.executable, "-c", CHILD, way, str(args.data), str(args.steps),
            str(args.n_hidden), str(args.k), str(args.batch_size), str(out)]
    _, stdout = timed_process(argv)
    return json.loads(stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, type=Path, help="an activations cache directory")
    p.add_argument("--steps", type=count("steps"), default=100)
    p.add_argument("--rounds", type=count("rounds"), default=3)
    p.add_argument("--n-hidden", type=count("n_hidden"), default=4608)
    p.add_argument("--k", type=count("k"), default=32)
    p.add_argument("--batch-size", type=count("batch_size"), default=1024)
    add_out_argument(p)
    args = p.parse_args()
    record = json.loads((args.data / "activations.json").read_text())
    cache_mb = sum((args.data / s["activations"]).stat().st_size for s in record["shards"]) / 2**20
    runs = {"loaded": [], "streamed": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for way in runs:
                runs[way].append(one(way, args, Path(tmp) / f"{way}{r}.npz"))
                print(way, runs[way][-1], flush=True)
        a, b = (np.load(Path(tmp) / f"{way}0.npz") for way in runs)
        same = all(np.array_equal(a[key], b[key]) for key in a.files)
    rows = [{"way": way, "wall_seconds": float(np.median([x["wall"] for x in got])),
             "train_seconds": float(np.median([x["train_seconds"] for x in got])),
             "peak_mb": float(np.median([x["peak_mb"] for x in got])),
             "peak_anon_mb": float(np.median([x["peak_anon_mb"] for x in got])),
             "final_loss": got[0]["final_loss"]} for way, got in runs.items()]
    label = measured_label(measured_at())
    lines = [f"# Streamed against loaded training ({label})", "",
             f"Cache: {args.data} ({record['tokens']} rows of {record['d_model']}, "
             f"{cache_mb:.0f} MiB). TopK k={args.k}, {args.n_hidden} latents, Adam, "
             f"{args.steps} steps of {args.batch_size} rows; median of {args.rounds} processes "
             f"each, taking turns; {platform.processor() or platform.machine()}.", "",
             "| way | whole process (s) | training (s) | peak resident (MiB) | "
             "peak anonymous (MiB) | final J |", "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['way']} | {r['wall_seconds']:.1f} | {r['train_seconds']:.1f} | "
              f"{r['peak_mb']:.0f} | {r['peak_anon_mb']:.0f} | {r['final_loss']:.6g} |"
              for r in rows]
    lines += ["", "Peak resident memory counts the pages of the shards a memory map has "
              "touched, which the kernel can drop at will; peak anonymous memory (RssAnon, "
              "sampled every 50 ms) is what the process itself holds."]
    if record["tokens"] <= EVAL_ROWS:
        lines += ["", f"Params of the first round equal, bit for bit: {same}."]
    else:
        lines += ["", f"The cache holds more than {EVAL_ROWS:,} rows, so the streamed run "
                  "starts its decoder bias at the mean of that many sampled rows and reports J "
                  "on them; the loaded run uses every row."]
    save_results(results_dir(args.out), "bench_stream",
                 {"rows": rows, "runs": runs, "same_params": same, "cache_mib": cache_mb,
                  "args": {k: str(v) for k, v in vars(args).items()}}, "\n".join(lines) + "\n")


if __name__ == "__main__":
    run_script(main)
