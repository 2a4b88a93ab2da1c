"""What the experiment scripts share: timing, results files, subprocesses and run directories.

Every script imports it as ``from experiments.common import ...`` and runs from the project
root as ``python -m experiments.<kind>.<name>``.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from saejax.records import checkpoints, rundir

ROOT = Path(__file__).resolve().parents[1]  # the project root, which holds experiments/ and saejax/
RESULTS = ROOT / "experiments" / "results"
# --quick runs write here: their tiny settings must not replace the numbers in RESULTS.
QUICK_RESULTS = Path("runs") / "quick"
# The final J in what `saejax train` (and the scripts that train) print.
J_LINE = re.compile(r"J = ([0-9.]+)")


def median_seconds(fn, repeats: int = 7, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs, after ``warmup`` runs not counted.

    ``fn`` must block until its result is ready (``jax.block_until_ready``).
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def interleaved_medians(fns: dict, repeats: int = 7, warmup: int = 1, burst: int = 1) -> dict:
    """Median wall time of each ``fns[name]()``, the functions taking turns in every round.

    Taking turns spreads the noise of a shared machine evenly over the contenders, so their
    ratio is fairer than that of back-to-back blocks of runs. With ``burst`` > 1 each turn calls
    its function ``burst + 1`` times and times the last ``burst``: the first call of a turn can
    pay for the previous contender's threads (OpenMP's spin-waiting ones, say) still holding the
    cores.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            if burst > 1:
                fn()
            for _ in range(burst):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def compile_seconds(jitted, *args, **kwargs):
    """Time to lower and compile ``jitted`` for these arguments; returns (seconds, compiled)."""
    t0 = time.perf_counter()
    compiled = jitted.lower(*args, **kwargs).compile()
    return time.perf_counter() - t0, compiled


def matmul_gflops(m: int, k: int, n: int, dtype=jnp.float32, repeats: int = 7) -> float:
    """Achieved GFLOP/s of a jitted (m, k) @ (k, n) matmul in this process."""
    ka, kb = jax.random.split(jax.random.key(0))
    a = jax.random.uniform(ka, (m, k), dtype)
    b = jax.random.uniform(kb, (k, n), dtype)
    f = jax.jit(jnp.matmul)
    t = median_seconds(lambda: f(a, b).block_until_ready(), repeats, warmup=2)
    return 2.0 * m * k * n / t / 1e9


def matmul_peak_gflops(m: int, n: int, h: int, dtype=jnp.float32) -> float:
    """The best matmul throughput measured here: over a 2048^3 square matmul and the three
    shapes of an autoencoder step with m examples, n visible and h hidden units."""
    shapes = [(2048, 2048, 2048), (m, n, h), (m, h, n), (h, m, n)]
    return max(matmul_gflops(*s, dtype=dtype) for s in shapes)


def results_dir(out: str | Path | None, quick: bool = False) -> Path:
    """Where a benchmark writes its results: ``out`` if given, else experiments/results, or
    runs/quick (under the working directory) for a --quick run."""
    if out is not None:
        return Path(out)
    return QUICK_RESULTS if quick else RESULTS


def add_out_argument(parser, quick: bool = False) -> None:
    """A benchmark's ``--out``, the directory of its results files; read it with ``results_dir``."""
    default = "experiments/results" + ("; runs/quick with --quick" if quick else "")
    parser.add_argument("--out", type=Path, help=f"results directory (default: {default})")


def save_results(out, name: str, result, table: str) -> None:
    """Writes a benchmark's ``result`` to out/<name>.json and its ``table`` to out/<name>.md,
    and prints the table."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(result, indent=2, default=str))
    (out / f"{name}.md").write_text(table)
    print(table)


def load_results(out, name: str):
    """What an earlier run wrote to out/<name>.json, or None: for results files that keep the
    latest run of each of several parts (gpu_check's checks, lbfgs_sweep's grids)."""
    path = Path(out) / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def measured_at() -> dict:
    """Today's date and the commit of the code being measured ("+changes" when the checkout
    differs from it; None outside a git checkout), to label a part of a results file."""
    def git(*args):
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                              check=True).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        if git("status", "--porcelain", "--untracked-files=no"):
            commit += "+changes"
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {"date": time.strftime("%Y-%m-%d"), "commit": commit}


def measured_label(at: dict) -> str:
    """A ``measured_at`` as a table shows it: "2026-11-27, e7adea6" (the date alone outside
    a git checkout)."""
    return ", ".join(v for v in (at["date"], at["commit"]) if v)


def module_command(module: str, *args) -> list[str]:
    """``python -m module args`` with this interpreter; run it with ``module_env()``."""
    return [sys.executable, "-m", module, *map(str, args)]


class ChildError(RuntimeError):
    """A child process of a script failed; the message ends with the end of its stderr."""


def timed_process(cmd, env=None) -> tuple[float, str]:
    """``(wall seconds, stdout)`` of ``cmd`` run to its exit, as a user would time it;
    ``ChildError`` with the end of its stderr when it fails."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        shown = " ".join(map(str, cmd))
        shown = shown if len(shown) < 300 else shown[:300] + " ..."
        raise ChildError(f"{shown} failed (exit status {proc.returncode}):\n"
                         f"{proc.stderr[-3000:].strip()}")
    return wall, proc.stdout


def module_env(env: dict | None = None) -> dict:
    """``env`` (default: this process's) with the project root first on PYTHONPATH, so that a
    child ``python -m experiments...`` finds this checkout's scripts and saejax from any
    working directory."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def add_arguments(parser, name: str, kind: str = "run", resumes: bool = True) -> None:
    """An experiment script's ``--workdir`` (default runs/<name>-<time>) and, for a script that
    can continue a killed run (``resumes``), ``--resume``."""
    parser.add_argument("--workdir",
                        help=f"a new or empty run directory (default: runs/{name}-<time>)")
    if resumes:
        parser.add_argument("--resume", action="store_true",
                            help=f"continue the {kind} in --workdir")
    parser.set_defaults(run_name=name, run_kind=kind, run_resumes=resumes, resume=False)


def count(name: str):
    """An argparse type for a script's count (``--steps``, ``--epochs``): the rule of the
    ``TrainConfig`` field of that name (steps below 2**31), else a positive integer; exit
    status 2 naming the flag."""
    from saejax.config import TrainConfig
    from saejax.flags import checked

    field = TrainConfig.__dataclass_fields__.get(name)
    rule = field.metadata.get("rule") if field is not None else None
    return checked(int, rule if rule in ("step_count", "positive_int") else "positive_int", name)


def directory(text: str) -> str:
    """An argparse type for a directory that must exist (``--mnist``), else exit status 2
    naming the flag; the path as given (a string, as a config's ``data`` holds it)."""
    import argparse

    if not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is not a directory: give the directory that "
                                         "holds the files (MNIST's train-images-idx3-ubyte[.gz], "
                                         "...)")
    return text


def seed_type():
    """An argparse type for a script's ``--seed``: a whole number in [0, 2**31)."""
    from saejax.flags import checked

    return checked(int, "seed", "seed")


def workdir_of(args) -> Path:
    """``saejax.records.rundir.choose`` for the flags ``add_arguments`` made: the directory, checked
    (nothing created), so that a taken one is refused before any data loads."""
    return rundir.choose(args.workdir, args.resume, args.run_name, args.run_kind,
                         resumable=args.run_resumes)


def claim_workdir(args, workdir: Path) -> Path:
    """``workdir`` created (or taken as it is, when new or empty) and locked for this process,
    checked again under the lock: what a script that writes its own records calls before its
    first file (``saejax.records.rundir.claim``)."""
    return rundir.claim(workdir, args.run_kind, resume=False, resumable=args.run_resumes)


def run_script(main) -> None:
    """Runs an experiment script's ``main()``: bad input, a taken directory or a failed child
    process prints its message (no traceback), its Python arguments named as flags, and exits
    with status 2, as the command line does."""
    from saejax.flags import to_flags

    try:
        main()
    except (ValueError, checkpoints.CheckpointError, FileNotFoundError, ChildError) as err:
        print(f"{Path(sys.argv[0]).name}: error: {to_flags(str(err))}", file=sys.stderr)
        sys.exit(2)
