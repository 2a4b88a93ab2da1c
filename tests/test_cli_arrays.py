"""The command line on a user's array: train and sweep on --data FILE.npy / .npz[:NAME], the run
records the file (path, sha256, rows) and its normalization, encode finds the file again or takes
another, export keeps the normalization, and bad files exit 2 naming what to do."""

import csv
import hashlib
import json

import numpy as np
import pytest
from safetensors.numpy import load_file

from saejax import cli

# adam compiles faster than L-BFGS; the batch fits the smallest file here
TINY = ["--n-hidden", "4", "--steps", "3", "--steps-per-call", "3", "--optimizer", "adam",
        "--batch-size", "20", "--no-progress"]


def sigmoid_codes(weights, x):
    """a2 = sigmoid(W1 x + b1) per row, in float64 NumPy."""
    z = x @ weights["W1"].astype(np.float64).T + weights["b1"]
    return 1.0 / (1.0 + np.exp(-z))


@pytest.fixture(scope="module")
def array_run(tmp_path_factory):
    """A linear-decoder run on 10,001 rows of real values: more than the config's default
    10,000 examples, so a silent subsample would show."""
    root = tmp_path_factory.mktemp("arrays")
    x = np.random.default_rng(0).normal(size=(10_001, 5)).astype(np.float32)
    np.save(root / "x.npy", x)
    assert cli.main(["train", "--data", str(root / "x.npy"), "--decoder", "linear", *TINY,
                     "--workdir", str(root / "run")]) == 0
    return root, x


def test_train_records_the_array_file_and_takes_all_its_rows(array_run):
    root, x = array_run
    record = json.loads((root / "run" / "config.json").read_text())
    assert record["config"]["dataset"] == "array"
    assert record["config"]["num_examples"] == 10_001  # all rows, not the default 10,000
    data = record["data"]
    assert data["dataset"] == "array" and data["path"] == str((root / "x.npy").resolve())
    assert data["sha256"] == hashlib.sha256((root / "x.npy").read_bytes()).hexdigest()
    assert (data["rows_in_file"], data["num_examples"], data["sampled"]) == (10_001, 10_001,
                                                                             False)
    assert data["shape"] == [10_001, 5] and data["normalization"] == {"kind": "none"}


def test_encode_finds_the_file_again_and_export_gives_the_same_codes(array_run, tmp_path,
                                                                     capsys):
    root, x = array_run
    capsys.readouterr()
    assert cli.main(["encode", "--model", str(root / "run"), "--out", str(tmp_path / "a.npy")]) == 0
    out = capsys.readouterr().out
    assert f"trained on the array at {(root / 'x.npy').resolve()}; it is unchanged" in out
    assert cli.main(["export", str(root / "run"), str(tmp_path / "model")]) == 0
    cfg = json.loads((tmp_path / "model" / "cfg.json").read_text())
    assert cfg["normalization"] == {"kind": "none"} and cfg["data"]["dataset"] == "array"
    weights = load_file(str(tmp_path / "model" / "weights.safetensors"))
    codes = np.load(tmp_path / "a.npy")
    assert codes.shape == (10_001, 4)
    np.testing.assert_allclose(codes, sigmoid_codes(weights, x), atol=1e-6)
    assert cli.main(["encode", "--model", str(tmp_path / "model"), "--data", str(root / "x.npy"),
                     "--out", str(tmp_path / "b.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "b.npy"), codes)


def test_encode_refuses_a_changed_or_missing_file(array_run, tmp_path, capsys):
    root, x = array_run
    assert cli.main(["export", str(root / "run"), str(tmp_path / "model")]) == 0
    # an export away from its training file: the file moved on
    moved = tmp_path / "copy"
    cfg = json.loads((tmp_path / "model" / "cfg.json").read_text())
    cfg["data"]["path"] = str(tmp_path / "x.npy")
    moved.mkdir()
    (moved / "cfg.json").write_text(json.dumps(cfg))
    (moved / "weights.safetensors").write_bytes((tmp_path / "model" /
                                                 "weights.safetensors").read_bytes())
    capsys.readouterr()
    assert cli.main(["encode", "--model", str(moved), "--out", str(tmp_path / "a.npy")]) == 2
    assert "which no longer exists: pass --data FILE.npy" in capsys.readouterr().err
    np.save(tmp_path / "x.npy", x[:10])  # the same path, other bytes
    assert cli.main(["encode", "--model", str(moved), "--out", str(tmp_path / "a.npy")]) == 2
    assert "but the file has changed since" in capsys.readouterr().err
    assert not (tmp_path / "a.npy").exists()


def test_a_width_mismatch_names_both_widths(array_run, tmp_path, capsys):
    root, _ = array_run
    np.save(tmp_path / "wide.npy", np.zeros((3, 7), np.float32))
    capsys.readouterr()
    assert cli.main(["encode", "--model", str(root / "run"), "--data", str(tmp_path / "wide.npy"),
                     "--out", str(tmp_path / "a.npy")]) == 2
    err = capsys.readouterr().err
    assert "the model takes 5 inputs" in err and "gives 7 per example" in err


def test_the_ufldl_normalization_is_fitted_once_and_applied_at_encode(tmp_path, capsys):
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 2.0, (60, 6))  # float64, far outside [0, 1]
    np.savez(tmp_path / "data.npz", train=x, labels=np.arange(60.0)[:, None])
    spec = f"{tmp_path / 'data.npz'}:train"
    # the sigmoid decoder refuses it raw, and says how to go on
    assert cli.main(["train", "--data", spec, *TINY, "--workdir", str(tmp_path / "raw")]) == 2
    err = capsys.readouterr().err
    assert "--decoder linear" in err and "--normalize ufldl" in err
    assert not (tmp_path / "raw").exists()
    assert cli.main(["train", "--data", spec, "--normalize", "ufldl", "--num-examples", "40",
                     *TINY, "--workdir", str(tmp_path / "run")]) == 0
    data = json.loads((tmp_path / "run" / "config.json").read_text())["data"]
    assert data["npz_name"] == "train" and data["sampled"] and data["num_examples"] == 40
    rows = np.sort(np.random.default_rng(0).choice(60, 40, replace=False))  # the seed, 0
    d = x[rows] - x[rows].mean(axis=1, keepdims=True)
    assert data["normalization"]["kind"] == "ufldl"
    assert data["normalization"]["std"] == pytest.approx(d.std(ddof=1), rel=1e-12)

    # new data, encoded with the training data's std (never refitted)
    new = rng.normal(0.0, 5.0, (9, 6))
    np.save(tmp_path / "new.npy", new)
    assert cli.main(["export", str(tmp_path / "run"), str(tmp_path / "model")]) == 0
    assert cli.main(["encode", "--model", str(tmp_path / "model"), "--data",
                     str(tmp_path / "new.npy"), "--out", str(tmp_path / "a.npy")]) == 0
    s = 3 * d.std(ddof=1)
    e = new - new.mean(axis=1, keepdims=True)
    normalized = (np.clip(e, -s, s) / s + 1) * 0.4 + 0.1
    weights = load_file(str(tmp_path / "model" / "weights.safetensors"))
    np.testing.assert_allclose(np.load(tmp_path / "a.npy"), sigmoid_codes(weights, normalized),
                               atol=1e-6)


def test_bad_array_files_exit_2_naming_what_to_do(tmp_path, capsys):
    np.savez(tmp_path / "two.npz", a=np.zeros((3, 2)), b=np.ones((3, 2)))
    assert cli.main(["train", "--data", str(tmp_path / "two.npz"), "--decoder", "linear", *TINY,
                     "--workdir", str(tmp_path / "w")]) == 2
    assert "holds 2 arrays (a, b); pick one as --data" in capsys.readouterr().err
    assert cli.main(["train", "--data", str(tmp_path / "gone.npy"), *TINY,
                     "--workdir", str(tmp_path / "w")]) == 2
    assert "gone.npy does not exist" in capsys.readouterr().err
    assert cli.main(["sweep", "--data", str(tmp_path / "gone.npz"), "--rho", "0.1", "--beta", "1",
                     *TINY, "--workdir", str(tmp_path / "w")]) == 2
    assert "gone.npz does not exist" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


@pytest.mark.slow
def test_sweep_on_an_array(tmp_path, capsys):
    x = np.random.default_rng(2).uniform(0.1, 0.9, (30, 5)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    assert cli.main(["sweep", "--data", str(tmp_path / "x.npy"), "--rho", "0.05", "0.1",
                     "--beta", "1", *TINY, "--steps-per-call", "3",
                     "--workdir", str(tmp_path / "s")]) == 0
    record = json.loads((tmp_path / "s" / "config.json").read_text())
    assert record["config"]["dataset"] == "array" and record["config"]["num_examples"] == 30
    assert record["data"]["sha256"] == hashlib.sha256((tmp_path / "x.npy").read_bytes()
                                                      ).hexdigest()
    with open(tmp_path / "s" / "results.csv") as f:
        assert len(list(csv.DictReader(f))) == 2
    assert cli.main(["encode", "--model", str(tmp_path / "s"), "--member", "1",
                     "--out", str(tmp_path / "a.npy")]) == 0
    assert np.load(tmp_path / "a.npy").shape == (30, 4)


def test_resuming_on_a_file_changed_since_is_refused_and_changes_nothing(tmp_path, capsys):
    x = np.random.default_rng(1).normal(size=(40, 5)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    argv = ["train", "--data", str(tmp_path / "x.npy"), "--decoder", "linear", *TINY,
            "--checkpoint-seconds", "0", "--workdir", str(tmp_path / "run")]
    assert cli.main(argv) == 0
    record = (tmp_path / "run" / "config.json").read_text()
    # the hash of the rows as trained on, float32 as loaded (no normalization)
    assert json.loads(record)["data_fingerprint"] == hashlib.sha256(x.tobytes()).hexdigest()[:16]
    changed = x.copy()
    changed[0, 0] += 1.0
    np.save(tmp_path / "x.npy", changed)
    capsys.readouterr()
    assert cli.main([*argv, "--steps", "6", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "the training data differ from the data it was trained on" in err
    assert "Resume it on the same data, or start a new run" in err
    assert (tmp_path / "run" / "config.json").read_text() == record  # nothing rewritten
    np.save(tmp_path / "x.npy", x)  # the same bytes again: the resume goes on
    assert cli.main([*argv, "--steps", "6", "--resume"]) == 0


def test_auto_batch_on_fewer_rows_takes_them_all_and_a_given_one_is_refused(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.random.default_rng(2).normal(size=(40, 5)).astype(np.float32))
    base = ["train", "--data", str(tmp_path / "x.npy"), "--arch", "topk", "--n-hidden", "4",
            "--steps", "2", "--steps-per-call", "2", "--no-progress"]
    common = [*base, "--k", "2"]
    assert cli.main([*common, "--workdir", str(tmp_path / "auto")]) == 0
    out = capsys.readouterr().out
    assert "batch size 40: auto's 256 exceeds the 40 examples" in out
    assert out.startswith("JAX ")  # what JAX runs on comes first, before any note
    saved = json.loads((tmp_path / "auto" / "config.json").read_text())
    assert saved["config"]["batch_size"] == 40
    # the same command resumed (--arch given again, --batch-size auto too) finds the same size
    resume = [*common, "--resume", "--workdir", str(tmp_path / "auto")]
    assert cli.main([*resume, "--steps", "4"]) == 0
    assert cli.main([*resume, "--steps", "6", "--batch-size", "auto"]) == 0
    saved = json.loads((tmp_path / "auto" / "config.json").read_text())
    assert saved["config"]["batch_size"] == 40 and len(saved["segments"]) == 3
    capsys.readouterr()
    assert cli.main([*common, "--batch-size", "64", "--workdir", str(tmp_path / "given")]) == 2
    captured = capsys.readouterr()  # refused before the line that says training began
    assert "batch_size 64 exceeds the 40 training examples" in captured.err
    assert "training" not in captured.out
    # a k beyond the latents is refused before the line that says training began
    assert cli.main([*base, "--k", "9", "--workdir", str(tmp_path / "k")]) == 2
    captured = capsys.readouterr()
    assert "k = 9 exceeds the 4 latents" in captured.err and "training" not in captured.out
    assert not (tmp_path / "given").exists() and not (tmp_path / "k").exists()


def test_a_run_on_an_array_is_named_after_its_file_not_a_preset(tmp_path, monkeypatch):
    from saejax.data.datasets import data_name

    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "acts.npy", np.random.default_rng(3).normal(size=(30, 5)))
    assert cli.main(["train", "--data", "acts.npy", "--decoder", "linear", *TINY]) == 0
    (made,) = (tmp_path / "runs").iterdir()
    assert made.name.startswith("acts-") and (made / "summary.json").exists()
    assert data_name("acts.npz:x") == "acts" and data_name(str(tmp_path)) is None
    assert data_name(None) is None and data_name("../shared/data/mnist") is None
    cache = tmp_path / "acts.v2"  # a directory's whole name, dots and all
    cache.mkdir()
    (cache / "activations.json").write_text("{}")
    assert data_name(str(cache)) == "acts.v2"


@pytest.mark.parametrize("command", [["train"], ["sweep", "--rho", "0.1", "--beta", "3"]])
def test_data_the_sigmoid_decoder_cannot_reach_is_refused_before_training_is_announced(
        tmp_path, capsys, command):
    np.save(tmp_path / "x.npy", np.linspace(-0.5, 2.0, 40 * 5).reshape(40, 5).astype(np.float32))
    argv = [*command, "--data", str(tmp_path / "x.npy"), "--n-hidden", "3", "--steps", "2",
            "--no-progress", "--workdir", str(tmp_path / "out")]
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert "training data range from -0.5 to 2. Use a linear decoder (--decoder linear" in (
        captured.err)
    assert "training" not in captured.out and "sweeping" not in captured.out
    assert not (tmp_path / "out").exists()
