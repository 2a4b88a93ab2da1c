"""Benchmark: what a run's checkpoints cost, in the run and in the whole `saejax train` process.

Command:   .venv/bin/python -m experiments.bench.checkpoints [--repeats 7] [--quick]
Run time:  about 3 minutes on 2 CPU cores (--quick: 30 s).
Expected:  a run's last checkpoint blocks training for a few tens of milliseconds (orbax's
           asynchronous save: the write finishes while the run draws its figures), so the
           whole `saejax train` process of the UFLDL exercise runs as fast with its checkpoints
           as without them, to within the noise of a shared machine: under 2% of its time.

Three measurements, each the median of interleaved repeats:
- in the run: the time ``Checkpointer.save`` holds the training thread, and the time
  ``Checkpointer.close`` waits for the write at the end;
- runs in one process (hot caches): ``train.run`` of the exercise (L-BFGS, 400 iterations) and
  of 2,000 Adam steps, with their checkpoints and with saving switched off;
- whole processes: ``python -m saejax.cli train`` of the exercise with and without saving.
Writes bench_checkpoints.json and bench_checkpoints.md to --out (default experiments/results).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from experiments.common import (
    add_out_argument,
    count,
    measured_at,
    measured_label,
    module_env,
    results_dir,
    run_script,
    save_results,
    timed_process,
)
from saejax import train
from saejax.config import PRESETS
from saejax.data import training_data
from saejax.records import checkpoints

REAL_SAVE, REAL_CLOSE = checkpoints.Checkpointer.save, checkpoints.Checkpointer.close
# A process that trains the exercise; "without" switches saving off first.
PROCESS = ("import sys\n"
           "if sys.argv[1] == 'without':\n"
           "    from saejax.records import checkpoints\n"
           "    checkpoints.Checkpointer.save = lambda self, step, tree, wait=True: None\n"
           "from saejax import cli\n"
           "sys.exit(cli.main(['train', '--workdir', sys.argv[2], '--no-progress']))\n")


def in_run(config, x, repeats: int) -> dict:
    """Milliseconds ``save`` and ``close`` hold the training thread, per run."""
    held = {"save": [], "close": []}

    def save(self, *args, **kwargs):
        t0 = time.perf_counter()
        REAL_SAVE(self, *args, **kwargs)
        held["save"].append(1e3 * (time.perf_counter() - t0))

    def close(self):
        t0 = time.perf_counter()
        REAL_CLOSE(self)
        held["close"].append(1e3 * (time.perf_counter() - t0))

    checkpoints.Checkpointer.save, checkpoints.Checkpointer.close = save, close
    try:
        for _ in range(repeats):
            with tempfile.TemporaryDirectory() as d:
                train.run(config, x, Path(d) / "run", progress=False)
    finally:
        checkpoints.Checkpointer.save, checkpoints.Checkpointer.close = REAL_SAVE, REAL_CLOSE
    return {k: statistics.median(v) for k, v in held.items()}


def runs_with_and_without(config, x, repeats: int) -> dict:
    """Median wall seconds of ``train.run`` with its checkpoints and with saving off."""
    walls = {"with": [], "without": []}
    for rep in range(repeats + 1):
        for variant in walls:
            checkpoints.Checkpointer.save = (REAL_SAVE if variant == "with"
                                             else lambda self, step, tree, wait=True: None)
            with tempfile.TemporaryDirectory() as d:
                t0 = time.perf_counter()
                train.run(config, x, Path(d) / "run", progress=False)
                if rep:  # the first round fills the caches
                    walls[variant].append(time.perf_counter() - t0)
    checkpoints.Checkpointer.save = REAL_SAVE
    return {k: statistics.median(v) for k, v in walls.items()}


def processes_with_and_without(repeats: int) -> dict:
    """Median wall seconds of a whole `saejax train` process with and without saving."""
    walls = {"with": [], "without": []}
    with tempfile.TemporaryDirectory() as d:
        for rep in range(repeats + 1):
            for variant in walls:
                t0 = time.perf_counter()
                timed_process([sys.executable, "-c", PROCESS, variant, f"{d}/{variant}{rep}"],
                              module_env())
                if rep:
                    walls[variant].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in walls.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=count("repeats"), default=7)
    parser.add_argument("--quick", action="store_true", help="2 repeats, results to runs/quick")
    add_out_argument(parser, quick=True)
    args = parser.parse_args()
    repeats = 2 if args.quick else args.repeats
    x, _ = training_data("patches")
    exercise = PRESETS["ufldl-patches"]
    adam = exercise.replace(optimizer="adam", steps=2000)
    result = {"measured": measured_at(), "repeats": repeats,
              "held_ms": in_run(exercise, x, repeats),
              "runs_s": {"exercise": runs_with_and_without(exercise, x, repeats),
                         "adam 2000": runs_with_and_without(adam, x, repeats)},
              "processes_s": {"exercise": processes_with_and_without(repeats)}}
    lines = [f"# What a run's checkpoints cost ({measured_label(result['measured'])}, medians "
             f"of {repeats})", "",
             f"The last checkpoint holds the training thread {result['held_ms']['save']:.0f} ms "
             f"(save) and {result['held_ms']['close']:.0f} ms (close, waiting for the write).",
             "", "| what | with checkpoints (s) | without (s) | difference |", "|---|---|---|---|"]
    for kind, table in (("run in one process", result["runs_s"]),
                        ("whole process", result["processes_s"])):
        for name, w in table.items():
            diff = w["with"] - w["without"]
            lines.append(f"| {name}, {kind} | {w['with']:.3f} | {w['without']:.3f} | "
                         f"{1e3 * diff:+.0f} ms ({100 * diff / w['with']:+.1f}%) |")
    save_results(results_dir(args.out, args.quick), "bench_checkpoints", result,
                 "\n".join(lines) + "\n")


if __name__ == "__main__":
    run_script(main)
