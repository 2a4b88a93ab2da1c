"""Heatmap grids against hand-worked arrays, and the PNGs draw those arrays: which heatmap cell gets
which colour, read back from the pixels."""

import math

import jax.numpy as jnp
import matplotlib
import matplotlib.image
import numpy as np
import pytest
from helpers import read_png
from scipy import spatial

from saejax import viz

VIRIDIS = matplotlib.colormaps["viridis"](np.linspace(0.0, 1.0, 256))[:, :3]


def heatmap_cells(pixels, shape):
    """Per panel of a save_heatmaps PNG, the viridis position (0..255) of each of shape's cells.

    A panel is a wide run of columns whose pixels are mostly viridis colours (the colour bars
    are narrow runs). Its cells split it evenly, which holds for grids spaced evenly in log
    space or with a 0 (equal slots). Each cell reads as the median colormap position of its
    viridis pixels, so the rho_hat / rho annotations do not change it; a cell with almost no
    viridis pixels (a NaN, left blank) reads as NaN.
    """
    distance, position = spatial.cKDTree(VIRIDIS).query(pixels[..., :3])
    on_map = distance < 0.03
    wide = on_map.mean(axis=0) > 0.3
    runs, start = [], None
    for j, flag in enumerate(np.append(wide, False)):
        if flag and start is None:
            start = j
        elif not flag and start is not None:
            if j - start > 50:
                runs.append((start, j))
            start = None
    panels = []
    for left, right in runs:
        rows = np.nonzero(on_map[:, left:right].mean(axis=1) > 0.3)[0]
        top, bottom = rows.min(), rows.max() + 1
        h, w = (bottom - top) / shape[0], (right - left) / shape[1]
        cells = np.full(shape, np.nan)
        for i in range(shape[0]):
            for j in range(shape[1]):
                r0, r1 = top + int((i + 0.2) * h), top + int((i + 0.8) * h)
                c0, c1 = left + int((j + 0.2) * w), left + int((j + 0.8) * w)
                inside = on_map[r0:r1, c0:c1]
                if inside.mean() > 0.5:
                    cells[i, j] = np.median(position[r0:r1, c0:c1][inside])
        panels.append(cells)
    return panels


def colormap_position(values):
    """Where save_heatmaps' viridis puts each value: (v - min) / (max - min) over the finite
    values, as a position 0..255 of the colormap."""
    values = np.asarray(values, dtype=np.float64)
    lo, hi = np.nanmin(values), np.nanmax(values)
    return np.clip((values - lo) / (hi - lo) * 256, 0, 255)


def test_cell_edges_are_geometric_midpoints():
    edges, log = viz.cell_edges(np.array([0.01, 0.1, 1.0]))
    assert log
    np.testing.assert_allclose(edges, 10.0 ** np.array([-2.5, -1.5, -0.5, 0.5]))
    edges, log = viz.cell_edges([1e-4, 1e-2])
    np.testing.assert_allclose(edges, [1e-5, 1e-3, 1e-1])
    edges, log = viz.cell_edges([3.0])
    np.testing.assert_allclose(edges, [3.0 / math.sqrt(10), 3.0 * math.sqrt(10)])
    # beta = 0 cannot sit on a log axis: equal slots instead.
    edges, log = viz.cell_edges([0.0, 0.5, 3.0])
    assert not log
    np.testing.assert_array_equal(edges, [-0.5, 0.5, 1.5, 2.5])
    for bad in ([], [0.1, 0.01], [[0.1]]):
        with pytest.raises(ValueError, match="increasing"):
            viz.cell_edges(bad)


def test_heatmap_arrays_grids_and_averages_the_rows():
    nan = float("nan")
    rows = [  # an unsorted grid: rho 0.1 listed before 0.01, beta 3 before 0.3
        {"rho": 0.1, "beta": 3.0, "seed": 0, "loss": 1.0, "dead": 0.5},
        {"rho": 0.1, "beta": 3.0, "seed": 1, "loss": 2.0, "dead": 0.25},
        {"rho": 0.1, "beta": 3.0, "seed": 2, "loss": nan, "dead": nan},  # diverged: left out
        {"rho": 0.01, "beta": 3.0, "seed": 0, "loss": 4.0, "dead": 0.0},
        {"rho": 0.1, "beta": 0.3, "seed": 0, "loss": 8.0, "dead": 1.0},
        {"rho": 0.01, "beta": 1.0, "seed": 0, "loss": nan, "dead": 0.75},  # only member is NaN
        # no member at (0.01, 0.3), nor at (0.1, 1.0)
    ]
    rho, beta, panels = viz.heatmap_arrays(rows, ["loss", "dead"])
    np.testing.assert_array_equal(rho, [0.01, 0.1])
    np.testing.assert_array_equal(beta, [0.3, 1.0, 3.0])
    assert list(panels) == ["loss", "dead"]
    np.testing.assert_array_equal(panels["loss"], [[nan, nan, 4.0], [8.0, nan, 1.5]])
    np.testing.assert_array_equal(panels["dead"], [[nan, 0.75, 0.0], [1.0, nan, 0.375]])


def test_heatmap_arrays_bad_rows_raise():
    with pytest.raises(ValueError, match="empty"):
        viz.heatmap_arrays([], ["loss"])
    with pytest.raises(ValueError, match=r"rows\[1\] has no 'loss'"):
        viz.heatmap_arrays([{"rho": 0.1, "beta": 1.0, "loss": 1.0}, {"rho": 0.1, "beta": 3.0}],
                           ["loss"])


def test_save_heatmaps_puts_each_value_in_its_cell(tmp_path):
    # An unsorted grid with beta = 0; rho spaced evenly in log, so every cell has the same size.
    rho, beta = [0.1, 0.001, 0.01], [0.0, 0.3, 3.0, 1.0]
    values = np.array([[5.0, 9.0, 2.0, 11.0], [0.0, 7.0, 10.0, 3.0], [6.0, 1.0, 8.0, 4.0]])
    values[2, 3] = np.nan  # rho = 0.01, beta = 1: a diverged cell
    panels = {"reconstruction": values, "rho_hat_mean": jnp.asarray(-values)}
    path = viz.save_heatmaps(rho, beta, panels, tmp_path / "sweep.png", title="sweep")
    pixels = read_png(path, (380 + 30, 2 * 430))
    # Drawn with rho increasing downwards (0.001, 0.01, 0.1 = rows 1, 2, 0 of the input) and
    # beta increasing to the right (0, 0.3, 1, 3 = columns 0, 1, 3, 2).
    drawn = values[[1, 2, 0]][:, [0, 1, 3, 2]]
    assert np.isnan(drawn[1, 2])
    reconstruction, rho_hat_mean = heatmap_cells(pixels, (3, 4))
    np.testing.assert_allclose(reconstruction, colormap_position(drawn), atol=3)
    # The rho_hat_mean panel draws rho_hat_mean / rho (here negated: the colormap runs the
    # other way), annotations and all.
    ratio = -drawn / np.array([0.001, 0.01, 0.1])[:, None]
    np.testing.assert_allclose(rho_hat_mean, colormap_position(ratio), atol=3)
    # A larger value gets the colour further along the colormap: the cells' order is the values'.
    finite = np.isfinite(drawn)
    np.testing.assert_array_equal(np.argsort(reconstruction[finite]), np.argsort(drawn[finite]))


def test_a_constant_panel_has_no_colour_bar(tmp_path, monkeypatch):
    from saejax.viz import heatmaps

    seen, save = {}, heatmaps.save_png

    def recording(fig, path):
        seen["visible"] = [ax.get_visible() for ax in fig.axes]
        seen["titles"] = [ax.get_title() for ax in fig.axes]
        return save(fig, path)

    monkeypatch.setattr(heatmaps, "save_png", recording)
    panels = {"dead_fraction": np.zeros((2, 2)), "reconstruction": [[1.0, 2.0], [3.0, 4.0]]}
    viz.save_heatmaps([0.01, 0.1], [1.0, 3.0], panels, tmp_path / "h.png")
    # axes: panel 1, its colour bar, panel 2, its colour bar
    assert seen["visible"] == [True, False, True, True]
    assert seen["titles"][0].endswith("every cell 0")


def test_save_heatmaps_single_cell_and_all_nan(tmp_path):
    panels = {"rho_hat_mean": [[0.02]], "reconstruction": [[np.nan]]}
    pixels = read_png(viz.save_heatmaps([0.01], [3.0], panels, tmp_path / "one.png"),
                      (380, 2 * 430))
    # The lone finite cell is drawn in one colour of the map; the all-NaN panel's cell is blank.
    (cells,) = heatmap_cells(pixels, (1, 1))
    assert 0 <= cells[0, 0] <= 255
    assert np.mean(pixels[150:250, 480:780, :3] > 0.95) > 0.9


@pytest.mark.parametrize(
    "rho, beta, panels, match",
    [
        ([0.01, 0.1], [1.0], {"loss": np.zeros((1, 2))}, "expected"),
        ([0.01, 0.1], [1.0], {}, "empty"),
        ([0.01, 0.01], [1.0], {"loss": np.zeros((2, 1))}, "repeated"),
        ([], [1.0], {"loss": np.zeros((0, 1))}, "non-empty"),
    ],
)
def test_save_heatmaps_bad_input_raises(rho, beta, panels, match):
    with pytest.raises(ValueError, match=match):
        viz.save_heatmaps(rho, beta, panels, "unused.png")


def test_heatmap_panels_say_what_they_show():
    rho = np.array([0.01, 0.1])
    rho_hat = np.array([[0.012, 0.011], [0.2, 0.1]])
    values, title, label = viz.heatmap_panel("rho_hat_mean", rho_hat, rho)
    # the colours, the colour bar and the printed numbers are all rho_hat_mean / rho
    np.testing.assert_allclose(values, [[1.2, 1.1], [2.0, 1.0]])
    assert label == "rho_hat_mean / rho" and title.startswith("rho_hat_mean / rho")
    values, title, label = viz.heatmap_panel("dead_fraction", np.zeros((2, 2)), rho)
    assert title == "dead_fraction: 0 in every cell" and label == "dead_fraction"
    values, title, _ = viz.heatmap_panel("reconstruction", np.array([[1.0, np.nan]] * 2), rho)
    assert title == "reconstruction: 1 in every cell"  # the finite cells agree
    _, title, _ = viz.heatmap_panel("reconstruction", np.array([[0.5, 0.25]] * 2), rho)
    assert title == "reconstruction"


def test_cell_spread_counts_the_members_a_cell_averages():
    rows = [{"rho": 0.1, "beta": 1.0, "reconstruction": 0.5, "seed": 0},
            {"rho": 0.1, "beta": 1.0, "reconstruction": 0.7, "seed": 1},
            {"rho": 0.01, "beta": 1.0, "reconstruction": float("nan"), "seed": 0},
            {"rho": 0.01, "beta": 1.0, "reconstruction": 0.2, "seed": 1},
            {"rho": 0.01, "beta": 3.0, "reconstruction": 0.3, "seed": 0}]
    count, spread = viz.cell_spread(rows, "reconstruction")
    # rows of rho (0.01, 0.1), columns of beta (1, 3)
    np.testing.assert_array_equal(count, [[2, 1], [2, 0]])
    np.testing.assert_allclose(spread, [[0.0, 0.0], [0.2, np.nan]])
    _, _, panels = viz.heatmap_arrays(rows, ["reconstruction"])
    np.testing.assert_allclose(panels["reconstruction"], [[0.2, 0.3], [0.6, np.nan]])
