"""viz.frontier: the Pareto front against a hand-worked example, the labels of the points, and
the PNG it writes."""

import numpy as np
import pytest
from helpers import read_png

from saejax import viz
from saejax.viz import frontier


def test_pareto_front_of_a_hand_worked_example():
    #   i   L0   FVU
    #   0   4    0.50   front: nothing has L0 <= 4 with a lower FVU
    #   1   8    0.30   front
    #   2   8    0.40   dominated by 1 (same L0, higher FVU)
    #   3   16   0.30   dominated by 1 (higher L0, same FVU)
    #   4   16   0.10   front
    #   5   32   0.20   dominated by 4
    #   6   2    0.90   front: the lowest L0
    #   7   64   0.05   front: the lowest FVU
    l0 = [4, 8, 8, 16, 16, 32, 2, 64]
    fvu = [0.5, 0.3, 0.4, 0.3, 0.1, 0.2, 0.9, 0.05]
    front = viz.pareto_front(l0, fvu)
    assert front.tolist() == [6, 0, 1, 4, 7]  # in increasing L0, so decreasing FVU
    assert np.all(np.diff(np.asarray(fvu)[front]) < 0)


def test_pareto_front_keeps_ties_and_single_points():
    # an exact tie dominates neither of its points; a lone point is its own front
    assert viz.pareto_front([1.0, 1.0, 2.0], [0.5, 0.5, 0.6]).tolist() == [0, 1]
    assert viz.pareto_front([3.0], [0.2]).tolist() == [0]
    # one L0 for every member (the sigmoid network's L0 is H): the lowest FVU alone
    assert viz.pareto_front([25, 25, 25], [0.3, 0.1, 0.2]).tolist() == [1]


@pytest.mark.parametrize("l0, fvu, match", [
    ([1.0, np.nan], [0.1, 0.2], "finite"),
    ([1.0, 2.0], [0.1], "one length"),
    ([[1.0]], [[0.1]], "1-D"),
])
def test_pareto_front_bad_input_raises(l0, fvu, match):
    with pytest.raises(ValueError, match=match):
        viz.pareto_front(l0, fvu)


def test_member_label_names_the_knob():
    assert viz.member_label({"k": 8, "l1": 0.3}, "k") == "k=8"
    assert viz.member_label({"l1": 0.3}, ("l1",)) == "l1=0.3"
    assert viz.member_label({"rho": 0.01, "beta": 3.0}, ("rho", "beta")) == "rho=0.01, beta=3"
    assert viz.member_label({"l0": 1.23456e-3}, "l0") == "l0=0.00123"

    class Config:
        k = 16
    assert viz.member_label(Config(), ("k",)) == "k=16"  # a config's attributes too


def rows_of(ks, l0, fvu, diverged=None, seed=None):
    diverged = diverged or [False] * len(ks)
    seed = seed or [0] * len(ks)
    return [{"k": k, "mean_l0": a, "fvu": b, "diverged": d, "seed": s}
            for k, a, b, d, s in zip(ks, l0, fvu, diverged, seed, strict=True)]


def drawn_axes(monkeypatch):
    """Records what the figure holds just before it is written."""
    seen, save = {}, frontier.save_png

    def recording(fig, path):
        ax = fig.axes[0]
        seen["texts"] = [t.get_text() for t in ax.texts]
        seen["title"] = ax.get_title()
        seen["xscale"], seen["yscale"] = ax.get_xscale(), ax.get_yscale()
        seen["xlabel"] = ax.get_xlabel()
        line = ax.get_lines()[0] if ax.get_lines() else None
        seen["step"] = None if line is None else (list(line.get_xdata()), list(line.get_ydata()))
        seen["legend"] = ([t.get_text() for t in ax.get_legend().get_texts()]
                          if ax.get_legend() else [])
        return save(fig, path)

    monkeypatch.setattr(frontier, "save_png", recording)
    return seen


def test_save_frontier_labels_every_point_and_steps_through_the_front(tmp_path, monkeypatch):
    seen = drawn_axes(monkeypatch)
    # two seeds at k = 8: each its own point, each labelled; one member diverged
    rows = rows_of([4, 8, 8, 16, 32], [4.0, 8.0, 8.0, 16.0, 32.0],
                   [0.5, 0.35, 0.3, float("nan"), 0.32], diverged=[False] * 3 + [True, False],
                   seed=[0, 0, 1, 0, 0])
    path = viz.save_frontier(rows, tmp_path / "frontier.png", knob=("k",), title="topk")
    read_png(path, (450, 600))
    assert sorted(seen["texts"]) == ["k=32", "k=4", "k=8", "k=8"]  # the diverged one is out
    assert seen["title"] == "topk\n1 member that diverged left out"
    assert seen["xlabel"] == "L0: mean active latents per example"
    # the front: (4, 0.5) and (8, 0.3); (8, 0.35) and (32, 0.32) are dominated by (8, 0.3)
    assert seen["step"] == ([4.0, 8.0], [0.5, 0.3])
    assert seen["legend"] == ["dominated (2)", "Pareto front (2 of 4)"]
    assert seen["xscale"] == "linear"  # 4 to 32 spans a factor of 8


def test_save_frontier_uses_a_log_axis_over_a_wide_l0_span(tmp_path, monkeypatch):
    seen = drawn_axes(monkeypatch)
    rows = rows_of([2, 16, 128], [2.0, 16.0, 128.0], [0.6, 0.4, 0.3])
    read_png(viz.save_frontier(rows, tmp_path / "f.png", knob="k"), (450, 600))
    assert seen["xscale"] == "log" and seen["yscale"] == "linear"
    assert seen["title"] == ""


def test_save_frontier_labels_only_the_front_of_many_points(tmp_path, monkeypatch):
    seen = drawn_axes(monkeypatch)
    n = viz.MAX_LABELLED + 5
    l0 = np.linspace(1.0, 5.0, n)
    rows = rows_of(list(range(1, n + 1)), l0.tolist(), (1.0 / l0 + 0.01).tolist())
    rows += rows_of([99], [5.0], [0.9])  # dominated: no label
    viz.save_frontier(rows, tmp_path / "f.png", knob="k")
    assert len(seen["texts"]) == n and "k=99" not in seen["texts"]
    assert "labels on the front only" in seen["title"]


def test_save_frontier_with_nothing_to_draw_says_so(tmp_path, monkeypatch):
    seen = drawn_axes(monkeypatch)
    rows = rows_of([4], [float("nan")], [float("nan")], diverged=[True])
    read_png(viz.save_frontier(rows, tmp_path / "f.png", knob="k"), (450, 600))
    assert seen["texts"] == ["no member to plot"]


def test_save_frontier_bad_rows_raise():
    with pytest.raises(ValueError, match="list of dicts"):
        viz.save_frontier({"mean_l0": 1.0, "fvu": 0.1}, "unused.png", knob="k")
    with pytest.raises(ValueError, match=r"rows\[0\] has no 'fvu'"):
        viz.save_frontier([{"mean_l0": 1.0, "k": 4}], "unused.png", knob="k")
