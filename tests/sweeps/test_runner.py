"""sweep(): a member equals a standalone run, chunking, divergence, and the files of a sweep
directory."""

import csv
import json

import numpy as np
import pytest
from helpers import sweep_config as cfg
from helpers import sweep_data as data

from saejax import sweeps, train


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["adam", "sgd", "lbfgs"])
def test_member_equals_standalone_run(optimizer):
    kw = {"optimizer": optimizer}
    if optimizer == "lbfgs":
        kw.update(batch_size=None, steps=10, steps_per_call=5)
    c = cfg(**kw)
    x = data()
    res = sweeps.sweep(c, x, rho=[0.05, 0.2], beta=[0.5, 3.0], lr=[0.02, 0.05], seed=[0, 1],
                      chunk_size=16, progress=False)
    assert len(res.rows) == 16
    for i in (0, 7, 13):
        row = res.rows[i]
        alone = train.run(c.replace(rho=row["rho"], beta=row["beta"], lr=row["lr"],
                                    seed=row["seed"]), x, progress=False)
        for k, v in alone.state.params.items():
            np.testing.assert_allclose(res.params[k][i], v, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(row["final_loss"], alone.summary["final_loss"], rtol=1e-10)
        np.testing.assert_allclose(row["dead_fraction"], alone.summary["dead_fraction"])


@pytest.mark.slow
def test_chunked_equals_unchunked():
    x = data()
    a = sweeps.sweep(cfg(), x, rho=[0.05, 0.1, 0.2], beta=[1.0, 3.0], chunk_size=6,
                    progress=False)
    b = sweeps.sweep(cfg(), x, rho=[0.05, 0.1, 0.2], beta=[1.0, 3.0], chunk_size=4,
                    progress=False)  # 4 + 2 members, the second block padded
    for k in a.params:
        np.testing.assert_allclose(a.params[k], b.params[k], rtol=1e-12, atol=1e-14)
    assert [r["final_loss"] for r in a.rows] == pytest.approx([r["final_loss"] for r in b.rows],
                                                               rel=1e-12)


@pytest.mark.slow
def test_diverged_member_is_isolated():
    x = data()
    c = cfg(optimizer="sgd", dtype="float32")
    res = sweeps.sweep(c, x, rho=[0.1], beta=[3.0], lr=[0.1, 1e30, 0.2], chunk_size=3,
                      progress=False)
    assert [r["diverged"] for r in res.rows] == [False, True, False]
    assert np.isnan(res.rows[1]["final_loss"])
    for i in (0, 2):
        alone = train.run(c.replace(lr=res.rows[i]["lr"]), x, progress=False)
        np.testing.assert_allclose(res.rows[i]["final_loss"], alone.summary["final_loss"],
                                   rtol=1e-6)


def test_run_directory(tmp_path, monkeypatch):
    from saejax import viz

    drawn, save_heatmaps = {}, viz.save_heatmaps

    def recording(rho_values, beta_values, panels, path, title=None):
        drawn.update(rho=rho_values, beta=beta_values, panels=panels, path=path)
        return save_heatmaps(rho_values, beta_values, panels, path, title)

    monkeypatch.setattr(viz, "save_heatmaps", recording)
    x = data()
    res = sweeps.sweep(cfg(), x, rho=[0.2, 0.05], beta=[3.0, 0.3, 1.0], chunk_size=4,
                      workdir=tmp_path, progress=False)
    with open(tmp_path / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(float(r["rho"]), float(r["beta"])) for r in rows] == [
        (r, b) for r in (0.2, 0.05) for b in (3.0, 0.3, 1.0)
    ]
    for key in ("rho", "beta", "lam", "lr", "seed", "final_loss", "reconstruction",
                "weight_decay", "sparsity", "rho_hat_mean", "rho_hat_max", "dead_fraction",
                "diverged"):
        assert key in rows[0]
    assert json.loads((tmp_path / "results.json").read_text())[4]["beta"] == 0.3
    for name in ("heatmaps.png", "filters_grid.png", "config.json"):
        assert (tmp_path / name).is_file(), name
    # The heatmaps show each member's own numbers in its (rho, beta) cell, axes sorted.
    assert drawn["path"] == tmp_path / "heatmaps.png"
    np.testing.assert_array_equal(drawn["rho"], [0.05, 0.2])
    np.testing.assert_array_equal(drawn["beta"], [0.3, 1.0, 3.0])
    assert list(drawn["panels"]) == ["reconstruction", "rho_hat_mean", "dead_fraction"]
    for row in res.rows:
        i, j = [0.05, 0.2].index(row["rho"]), [0.3, 1.0, 3.0].index(row["beta"])
        for key, panel in drawn["panels"].items():
            assert panel[i, j] == row[key], (key, row)
    member = sweeps.load_member(tmp_path, 4)
    for k, v in member.items():
        np.testing.assert_array_equal(v, res.params[k][4])
