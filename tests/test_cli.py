"""The `saejax` command: gradcheck's tables, JSON and exit codes; train and sweep write their
directories; flags that cannot apply are refused with exit status 2."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import pytest

from saejax import cli


@pytest.mark.slow
def test_gradcheck_json_passes(capsys):
    code = cli.main(["gradcheck", "--json", "--term", "loss", "sparsity", "--n-visible", "5",
                     "--n-hidden", "3", "--m", "4"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["passed"]
    assert [(c["penalty"], c["term"]) for c in out["checks"]] == [
        (p, t) for p in ("kl", "squared", "l1") for t in ("loss", "sparsity")
    ]
    for check in out["checks"]:
        d = check["differences"]
        assert d["analytic~autodiff"]["all"] < 1e-12
        assert d["analytic~numerical"]["all"] < 1e-9
        assert set(d["analytic~numerical"]) == {"W1", "b1", "W2", "b2", "all"}
    assert 1e-13 < out["sanity"]["difference"] < 1e-11


def test_gradcheck_fails_when_tolerance_is_exceeded(capsys):
    # float32 with a tiny finite-difference step: rounding swamps the central differences,
    # so the check must report failure and exit 1.
    code = cli.main(["gradcheck", "--dtype", "float32", "--eps", "1e-7", "--penalty", "kl"])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL" in out and "SOME CHECKS FAILED" in out


def test_gradcheck_table_output(capsys):
    assert cli.main(["gradcheck", "--penalty", "squared"]) == 0
    out = capsys.readouterr().out
    assert "loss | penalty=squared | sigmoid decoder | float64" in out
    assert "analytic~autodiff" in out and "autodiff~numerical" in out
    assert "all checks passed" in out


def test_bad_input_exits_2_with_message():
    proc = subprocess.run(
        [sys.executable, "-m", "saejax.cli", "gradcheck", "--rho", "1.5"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert "rho must lie strictly inside (0, 1)" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_console_script_exits_fast_with_its_output_and_files_complete(tmp_path):
    # The installed `saejax` ends with os._exit: its piped output must still be flushed, its
    # files complete and its exit status main()'s.
    script = shutil.which("saejax", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the saejax console script is not installed beside this Python")
    workdir = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # a buffered pipe
    proc = subprocess.run([script, "train", "--preset", "digits", "--steps", "6",
                           "--steps-per-call", "3", "--workdir", str(workdir), "--no-progress"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((workdir / "summary.json").read_text())
    assert f"J = {summary['final_loss']:.6g}" in proc.stdout
    assert proc.stdout.rstrip().endswith(f"filters: {workdir / 'filters.png'}")
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").open()]
    assert rows[-1]["final"] and rows[-1]["loss"] == summary["final_loss"]
    from saejax.records.checkpoints import Checkpointer

    assert Checkpointer(workdir / "checkpoints").all_steps() == [6]
    bad = subprocess.run([script, "gradcheck", "--rho", "1.5"], capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 2 and "rho must lie strictly inside (0, 1)" in bad.stderr


@pytest.mark.slow
def test_train_cli_writes_the_run_directory(tmp_path, capsys):
    workdir = tmp_path / "run"
    code = cli.main(["train", "--preset", "digits", "--steps", "15", "--steps-per-call", "5",
                     "--workdir", str(workdir), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    # what it runs on: this worker's CPU devices (two when a sweep's split_cpu ran here first)
    n = jax.device_count()
    assert out.startswith(f"JAX {jax.__version__} on cpu: {n} device{'s' * (n > 1)} (cpu)\n")
    assert f"filters: {workdir / 'filters.png'}" in out
    for name in ("config.json", "metrics.jsonl", "summary.json", "filters.png", "curves.png",
                 "rho_hat.png"):
        assert (workdir / name).is_file(), name
    config = json.loads((workdir / "config.json").read_text())
    assert config["config"]["dataset"] == "digits" and config["config"]["steps"] == 15
    assert config["data"]["shape"] == [1797, 64]
    assert config["data"]["num_examples"] == 1797 == config["config"]["num_examples"]
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["steps"] == 15 and 0 <= summary["dead_fraction"] <= 1


@pytest.mark.slow
def test_num_examples_takes_the_first_digits_and_is_recorded(tmp_path, capsys):
    workdir = tmp_path / "run"
    assert cli.main(["train", "--preset", "digits", "--num-examples", "500", "--steps", "3",
                     "--workdir", str(workdir), "--no-progress"]) == 0
    config = json.loads((workdir / "config.json").read_text())
    assert config["config"]["num_examples"] == 500
    assert config["data"]["num_examples"] == 500 and config["data"]["shape"] == [500, 64]
    # more digits than there are: exit status 2, a message saying how many, nothing written
    capsys.readouterr()
    assert cli.main(["train", "--preset", "digits", "--num-examples", "5000",
                     "--workdir", str(tmp_path / "more"), "--no-progress"]) == 2
    assert "--num-examples 1797 or fewer" in capsys.readouterr().err
    assert not (tmp_path / "more").exists()


def test_train_cli_overrides_and_minibatch_default(tmp_path, capsys):
    workdir = tmp_path / "run"
    code = cli.main(["train", "--preset", "digits", "--optimizer", "adam", "--steps", "4",
                     "--rho", "0.05", "--lr", "0.01", "--workdir", str(workdir), "--no-progress"])
    assert code == 0
    config = json.loads((workdir / "config.json").read_text())["config"]
    assert config["optimizer"] == "adam" and config["batch_size"] == 256
    assert config["rho"] == 0.05 and config["lr"] == 0.01


def test_train_cli_bad_inputs(tmp_path, capsys):
    assert cli.main(["train", "--rho", "2", "--workdir", str(tmp_path / "a")]) == 2
    assert "rho must lie strictly inside" in capsys.readouterr().err
    assert cli.main(["train", "--preset", "mnist", "--workdir", str(tmp_path / "b")]) == 2
    assert "needs --data DIR" in capsys.readouterr().err
    assert cli.main(["train", "--data", str(tmp_path / "nowhere"),
                     "--workdir", str(tmp_path / "c")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["train", "--resume", "--workdir", str(tmp_path / "d")]) == 2
    assert "cannot resume" in capsys.readouterr().err


def test_train_cli_divergence_exit_code(tmp_path, capsys):
    code = cli.main(["train", "--preset", "digits", "--optimizer", "sgd", "--lr", "1e30",
                     "--steps", "20", "--steps-per-call", "5", "--workdir", str(tmp_path / "run"),
                     "--no-progress"])
    assert code == 3
    assert "diverged" in capsys.readouterr().err


@pytest.mark.slow
def test_train_cli_resume_uses_the_saved_settings(tmp_path, capsys):
    workdir = str(tmp_path / "run")
    common = ["--steps-per-call", "5", "--checkpoint-every", "5", "--checkpoint-seconds", "0",
              "--no-progress"]
    assert cli.main(["train", "--preset", "digits", "--rho", "0.05", "--steps", "10",
                     "--workdir", workdir, *common]) == 0
    assert cli.main(["train", "--resume", "--steps", "15", "--workdir", workdir, *common]) == 0
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["config"]["rho"] == 0.05 and saved["config"]["dataset"] == "digits"
    assert saved["resumed_from"] == 10
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["steps"] == 15
    assert cli.main(["train", "--resume", "--rho", "0.2", "--workdir", workdir, *common]) == 2
    assert "rho: 0.05 -> 0.2" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["train", "--optimizer", "lbfgs", "--lr", "0.1"], "--lr does not apply to L-BFGS"),
    (["train", "--lr", "0.1"], "--lr does not apply to L-BFGS"),  # the default preset's L-BFGS
    (["sweep", "--rho", "0.1", "--beta", "1", "--lr", "0.1", "0.2"], "--lr does not apply"),
    (["sweep", "--rho", "0.1", "--beta", "1", "--log-every", "5"],
     "unrecognized arguments: --log-every 5"),
    (["sweep", "--rho", "0.1", "--beta", "1", "--coordinator", "127.0.0.1:1"],
     "several processes need all of --coordinator"),
])
def test_flags_that_cannot_apply_are_refused(tmp_path, capsys, argv, message):
    assert cli.main([*argv, "--workdir", str(tmp_path / "w"), "--no-progress"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


@pytest.mark.slow
def test_sweep_cli(tmp_path, capsys):
    from saejax import cli

    code = cli.main(["sweep", "--preset", "digits", "--rho", "0.05", "0.1", "--beta", "1", "3",
                     "--steps", "4", "--steps-per-call", "2", "--workdir", str(tmp_path),
                     "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "heatmaps" in out
    assert out.startswith("JAX ") and " on cpu: " in out.splitlines()[0]
    with open(tmp_path / "results.csv") as f:
        assert len(list(csv.DictReader(f))) == 4
    # the machine's choice of member evaluation, as compiled, is in config.json
    assert json.loads((tmp_path / "config.json").read_text())["config"]["member_eval"] == "blocked"
    assert cli.main(["sweep", "--rho", "0.1", "2", "--beta", "1",
                     "--workdir", str(tmp_path / "b")]) == 2
    assert "strictly inside" in capsys.readouterr().err
    assert cli.main(["sweep", "--rho", "0.1", "0.2", "--beta", "1", "--points",
                     "--workdir", str(tmp_path / "c")]) == 2
    assert "same length" in capsys.readouterr().err
