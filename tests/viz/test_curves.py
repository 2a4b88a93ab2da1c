"""Training curves, the rho_hat histogram and the penalties' shapes: the series and bins against
hand-worked values, and the PNGs they draw."""

import jax.numpy as jnp
import numpy as np
import pytest
from helpers import read_png

from saejax import viz


def test_save_curves_full_history(tmp_path):
    history = [
        {"step": s, "loss": 1.0 / (s + 1), "reconstruction": 0.5 / (s + 1),
         "weight_decay": 0.01, "sparsity": 0.1, "lr": 1e-3, "optimizer": "lbfgs"}
        for s in range(50)
    ]
    read_png(viz.save_curves(history, tmp_path / "curves.png", title="run"), (400, 1000))


@pytest.mark.parametrize(
    "history",
    [
        [{"step": 0, "loss": 1.5}],
        [{"step": 3, "reconstruction": 0.2, "sparsity": 0.0}],  # a zero forces a linear axis
        [{"step": 0}],
        [],
        [{"loss": 1.0}, {"step": 1, "loss": float("nan")}, {"step": 2, "loss": 0.5}],
    ],
)
def test_save_curves_edge_cases(tmp_path, history):
    read_png(viz.save_curves(history, tmp_path / "curves.png"), (400, 1000))


def test_curve_series_keeps_only_usable_points():
    history = [
        {"step": 0, "loss": 2.0, "sparsity": "n/a", "note": "start"},
        {"loss": 1.9},  # no step
        {"step": 1, "loss": float("inf"), "reconstruction": jnp.float32(0.25)},
        {"step": 2, "loss": np.float64(1.0), "weight_decay": True},
    ]
    series = viz.curve_series(history)
    assert series == {"loss": ([0.0, 2.0], [2.0, 1.0]), "reconstruction": ([1.0], [0.25])}


def test_save_curves_rejects_a_dict():
    with pytest.raises(ValueError, match="list of dicts"):
        viz.save_curves({"step": 0, "loss": 1.0}, "unused.png")
    with pytest.raises(ValueError, match=r"history\[1\]"):
        viz.save_curves([{"step": 0}, 3.0], "unused.png")


def test_save_rho_hat_histogram(tmp_path):
    rho_hat = np.concatenate([np.random.default_rng(2).uniform(0.005, 0.05, 60), [0.0, 1e-4]])
    path = viz.save_rho_hat_histogram(rho_hat, 0.01, tmp_path / "rho_hat.png", title="rho_hat")
    read_png(path, (400, 600))
    read_png(viz.save_rho_hat_histogram([0.05], 0.05, tmp_path / "one.png"), (400, 600))


@pytest.mark.parametrize(
    "rho_hat, rho, match",
    [
        (np.zeros((2, 3)), 0.05, r"\(H,\)"),
        (np.array([]), 0.05, "non-empty"),
        (np.array([0.1, np.nan]), 0.05, "finite"),
        (np.array([0.1]), 1.0, r"\(0, 1\)"),
    ],
)
def test_save_rho_hat_histogram_bad_input_raises(rho_hat, rho, match):
    with pytest.raises(ValueError, match=match):
        viz.save_rho_hat_histogram(rho_hat, rho, "unused.png")


def test_save_penalties_writes_png(tmp_path):
    read_png(viz.save_penalties(0.05, tmp_path / "pen.png"), (340, 900))


def test_curve_scale_is_log_unless_a_value_is_negative():
    # the float32 exercise's sparsity term can be exactly 0 at its minimum: still a log axis
    assert viz.curve_scale({"loss": ([0, 1], [2.0, 1.0]), "sparsity": ([0, 1], [0.1, 0.0])}) == "log"
    assert viz.curve_scale({"loss": ([0], [1e-9])}) == "log"
    assert viz.curve_scale({"loss": ([0, 1], [1.0, -1e-8])}) == "linear"
    assert viz.curve_scale({"loss": ([0], [0.0])}) == "linear"  # nothing positive to draw
    assert viz.curve_scale({}) == "linear"


def test_a_zero_term_is_left_off_the_log_axis_and_named(tmp_path, monkeypatch):
    history = [{"step": i, "loss": 1.0 / (i + 1), "sparsity": 0.0 if i == 2 else 1e-3}
               for i in range(5)]
    from saejax.viz import curves

    seen, save = {}, curves.save_png

    def recording(fig, path):
        loss, terms = fig.axes[:2]
        seen["scales"] = loss.get_yscale(), terms.get_yscale()
        seen["loss"] = [line.get_label() for line in loss.get_lines()]
        seen["labels"] = [t.get_text() for t in terms.get_legend().get_texts()]
        seen["sparsity_steps"] = list(terms.get_lines()[0].get_xdata())
        return save(fig, path)

    monkeypatch.setattr(curves, "save_png", recording)
    read_png(viz.save_curves(history, tmp_path / "c.png"), (400, 1000))
    # J alone on a linear axis, where its decrease shows; the terms on a log axis
    assert seen["scales"] == ("linear", "log") and seen["loss"] == ["J"]
    assert seen["labels"] == ["sparsity (1 zero not drawn)"]
    assert seen["sparsity_steps"] == [0, 1, 3, 4]


def test_rho_hat_bins_span_the_values():
    # 25 units near rho = 0.01, all alive: linear bins from the smallest to the largest value
    rng = np.random.default_rng(0)
    rho_hat = 0.01 * (1 + 0.1 * rng.standard_normal(25))
    edges, scale = viz.rho_hat_bins(rho_hat)
    assert scale == "linear" and len(edges) == 11  # 2 sqrt(25) bins
    assert edges[0] == rho_hat.min() and edges[-1] == rho_hat.max()
    counts, _ = np.histogram(rho_hat, edges)
    assert counts.sum() == 25 and counts.max() < 25 and (counts > 0).sum() >= 4
    # units that died: logarithmic bins over decades; the units at 0 fall in the first bin
    spread = np.array([0.0, 1e-6, 1e-4, 0.01, 0.02, 0.05])
    edges, scale = viz.rho_hat_bins(spread)
    assert scale == "log" and len(edges) == 11
    np.testing.assert_allclose([edges[0], edges[-1]], [1e-6, 0.05])
    np.testing.assert_allclose(np.diff(np.log(edges)), np.log(0.05 / 1e-6) / 10)
    # equal values: one bin around them
    edges, scale = viz.rho_hat_bins(np.full(4, 0.2))
    assert scale == "linear" and edges[0] < 0.2 < edges[1] and len(edges) == 2


def test_save_firing_histogram_counts_the_dead_and_marks_the_mean(tmp_path, monkeypatch):
    from saejax.viz import curves

    seen, save = {}, curves.save_png

    def recording(fig, path):
        ax = fig.axes[0]
        seen["labels"] = [t.get_text() for t in ax.get_legend().get_texts()]
        seen["counts"] = sum(p.get_height() for p in ax.patches)
        return save(fig, path)

    monkeypatch.setattr(curves, "save_png", recording)
    rho_hat = np.array([0.0, 0.0, 0.1, 0.2, 0.3, 0.4])  # two latents never fire
    read_png(viz.save_firing_histogram(rho_hat, tmp_path / "f.png", title="topk"), (400, 600))
    assert seen["labels"] == ["mean = 0.167 (L0 / H, the dead included)",
                              "dead (never fire): 2/6 latents, not drawn"]
    assert seen["counts"] == 4  # the four that fire
    read_png(viz.save_firing_histogram(np.zeros(3), tmp_path / "none.png"), (400, 600))


@pytest.mark.parametrize("rho_hat, match", [
    (np.zeros((2, 2)), r"\(H,\)"), (np.array([0.5, 1.5]), r"\[0, 1\]"),
    (np.array([np.nan]), "finite")])
def test_save_firing_histogram_bad_input_raises(rho_hat, match):
    with pytest.raises(ValueError, match=match):
        viz.save_firing_histogram(rho_hat, "unused.png")


def test_save_curves_adds_a_panel_for_fvu_and_l0(tmp_path, monkeypatch):
    from saejax.viz import curves

    seen, save = {}, curves.save_png

    def recording(fig, path):
        seen["panels"] = [[line.get_label() for line in ax.get_lines()] for ax in fig.axes]
        return save(fig, path)

    monkeypatch.setattr(curves, "save_png", recording)
    history = [{"step": s, "loss": 1.0 / (s + 1), "mean_l0": 16.0 - s, "fvu": 0.5 / (s + 1),
                "rho_hat_mean": 0.1} for s in range(4)]
    read_png(viz.save_curves(history, tmp_path / "c.png"), (400, 1500))
    # J, its terms (none here), then FVU on the third panel's left axis and L0 on its twin
    assert seen["panels"] == [["J"], [], ["FVU"], ["L0"]]
    assert viz.curve_series(history, curves.ACTIVITY_KEYS)["mean_l0"] == (
        [0.0, 1.0, 2.0, 3.0], [16.0, 15.0, 14.0, 13.0])
