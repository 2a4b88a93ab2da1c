"""Run directories: a taken directory is refused untouched, records keep their segments,
and a sweep killed at any moment resumes to the uninterrupted results."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from saejax import cli
from saejax.records import rundir


def snapshot(directory):
    """Every file's bytes and modification time, to prove nothing was touched."""
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in directory.rglob("*") if p.is_file()}


def test_claim_refuses_a_run_without_checkpoints_and_touches_nothing(tmp_path):
    # config.json and metrics.jsonl but no checkpoint: a run killed before its first save
    (tmp_path / "config.json").write_text(json.dumps({"kind": "run", "config": {}}))
    (tmp_path / "metrics.jsonl").write_text('{"step": 0}\n')
    before = snapshot(tmp_path)
    with pytest.raises(rundir.RunDirError, match="already holds a training run.*--resume"):
        rundir.claim(tmp_path, "run", resume=False)
    with pytest.raises(rundir.RunDirError, match="holds a training run, not a sweep"):
        rundir.claim(tmp_path, "sweep", resume=True)
    assert snapshot(tmp_path) == before


def test_claim_recognises_sweeps_and_empty_directories(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "results.csv").write_text("rho\n")
    with pytest.raises(rundir.RunDirError, match="already holds a sweep"):
        rundir.claim(tmp_path / "s", "sweep", resume=False)
    with pytest.raises(rundir.RunDirError, match="cannot resume: .* holds no sweep"):
        rundir.claim(tmp_path / "new", "sweep", resume=True)
    (tmp_path / "empty").mkdir()
    assert rundir.claim(tmp_path / "empty", "run", resume=False) == tmp_path / "empty"
    assert not (tmp_path / "unmade").exists()
    rundir.claim(tmp_path / "unmade", "run", resume=False, create=False)
    assert not (tmp_path / "unmade").exists()


def test_fresh_never_returns_an_existing_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(rundir.time, "strftime", lambda fmt: "20260101-120000")  # one second
    a = rundir.fresh("x", root=tmp_path)
    assert a == tmp_path / "x-20260101-120000"
    a.mkdir(parents=True)
    b = rundir.fresh("x", root=tmp_path)
    assert b == tmp_path / "x-20260101-120000-2" and not b.exists()


def test_write_text_replaces_whole_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "results.csv"
    rundir.write_text(path, "old\n")
    rundir.write_text(path, "new\n")
    assert path.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv"]


TRAIN = ["train", "--preset", "digits", "--optimizer", "adam", "--batch-size", "32",
         "--steps-per-call", "5", "--checkpoint-every", "5", "--checkpoint-seconds", "0",
         "--no-progress"]


def test_cli_refuses_taken_directories_with_exit_2(tmp_path, capsys):
    run = str(tmp_path / "run")
    assert cli.main([*TRAIN, "--steps", "10", "--workdir", run]) == 0
    before = snapshot(tmp_path / "run")
    capsys.readouterr()
    assert cli.main([*TRAIN, "--steps", "10", "--workdir", run]) == 2
    assert "already holds a training run; nothing was changed" in capsys.readouterr().err
    assert cli.main(["sweep", "--preset", "digits", "--rho", "0.1", "--beta", "1",
                     "--workdir", run, "--no-progress"]) == 2
    assert "already holds a training run" in capsys.readouterr().err
    # a budget below the step the run has reached is refused, not recorded as "0 steps"
    assert cli.main([*TRAIN, "--steps", "5", "--workdir", run, "--resume"]) == 2
    assert "already at step 10. Pass --steps above 10" in capsys.readouterr().err
    assert snapshot(tmp_path / "run") == before


@pytest.mark.parametrize("argv, message", [
    (["train", "--optimizer", "lbfgs", "--lr", "0.1"], "--lr does not apply to L-BFGS"),
    (["train", "--lr", "0.1"], "--lr does not apply to L-BFGS"),  # the default preset's L-BFGS
    (["sweep", "--rho", "0.1", "--beta", "1", "--lr", "0.1", "0.2"], "--lr does not apply"),
    (["sweep", "--rho", "0.1", "--beta", "1", "--log-every", "5"],
     "--log-every does not apply to a sweep"),
    (["sweep", "--rho", "0.1", "--beta", "1", "--coordinator", "127.0.0.1:1"],
     "several processes need all of --coordinator"),
])
def test_flags_that_cannot_apply_are_refused(tmp_path, capsys, argv, message):
    assert cli.main([*argv, "--workdir", str(tmp_path / "w"), "--no-progress"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


def test_resume_records_each_segment_and_marks_the_curves(tmp_path):
    run = str(tmp_path / "run")
    assert cli.main([*TRAIN, "--steps", "10", "--lr", "0.01", "--workdir", run]) == 0
    assert cli.main([*TRAIN, "--steps", "20", "--lr", "0.001", "--workdir", run,
                     "--resume"]) == 0
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    got = [(g["start_step"], g["lr"], g["steps"]) for g in record["segments"]]
    assert got == [(0, 0.01, 10), (10, 0.001, 20)]
    assert record["config"]["lr"] == 0.001 and record["kind"] == "run"


def sweep_cli(workdir, optimizer, *extra):
    steps = {"adam": ["--optimizer", "adam", "--batch-size", "16", "--steps", "400",
                      "--steps-per-call", "100"],
             "lbfgs": ["--optimizer", "lbfgs", "--steps", "150", "--steps-per-call", "50"]}
    return [sys.executable, "-m", "saejax.cli", "sweep", "--preset", "digits",
            "--num-examples", "200", "--n-hidden", "6", "--rho", "0.05", "0.1", "0.2",
            "--beta", "0.5", "3", "--chunk-size", "2", "--dtype", "float32", *steps[optimizer],
            "--workdir", str(workdir), "--no-progress", *extra]


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_sweep_killed_then_resumed_writes_the_uninterrupted_results(tmp_path, optimizer):
    env = dict(os.environ, SAEJAX_CACHE_DIR=str(tmp_path / "cache"), SAEJAX_CPU_DEVICES="1")
    clean = subprocess.run(sweep_cli(tmp_path / "clean", optimizer), env=env,
                           capture_output=True, text=True, timeout=300)
    assert clean.returncode == 0, clean.stderr
    killed = tmp_path / "killed"
    proc = subprocess.Popen(sweep_cli(killed, optimizer), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 240
    rows = []
    while time.time() < deadline and proc.poll() is None:
        if (killed / "results.json").exists():
            rows = json.loads((killed / "results.json").read_text())  # written atomically
            if rows:
                break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the sweep finished before it could be killed"
    assert 0 < len(rows) < 6  # results stream in block by block
    resumed = subprocess.run(sweep_cli(killed, optimizer, "--resume"), env=env,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    # bitwise: the same text, row for row
    assert (killed / "results.csv").read_text() == (tmp_path / "clean" / "results.csv").read_text()
    assert (killed / "heatmaps.png").exists()


class Killed(Exception):
    """Stands in for a kill at a chosen moment of an in-process sweep."""


# Adam: shared minibatches, killed after the checkpoint at step 200 of 400. L-BFGS: 2 hidden
# units on all 1,797 digits stop at 338-517 iterations, so at the checkpoint at step 500 of 600
# three members wait on the host and the runners are packed into a smaller block.
RUNNING_BLOCK = {
    "adam": (dict(optimizer="adam", batch_size=16, steps=400, n_hidden=6, num_examples=200),
             200),
    "lbfgs": (dict(optimizer="lbfgs", steps=600, n_hidden=2, num_examples=1797), 500),
}


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_a_sweep_killed_inside_a_block_continues_it_from_its_checkpoint(tmp_path, monkeypatch,
                                                                        optimizer):
    from saejax import sweeps
    from saejax.config import PRESETS
    from saejax.data import training_data

    settings, kill_at = RUNNING_BLOCK[optimizer]
    config = PRESETS["digits"].replace(dtype="float32", steps_per_call=100,
                                       checkpoint_every=100, checkpoint_seconds=0,
                                       **settings)
    x, _ = training_data("digits", None, config.num_examples)
    grid = dict(rho=[0.05, 0.1, 0.2], beta=[0.5, 3.0], chunk_size=6, num_devices=1,
                progress=False)
    clean = sweeps.sweep(config, x, workdir=tmp_path / "clean", **grid)
    assert clean.summary["resumed_from"] is None

    from saejax.records.sweep_record import BlockCheckpoints

    save, seen = BlockCheckpoints.save, {}

    def save_then_die(self, step, tree):
        save(self, step, tree)
        if step == kill_at:
            seen.update(live=len(tree["live"]), waiting=int(tree["is_waiting"].sum()))
            raise Killed

    monkeypatch.setattr(BlockCheckpoints, "save", save_then_die)
    with pytest.raises(Killed):
        sweeps.sweep(config, x, workdir=tmp_path / "killed", **grid)
    monkeypatch.undo()
    assert not (tmp_path / "killed" / "results.csv").exists()  # the only block was running
    if optimizer == "lbfgs":  # the checkpoint holds a packed block and waiting members
        assert seen["waiting"] >= 1 and seen["live"] < 6

    resumed = sweeps.sweep(config, x, workdir=tmp_path / "killed", resume=True, **grid)
    assert resumed.summary["resumed_from"] == {"block": 0, "step": kill_at}
    # bitwise: the same text, row for row
    assert ((tmp_path / "killed" / "results.csv").read_text()
            == (tmp_path / "clean" / "results.csv").read_text())
    assert not (tmp_path / "killed" / "running").exists()  # removed once the block is saved


def test_heatmaps_are_drawn_from_the_rows_a_dead_sweep_left(tmp_path, monkeypatch):
    from saejax import sweeps
    from saejax.config import PRESETS
    from saejax.data import training_data

    config = PRESETS["digits"].replace(dtype="float32", optimizer="adam", batch_size=16,
                                       steps=20, n_hidden=4, num_examples=100)
    x, _ = training_data("digits", None, 100)
    from saejax.sweeps import runner
    from saejax.viz import figures

    heatmaps = figures.sweep_heatmaps

    def draw_then_die(*args):
        heatmaps(*args)
        raise Killed

    monkeypatch.setattr(runner, "HEATMAP_SECONDS", 0.0)
    monkeypatch.setattr(figures, "sweep_heatmaps", draw_then_die)
    with pytest.raises(Killed):
        sweeps.sweep(config, x, [0.05, 0.1], [0.5, 3.0], chunk_size=2, progress=False,
                     workdir=tmp_path / "s")
    rows = json.loads((tmp_path / "s" / "results.json").read_text())
    assert len(rows) == 2  # one block of two finished, one of two did not
    assert (tmp_path / "s" / "heatmaps.png").stat().st_size > 0


@pytest.mark.slow
def test_sweep_resume_refuses_another_grid(tmp_path):
    env = dict(os.environ, SAEJAX_CPU_DEVICES="1")
    args = sweep_cli(tmp_path / "s", "adam")
    args[args.index("--steps") + 1] = "20"
    first = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    before = snapshot(tmp_path / "s")
    other = [a if a != "0.2" else "0.3" for a in args]
    again = subprocess.run([*other, "--resume"], env=env, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 2
    assert "cannot resume the sweep" in again.stderr and "rho" in again.stderr
    assert "Traceback" not in again.stderr
    assert snapshot(tmp_path / "s") == before


ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_an_experiment_script_runs_twice_each_time_in_a_directory_of_its_own(tmp_path):
    # run from another directory, as `python -m` with the project root on the path
    script = [sys.executable, "-m", "experiments.reproduce.ufldl_sparse_autoencoder", "--steps",
              "3"]
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, SAEJAX_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=path)
    for _ in range(2):
        out = subprocess.run(script, cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, out.stderr
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 2 and all((r / "summary.json").exists() for r in runs)
    before = snapshot(runs[0])
    again = subprocess.run([*script, "--workdir", str(runs[0])], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 2
    assert "already holds a training run" in again.stderr and "Traceback" not in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    assert snapshot(runs[0]) == before


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_two_processes_sweep_as_one_and_only_process_0_writes(tmp_path, optimizer):
    env = dict(os.environ, SAEJAX_CACHE_DIR=str(tmp_path / "cache"), SAEJAX_CPU_DEVICES="2")
    one = subprocess.run(sweep_cli(tmp_path / "one", optimizer), env={**env,
                         "SAEJAX_CPU_DEVICES": "4"}, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr
    port = free_port()
    procs = [subprocess.Popen(
        sweep_cli(tmp_path / "two", optimizer, "--coordinator", f"127.0.0.1:{port}",
                  "--num-processes", "2", "--process-id", str(i)),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    assert "on 4 device(s)" in outs[0][0]  # 2 processes x 2 devices, one program
    a = (tmp_path / "one" / "results.csv").read_text().splitlines()
    b = (tmp_path / "two" / "results.csv").read_text().splitlines()
    assert a[0] == b[0] and len(a) == len(b) == 7
    for ra, rb in zip(a[1:], b[1:], strict=True):
        fa, fb = ra.split(","), rb.split(",")
        assert fa[:5] == fb[:5]  # the same member in the same row
        np.testing.assert_allclose(float(fb[5]), float(fa[5]), rtol=1e-6)  # final_loss
    assert not list((tmp_path / "two").glob(".*.tmp"))
