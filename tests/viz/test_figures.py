"""viz.figures: the figure sets a run and a sweep draw into their directories."""

import numpy as np
import pytest
from helpers import sweep_config as cfg
from helpers import sweep_data as data

from saejax import sweeps, viz
from saejax.config import TrainConfig
from saejax.viz import figures


@pytest.mark.slow
def test_a_large_grids_filter_montage_shows_a_subset_and_says_so(tmp_path, monkeypatch):
    from saejax import viz

    drawn, save = {}, viz.save_filter_grid

    def recording(filters, rho_values, beta_values, path, channels=1, patch_shape=None,
                  title=None):
        drawn.update(filters=np.asarray(filters), rho=rho_values, beta=beta_values, title=title)
        return save(filters, rho_values, beta_values, path, channels, patch_shape, title)

    monkeypatch.setattr(viz, "save_filter_grid", recording)
    rho = [0.01 * (i + 1) for i in range(7)]
    res = sweeps.sweep(cfg(steps=2, steps_per_call=2), data(), rho=rho, beta=[1.0, 3.0],
                       chunk_size=14, workdir=tmp_path, progress=False)
    keep = [rho[i] for i in (0, 2, 3, 5, 6)]  # 5 of 7, evenly spaced, both ends kept
    np.testing.assert_allclose(drawn["rho"], keep)
    np.testing.assert_allclose(drawn["beta"], [1.0, 3.0])
    assert drawn["title"].startswith("5 of 7 rho values x 2 of 2 beta values")
    # each drawn cell holds its own member's W1
    for i, r in enumerate(keep):
        for j, b in enumerate([1.0, 3.0]):
            member = next(k for k, row in enumerate(res.rows) if (row["rho"], row["beta"]) == (r, b))
            np.testing.assert_array_equal(drawn["filters"][i, j], res.params["W1"][member])


def recording(drawn, name, real):
    """``real``, which also notes its name and keyword arguments in ``drawn``."""
    def record(*args, **kw):
        drawn.append((name, kw))
        return real(*args, **kw)
    return record


def test_a_run_draws_filters_only_when_its_inputs_are_square_patches(tmp_path, monkeypatch):
    drawn = []
    for name in ("save_filters", "save_curves", "save_rho_hat_histogram"):
        monkeypatch.setattr(viz, name, recording(drawn, name, getattr(viz, name)))
    summary = {"rho_hat": np.linspace(0.01, 0.2, 4)}
    history = [{"step": s, "loss": 1.0 / (s + 1)} for s in range(3)]
    config = TrainConfig(rho=0.05, beta=3.0)
    square = {"W1": np.random.default_rng(0).normal(size=(4, 9))}  # 3 x 3 patches
    figures.run_figures(tmp_path / "sq", square, summary, history, config, [2])
    assert sorted(p.name for p in (tmp_path / "sq").iterdir()) == [
        "curves.png", "filters.png", "rho_hat.png"]
    assert dict(drawn)["save_curves"]["resumed_at"] == [2]  # marks where a resume began
    drawn.clear()
    wide = {"W1": np.zeros((4, 10))}  # 10 inputs: no square patch to draw
    figures.run_figures(tmp_path / "wide", wide, summary, [], config, [])
    assert [p.name for p in (tmp_path / "wide").iterdir()] == ["rho_hat.png"]  # no history
    assert [name for name, _ in drawn] == ["save_rho_hat_histogram"]
    drawn.clear()
    colour = {"W1": np.random.default_rng(1).normal(size=(4, 48))}  # 4 x 4 x 3, ZCA domain
    figures.run_figures(tmp_path / "c", colour, summary, [],
                        config.replace(dataset="color-patches", decoder="linear"), [])
    assert drawn[0][0] == "save_filters" and drawn[0][1]["channels"] == 3
    assert (tmp_path / "c" / "filters.png").is_file()
