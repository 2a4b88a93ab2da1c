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
    # a language model's activations, 9 = 3 x 3 wide: residual directions are no pictures
    cache = tmp_path / "acts"
    cache.mkdir()
    (cache / "activations.json").write_text("{}")
    drawn.clear()
    figures.run_figures(tmp_path / "lm", square, summary, [],
                        config.replace(dataset="array", data=str(cache), decoder="linear"), [])
    assert [p.name for p in (tmp_path / "lm").iterdir()] == ["rho_hat.png"]


def fake_rows(grid, rng):
    """A finished sweep's rows for ``grid``, with made-up results (figures only read them)."""
    rows = []
    for i in range(len(grid)):
        rows.append({**grid.member(i), "reconstruction": rng.uniform(0.1, 1.0),
                     "rho_hat_mean": rng.uniform(0.01, 0.2), "dead_fraction": 0.0,
                     "mean_l0": rng.uniform(1.0, 16.0), "fvu": rng.uniform(0.1, 0.9),
                     "diverged": False})
    return rows


def drawn_files(tmp_path, monkeypatch, config, grid, rows, params):
    drawn = []
    for name in ("save_frontier", "save_heatmaps", "save_filter_grid"):
        monkeypatch.setattr(viz, name, recording(drawn, name, getattr(viz, name)))
    figures.sweep_figures(tmp_path, config, grid, rows, params)
    return sorted(p.name for p in tmp_path.iterdir()), drawn


def test_a_family_sweep_draws_its_frontier_and_no_heatmaps(tmp_path, monkeypatch):
    config = TrainConfig(arch="topk", n_hidden=16, k=4)
    grid = sweeps.make_grid(config, k=[2, 4, 8], seed=[0, 1])
    rows = fake_rows(grid, np.random.default_rng(0))
    params = {"W1": np.random.default_rng(1).normal(size=(len(grid), 16, 9))}  # 3 x 3 patches
    files, drawn = drawn_files(tmp_path, monkeypatch, config, grid, rows, params)
    assert files == ["filters_grid.png", "frontier.png"]
    kw = dict(drawn)
    assert kw["save_frontier"]["knob"] == ("k",)
    # one cell per k, its first member (seed 0): rows 0, 2, 4 of the product k x seed
    assert kw["save_filter_grid"]["axis_names"] == (None, "k")
    # the same sweep on a language model's activations, 9 wide: no pictures of its directions
    cache = tmp_path / "acts"
    cache.mkdir()
    (cache / "activations.json").write_text("{}")
    files, _ = drawn_files(tmp_path / "lm", monkeypatch, config.replace(data=str(cache)), grid,
                           rows, params)
    assert files == ["frontier.png"]


def test_a_family_sweep_on_wide_inputs_draws_only_its_frontier(tmp_path, monkeypatch):
    config = TrainConfig(arch="relu-l1", n_hidden=4, optimizer="adam")
    grid = sweeps.make_grid(config, l1=[0.1, 0.3])
    rows = fake_rows(grid, np.random.default_rng(0))
    files, _ = drawn_files(tmp_path, monkeypatch, config, grid, rows,
                           {"W1": np.zeros((2, 4, 10))})
    assert files == ["frontier.png"]


def test_a_sigmoid_sweep_draws_heatmaps_filters_and_its_frontier(tmp_path, monkeypatch):
    config = TrainConfig(n_hidden=4)
    grid = sweeps.make_grid(config, rho=[0.01, 0.1], beta=[1.0, 3.0])
    rows = fake_rows(grid, np.random.default_rng(0))
    params = {"W1": np.random.default_rng(1).normal(size=(len(grid), 4, 9))}
    files, drawn = drawn_files(tmp_path, monkeypatch, config, grid, rows, params)
    assert files == ["filters_grid.png", "frontier.png", "heatmaps.png"]
    assert dict(drawn)["save_frontier"]["knob"] == ("rho", "beta")
    cache = tmp_path / "acts"  # on a language model's activations: no filters_grid.png
    cache.mkdir()
    (cache / "activations.json").write_text("{}")
    files, _ = drawn_files(tmp_path / "lm", monkeypatch, config.replace(data=str(cache)), grid,
                           rows, params)
    assert files == ["frontier.png", "heatmaps.png"]


def test_a_running_sweep_redraws_heatmaps_or_its_frontier(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    sigmoid = TrainConfig(n_hidden=4)
    grid = sweeps.make_grid(sigmoid, rho=[0.01, 0.1], beta=[1.0, 3.0])
    figures.sweep_progress(tmp_path / "s", sigmoid, grid, fake_rows(grid, rng)[:2])
    assert [p.name for p in (tmp_path / "s").iterdir()] == ["heatmaps.png"]
    family = TrainConfig(arch="jumprelu", n_hidden=4)
    grid = sweeps.make_grid(family, l0=[0.01, 0.1, 1.0])
    drawn = []
    monkeypatch.setattr(viz, "save_frontier", recording(drawn, "save_frontier",
                                                        viz.save_frontier))
    figures.sweep_progress(tmp_path / "f", family, grid, fake_rows(grid, rng)[:2])
    assert [p.name for p in (tmp_path / "f").iterdir()] == ["frontier.png"]
    assert drawn[0][1]["title"].endswith("(2 of 3 members)")


def test_a_family_run_draws_firing_frequencies_and_names_its_knob(tmp_path, monkeypatch):
    drawn = []
    for name in ("save_filters", "save_curves", "save_rho_hat_histogram",
                 "save_firing_histogram"):
        monkeypatch.setattr(viz, name, recording(drawn, name, getattr(viz, name)))
    config = TrainConfig(arch="topk", n_hidden=4, k=2)
    summary = {"rho_hat": [0.0, 0.25, 0.5, 0.75]}  # one dead latent
    history = [{"step": s, "loss": 1.0 / (s + 1), "mean_l0": 2.0, "fvu": 0.5} for s in range(3)]
    params = {"W1": np.random.default_rng(0).normal(size=(4, 9))}
    figures.run_figures(tmp_path, params, summary, history, config, [])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "curves.png", "filters.png", "rho_hat.png"]
    names = [name for name, _ in drawn]
    assert "save_firing_histogram" in names and "save_rho_hat_histogram" not in names
    kw = dict(drawn)
    assert kw["save_filters"]["title"] == "W1 rows, topk, k=2"
    assert kw["save_firing_histogram"]["title"] == "topk, k=2"
    assert figures.knob_title(TrainConfig(rho=0.01, beta=3.0)) == "rho=0.01, beta=3"
    assert figures.knob_title(TrainConfig(arch="relu-l1", l1=0.3)) == "l1=0.3"


@pytest.mark.slow
def test_a_trained_family_sweep_writes_its_frontier(tmp_path):
    # n_hidden 16: config.program() puts k back at its default, 16, which must not exceed it
    config = cfg(arch="topk", n_hidden=16, k=2, lam=0.0, steps=4, steps_per_call=4)
    res = sweeps.sweep(config, data(), k=[1, 4], workdir=tmp_path, progress=False)
    assert {"frontier.png", "filters_grid.png"} <= {p.name for p in tmp_path.iterdir()}
    assert not (tmp_path / "heatmaps.png").exists()
    # topk keeps at most k latents per example (fewer where fewer pre-activations are positive)
    assert all(0 < r["mean_l0"] <= r["k"] for r in res.rows)
