"""Fault injection: two processes on one run or sweep directory. The first to claim it holds
its lock until it ends; the other is refused before it writes anything, and a lock dies with
the process that held it (a killed run leaves none behind)."""

import json
import subprocess
import sys

import pytest
from helpers import small_config, sweep_config, sweep_data, tiny_data

from saejax import sweeps, train
from saejax.records.rundir import RunDirError

# whole trainings, sweeps and processes: the slow tier (make test, CI)
pytestmark = pytest.mark.slow

LOCK = ".saejax.lock"  # the lock file each run and sweep directory holds

HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o666)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(600)
"""


@pytest.fixture
def holder(tmp_path):
    """Another process holding tmp_path/run's lock, as a run in progress does."""
    (tmp_path / "run").mkdir()
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "run" / LOCK)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    yield proc
    proc.kill()
    proc.wait()


def test_a_directory_in_use_is_refused_and_freed_when_its_holder_dies(tmp_path, holder):
    workdir = tmp_path / "run"
    cfg = small_config(steps=2, steps_per_call=2)
    with pytest.raises(RunDirError, match="in use by another saejax process"):
        train.run(cfg, tiny_data(), workdir, progress=False)
    with pytest.raises(RunDirError, match="in use by another saejax process"):
        sweeps.sweep(sweep_config(steps=2, steps_per_call=2), sweep_data(), [0.1], [3.0],
                     workdir=workdir, progress=False)
    assert sorted(p.name for p in workdir.iterdir()) == [LOCK]  # nothing else written
    holder.kill()  # SIGKILL: no chance to clean up
    holder.wait()
    result = train.run(cfg, tiny_data(), workdir, progress=False)
    assert result.summary["steps"] == 2
    # and the run let go of it when it ended: this process can resume it
    train.run(cfg.replace(steps=4), tiny_data(), workdir, resume=True, progress=False)


def test_two_runs_started_together_on_one_directory(tmp_path):
    argv = [sys.executable, "-m", "saejax.cli", "train", "--preset", "digits",
            "--num-examples", "200", "--n-hidden", "6", "--steps", "30", "--steps-per-call",
            "10", "--workdir", str(tmp_path / "run"), "--no-progress"]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outcomes = sorted((p.wait(timeout=300), p.stderr.read()) for p in procs)
    assert [code for code, _ in outcomes] == [0, 2], outcomes
    assert ("in use by another saejax process" in outcomes[1][1]
            or "already holds a training run" in outcomes[1][1]), outcomes[1][1]
    rows = [json.loads(r) for r in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(30)) + [30]  # the winner's, each step once
