"""The reproduction scripts: reproduce_ufldl --fast writes its table from the rows that run on
embedded data, and an experiment script run twice writes two directories of its own."""

import json
import os
import subprocess
import sys

import pytest
from helpers import REPO as ROOT
from helpers import snapshot

pytestmark = pytest.mark.slow  # runs the experiment scripts in fresh processes

SCRIPT = [sys.executable, "-m", "experiments.reproduce.reproduce_ufldl"]


def test_the_fast_reproduction_passes_and_writes_its_table(tmp_path):
    done = subprocess.run([*SCRIPT, "--fast", "--workdir", str(tmp_path / "r")], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = json.loads((tmp_path / "r" / "table.json").read_text())
    assert [r["status"] for r in rows] == ["pass", "pass", "pass"]
    assert float(rows[0]["measured"]) < 1e-9  # UFLDL's gradient-check criterion
    j = float(rows[1]["measured"].removeprefix("J = "))
    assert abs(j - 0.379) <= 0.01  # the exercise on the embedded photographs
    assert (tmp_path / "r" / "ufldl_sparse_autoencoder" / "filters.png").exists()
    # PCA and whitening: 114 of 144 components keep 99% of the raw embedded patches' variance
    assert rows[2]["measured"].startswith("k = 114 of 144")
    for name in ("raw", "pca_99", "pca_90", "zca", "covariances"):
        assert (tmp_path / "r" / "pca_whitening" / f"{name}.png").exists(), name
    config = json.loads((tmp_path / "r" / "pca_whitening" / "config.json").read_text())
    assert config["results"]["wrong_zca_from_formula"] > 0.1  # the 1/(s+eps) mistake shows
    assert "| gradient check" in (tmp_path / "r" / "table.md").read_text()


def test_the_full_table_needs_its_data(tmp_path):
    done = subprocess.run([*SCRIPT, "--workdir", str(tmp_path / "r")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "needs --data" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "r").exists()


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


@pytest.mark.slow
def test_the_synthetic_benchmark_scores_each_member_as_its_saved_model_scores(tmp_path):
    import numpy as np

    import saejax
    from saejax import metrics
    from saejax.data import synthetic

    done = subprocess.run([sys.executable, "-m", "experiments.reproduce.synthetic_benchmark",
                           "--quick", "--workdir", str(tmp_path / "b"), "--out",
                           str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads((tmp_path / "out" / "synthetic_benchmark.json").read_text())
    table = (tmp_path / "out" / "synthetic_benchmark.md").read_text()
    for arch in ("sigmoid", "relu-l1", "topk", "batchtopk", "jumprelu"):
        assert f"| {arch} |" in table and len(result["members"][arch]) == 4
    truth = synthetic.load(tmp_path / "b" / "set")
    for member, row in enumerate(result["members"]["relu-l1"]):
        _, p = saejax.load(tmp_path / "b" / "relu-l1", member)
        pre = (np.asarray(truth.heldout_x, np.float64) - p["b2"]) @ p["W1"].T + p["b1"]
        want = metrics.recovery(p["W2"], truth.dictionary, np.maximum(pre, 0),
                                truth.heldout_codes)
        assert row["mcc"] == pytest.approx(want["mcc"], abs=1e-6)
        # float64 here, float32 there: a code within rounding of 0 may fire in one and not the
        # other, which moves F1 by about 1/400 (400 held-out examples)
        assert row["f1"] == pytest.approx(want["f1"], abs=0.01)
    # a second run into the same directory is refused untouched
    again = subprocess.run([sys.executable, "-m", "experiments.reproduce.synthetic_benchmark",
                            "--quick", "--workdir", str(tmp_path / "b")], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "not empty" in again.stderr


def script(name, *args, cwd, timeout=300):
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", f"experiments.reproduce.{name}", *map(str, args)],
                          cwd=cwd, env=dict(os.environ, PYTHONPATH=path), capture_output=True,
                          text=True, timeout=timeout)


def test_a_script_that_writes_its_own_records_takes_an_empty_directory_and_no_resume(tmp_path):
    (tmp_path / "empty").mkdir()
    done = script("pca_whitening", "--workdir", tmp_path / "empty", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "empty" / "config.json").read_text())["kind"] == "run"
    assert (tmp_path / "empty" / "covariances.png").is_file()
    before = snapshot(tmp_path / "empty")
    again = script("pca_whitening", "--workdir", tmp_path / "empty", cwd=tmp_path)
    assert again.returncode == 2 and "already holds a training run" in again.stderr
    assert "Choose another --workdir" in again.stderr  # a flag's name, and no --resume to suggest
    assert "resume" not in again.stderr
    refused = script("pca_whitening", "--resume", "--workdir", tmp_path / "empty", cwd=tmp_path)
    assert refused.returncode == 2 and "unrecognized arguments: --resume" in refused.stderr
    assert snapshot(tmp_path / "empty") == before


def test_the_stacked_script_checks_its_input_first_and_never_reruns_a_finished_run(
        tmp_path, shared_data):
    tiny = ["--data", shared_data / "mnist", "--hidden", "10", "--pretrain-examples", "300",
            "--pretrain-steps", "3", "--softmax-steps", "3", "--epochs", "1"]
    for bad, said in ((["--hidden", "0"], "hidden must be a positive integer"),
                      (["--finetune-lam", "-1"], "finetune_lam must be finite and >= 0")):
        done = script("stacked_autoencoder", *tiny, *bad, "--workdir", tmp_path / "r",
                      cwd=tmp_path)
        assert done.returncode == 2 and said in done.stderr
    missing = script("stacked_autoencoder", *tiny, "--data", tmp_path / "nowhere", "--workdir",
                     tmp_path / "r", cwd=tmp_path)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert not (tmp_path / "r").exists()  # nothing written: the same directory still starts
    assert script("stacked_autoencoder", *tiny, "--workdir", tmp_path / "r",
                  cwd=tmp_path).returncode == 0
    before = snapshot(tmp_path / "r")
    again = script("stacked_autoencoder", *tiny, "--resume", "--workdir", tmp_path / "r",
                   cwd=tmp_path)
    assert again.returncode == 2 and "holds a finished run (result.json)" in again.stderr
    assert snapshot(tmp_path / "r") == before


def test_the_stacked_scripts_settings_leave_out_the_bookkeeping_older_records_lack():
    from experiments.reproduce import stacked_autoencoder as script

    argv = ["--data", "d", "--hidden", "10", "--workdir", "w", "--resume"]
    now = script.own_settings(vars(script.build_parser().parse_args(argv)))
    older = {**now, "run_name": "stacked-autoencoder", "run_kind": "run"}  # before run_resumes
    assert script.own_settings(older) == now and not any(k.startswith("run_") for k in now)
    assert now["hidden"] == [10] and "workdir" not in now and "resume" not in now
