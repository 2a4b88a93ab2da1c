"""Runs and sweeps killed at any moment resume to the uninterrupted results: a run after SIGKILL, a
sweep killed between and inside its blocks, and a sweep that died with rows on disk; a resume
with another grid is refused untouched."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import snapshot, sweep_cli

from saejax import train
from saejax.config import TrainConfig
from saejax.data import load_digits
from saejax.records.checkpoints import Checkpointer


def _cli(workdir, *extra):
    return [sys.executable, "-m", "saejax.cli", "train", "--preset", "digits",
            "--optimizer", "adam", "--lr", "0.01", "--batch-size", "64", "--steps", "600",
            "--steps-per-call", "10", "--checkpoint-every", "10", "--checkpoint-seconds", "0",
            "--keep-checkpoints", "2",
            "--log-every", "100", "--workdir", str(workdir), "--no-progress", *extra]


@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    env = dict(os.environ, SAEJAX_CACHE_DIR=str(tmp_path / "cache"))
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cli(killed), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 120
    ckpts = killed / "checkpoints"
    while time.time() < deadline:
        steps = [p for p in ckpts.glob("*") if p.name.isdigit()] if ckpts.exists() else []
        if len(steps) >= 2 and proc.poll() is None:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    at_kill = Checkpointer(ckpts).latest_step()
    assert 0 < at_kill < 600
    resumed = subprocess.run(_cli(killed, "--resume"), env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    clean = tmp_path / "clean"
    full = subprocess.run(_cli(clean), env=env, capture_output=True, text=True)
    assert full.returncode == 0, full.stderr

    cfg = TrainConfig(dataset="digits", rho=0.1, optimizer="adam", lr=0.01, batch_size=64)
    like = train.init_state(cfg, load_digits()[0].shape[1])
    a = Checkpointer(killed / "checkpoints").restore(like)
    b = Checkpointer(clean / "checkpoints").restore(like)
    assert int(a.step) == int(b.step) == 600
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])  # bitwise on CPU
    config = json.loads(Path(killed / "config.json").read_text())
    assert config["resumed_from"] == at_kill
    steps = [json.loads(line)["step"] for line in (killed / "metrics.jsonl").open()]
    assert steps == sorted(set(steps)), "metrics.jsonl repeats or loses steps after resume"


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
    "topk": (dict(arch="topk", batch_size=16, steps=400, n_hidden=6, num_examples=200,
                  dead_window=64), 200),
}


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["adam", "lbfgs", "topk"])
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
    knobs = (dict(k=[1, 2, 4], seed=[0, 1]) if optimizer == "topk" else
             dict(rho=[0.05, 0.1, 0.2], beta=[0.5, 3.0]))
    grid = dict(**knobs, chunk_size=6, num_devices=1, progress=False)
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

    if optimizer == "adam":  # a corrupt block checkpoint: the error says what deleting it does
        import shutil

        from saejax.records.checkpoints import CheckpointError

        broken = shutil.copytree(tmp_path / "killed", tmp_path / "broken")
        steps = sorted(int(d.name) for d in (broken / "running" / "00000").iterdir()
                       if d.name.isdigit())
        assert steps[-1] == kill_at
        # every byte of every data file flipped: orbax lays its files out differently from run
        # to run, and one flipped byte in the largest file once went unnoticed (in CI)
        for f in (broken / "running" / "00000" / str(kill_at)).rglob("*"):
            if f.is_file() and f.parent.name == "d":
                f.write_bytes(bytes(b ^ 0xFF for b in f.read_bytes()))
        advice = (f"Delete it: resuming then falls back to checkpoint {steps[-2]}" if
                  len(steps) > 1 else "It is the only checkpoint there")
        with pytest.raises(CheckpointError, match=f"checkpoint {kill_at} in .*{advice}"):
            sweeps.sweep(config, x, workdir=broken, resume=True, **grid)

    resumed = sweeps.sweep(config, x, workdir=tmp_path / "killed", resume=True, **grid)
    assert resumed.summary["resumed_from"] == {"block": 0, "step": kill_at}
    # bitwise: the same text, row for row
    assert ((tmp_path / "killed" / "results.csv").read_text()
            == (tmp_path / "clean" / "results.csv").read_text())
    assert not (tmp_path / "killed" / "running").exists()  # removed once the block is saved


@pytest.mark.slow
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


@pytest.mark.slow
def test_the_command_line_says_which_block_it_resumed_and_from_which_step(tmp_path, monkeypatch,
                                                                           capsys):
    from saejax import cli
    from saejax.records.sweep_record import BlockCheckpoints

    argv = sweep_cli(tmp_path / "s", "adam", "--checkpoint-every", "100",
                     "--checkpoint-seconds", "0")[3:]  # in process: from "sweep" on
    save = BlockCheckpoints.save

    def save_then_die(self, step, tree):
        save(self, step, tree)
        if step == 200 and self.directory.name == "00001":  # block 1 of 3, halfway
            raise Killed

    monkeypatch.setattr(BlockCheckpoints, "save", save_then_die)
    with pytest.raises(Killed):
        cli.main(argv)
    monkeypatch.undo()
    capsys.readouterr()
    assert cli.main([*argv, "--resume"]) == 0
    out = capsys.readouterr().out
    assert "resumed block 1 (running/00001) from its checkpoint at step 200\n" in out
    assert not (tmp_path / "s" / "running" / "00001").exists()
