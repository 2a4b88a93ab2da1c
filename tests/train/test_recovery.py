"""Recovery of a known dictionary in the records: a run's summary and a sweep's rows report
``metrics.recovery`` of the saved model against the synthetic set it trained on (the model
read back with saejax.load, its codes recomputed here), the command line finds the set behind
--data, and a normalization carries the true directions along."""

import csv
import json

import numpy as np
import pytest

import saejax
from saejax import cli, metrics, sweeps, train
from saejax.config import TrainConfig
from saejax.data import normalize, synthetic
from saejax.train.final import recovery_of

RECOVERY = ("mcc", "recovered_fraction", "f1")


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "set"
    synthetic.write(out, synthetic.SynthConfig(n_dims=8, n_features=12, num_examples=3000,
                                               num_heldout=500, mean_l0=2.0, seed=3))
    return out


def topk_config(**kw):
    base = dict(arch="topk", n_hidden=12, k=2, lam=0.0, steps=150, batch_size=256, lr=1e-2,
                checkpoint_seconds=0)
    return TrainConfig(**{**base, **kw})


def expected(workdir, truth, member=None):
    """The recovery of the model saejax.load reads, with its codes computed by NumPy."""
    config, params = saejax.load(workdir, member)
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    pre = (np.asarray(truth.heldout_x, np.float64) - p["b2"]) @ p["W1"].T + p["b1"]
    kth = np.sort(pre, axis=1)[:, -config.k][:, None]
    codes = np.where((pre >= kth) & (pre > 0), pre, 0.0)
    return metrics.recovery(p["W2"], truth.dictionary, codes, truth.heldout_codes)


@pytest.mark.slow  # a whole training; the fast tier keeps the normalization test
def test_a_run_on_a_synthetic_set_reports_its_recovery(synth_dir, tmp_path):
    truth = synthetic.load(synth_dir)
    run = train.run(topk_config(), np.asarray(truth.x), workdir=tmp_path / "run",
                    progress=False, truth=truth)
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    want = expected(tmp_path / "run", truth)
    for key in RECOVERY:
        assert saved[key] == pytest.approx(want[key], abs=1e-6)
        assert run.summary[key] == saved[key]
    assert 0 < saved["mcc"] <= 1 and 0 < saved["f1"] <= 1


@pytest.mark.slow
def test_the_command_line_finds_the_set_behind_data_in_runs_and_sweeps(synth_dir, tmp_path,
                                                                        capsys):
    truth = synthetic.load(synth_dir)
    flags = ["--arch", "topk", "--n-hidden", "12", "--lam", "0", "--steps", "150",
             "--batch-size", "256", "--lr", "0.01", "--no-progress"]
    assert cli.main(["train", "--data", str(synth_dir), "--k", "2", "--workdir",
                     str(tmp_path / "run"), *flags]) == 0
    assert "against the true dictionary: MCC" in capsys.readouterr().out
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    assert record["data"]["synthetic"] == str(synth_dir)
    want = expected(tmp_path / "run", truth)
    assert {k: summary[k] for k in RECOVERY} == pytest.approx(want, abs=1e-6)

    assert cli.main(["sweep", "--data", str(synth_dir / "x.npy"), "--k", "1", "3",
                     "--workdir", str(tmp_path / "sweep"), *flags]) == 0
    with open(tmp_path / "sweep" / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    for member, row in enumerate(rows):
        want = expected(tmp_path / "sweep", truth, member)
        assert {k: float(row[k]) for k in RECOVERY} == pytest.approx(want, abs=1e-6)


@pytest.mark.slow  # a sweep and a standalone run
def test_a_sweep_member_reports_what_its_standalone_run_reports(synth_dir, tmp_path):
    truth = synthetic.load(synth_dir)
    x = np.asarray(truth.x)
    result = sweeps.sweep(topk_config(), x, k=[1, 2], progress=False, truth=truth)
    alone = train.run(topk_config(k=2), x, progress=False, truth=truth)
    for key in RECOVERY:
        assert result.rows[1][key] == pytest.approx(alone.summary[key], abs=1e-5)


@pytest.mark.parametrize("kind", ["standardize", "ufldl"])
def test_a_normalization_carries_the_true_directions_into_its_space(synth_dir, kind):
    truth = synthetic.load(synth_dir)
    record = normalize.fit(kind, np.asarray(truth.x)[:1000])
    d = np.asarray(truth.dictionary, np.float64)
    # the directions as the normalized data sees them, worked out here: standardize divides each
    # input by its std; ufldl removes each example's mean (then scales all inputs alike)
    if kind == "standardize":
        seen = d / np.asarray(record["std"])
    else:
        seen = d - d.mean(axis=1, keepdims=True)
    params = {"W1": seen, "b1": np.zeros(12), "W2": seen.T.copy(), "b2": np.zeros(8)}
    got = recovery_of(params, topk_config(dtype="float64"), truth, record)
    assert got["mcc"] == pytest.approx(1.0)
    assert got["recovered_fraction"] == 1.0
    raw = recovery_of(params, topk_config(dtype="float64"), truth)  # the raw directions differ
    assert raw["mcc"] < 0.999
