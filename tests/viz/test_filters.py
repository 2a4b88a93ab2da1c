"""Filter tilings and heatmap grids against hand-worked arrays, and the PNGs draw those arrays.

A picture test reads the PNG back and checks the pixels that carry meaning: which tile sits at
which grid position, which heatmap cell gets which colour.
"""

import math
import subprocess
import sys

import jax.numpy as jnp
import matplotlib
import matplotlib.image
import numpy as np
import pytest
from scipy import spatial

from saejax import viz

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
B = -1.0  # grayscale background


def read_png(path, expected_hw):
    """Checks the file is a PNG of about ``expected_hw`` pixels and small; returns its pixels."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) < 150_000
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[2] in (3, 4)
    h, w = expected_hw
    assert abs(pixels.shape[0] - h) <= 2 and abs(pixels.shape[1] - w) <= 2, pixels.shape
    return pixels


def grey_cells(pixels, shape):
    """The grey level at the centre of each pixel of a (rows, cols) image drawn by save_filters.

    The drawn image is the box of non-white pixels (its border is background, black); each of
    its pixels is a block of the PNG, sampled over its central half.
    """
    grey = pixels[..., :3].mean(axis=-1)
    rows, cols = np.nonzero(grey < 0.9)
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    h, w = (bottom - top) / shape[0], (right - left) / shape[1]
    out = np.empty(shape)
    for i in range(shape[0]):
        for j in range(shape[1]):
            r0, c0 = top + int((i + 0.25) * h), left + int((j + 0.25) * w)
            out[i, j] = grey[r0 : r0 + max(1, int(h / 2)), c0 : c0 + max(1, int(w / 2))].mean()
    return out


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


# --- tile_filters ---------------------------------------------------------------------------


def test_tile_filters_hand_worked():
    # mean(W) = 20 / 8 = 2.5, so the centred filters are [-2.5, -0.5, 1.5, 3.5] (max 3.5) and
    # [-1.5, -1.5, -1.5, 2.5] (max 2.5). A per-filter mean would give different values.
    W = np.array([[0.0, 2.0, 4.0, 6.0], [1.0, 1.0, 1.0, 5.0]])
    expected = np.array([
        [B, B, B, B, B, B, B],
        [B, -5 / 7, -1 / 7, B, -0.6, -0.6, B],
        [B, 3 / 7, 1.0, B, -0.6, 1.0, B],
        [B, B, B, B, B, B, B],
    ])
    np.testing.assert_allclose(viz.tile_filters(W), expected, rtol=0, atol=1e-15)
    # jax arrays are accepted as they are.
    np.testing.assert_allclose(viz.tile_filters(jnp.asarray(W)), expected, rtol=0, atol=1e-7)


def test_tile_filters_without_normalize_divides_by_global_max():
    W = np.array([[0.0, 2.0, 4.0, 6.0], [1.0, 1.0, 1.0, 5.0]])
    image = viz.tile_filters(W, normalize=False)
    np.testing.assert_allclose(image[1:3, 4:6], np.array([[-1.5, -1.5], [-1.5, 2.5]]) / 3.5)
    np.testing.assert_allclose(image[1:3, 1:3], np.array([[-2.5, -0.5], [1.5, 3.5]]) / 3.5)


def one_bright_pixel_per_filter():
    """Four 3x3 filters; filter k is 1 at pixel BRIGHT[k] (row-major) and 0 elsewhere."""
    W = np.zeros((4, 9))
    W[np.arange(4), BRIGHT] = 1.0
    # mean(W) = 1/9: a filter centres to 8/9 at its bright pixel and -1/9 elsewhere, and its
    # maximum 8/9 scales those to 1 and -1/8.
    expected = np.full((9, 9), B)
    for k, p in enumerate(BRIGHT):
        r0, c0 = 1 + 4 * (k // 2), 1 + 4 * (k % 2)  # 2 x 2 tiles in reading order, pad 1
        expected[r0 : r0 + 3, c0 : c0 + 3] = -1 / 8
        expected[r0 + p // 3, c0 + p % 3] = 1.0
    return W, expected


BRIGHT = [0, 2, 4, 8]


def test_tile_filters_puts_each_filter_at_its_grid_position():
    W, expected = one_bright_pixel_per_filter()
    image = viz.tile_filters(W)
    np.testing.assert_allclose(image, expected, rtol=0, atol=1e-15)
    # Filter 1 (bright top right) is the second tile of the first row, not of the first column.
    assert image[1, 7] == 1.0 and image[5, 1] == -1 / 8


def test_tile_filters_non_square_count_no_pad_and_zero_filter():
    # Three 1x1 filters: cols = ceil(sqrt 3) = 2, rows = 2; the fourth slot stays background.
    # Centred values are -1, 0, 1; the all-zero filter stays 0 rather than 0/0.
    image = viz.tile_filters(np.array([[1.0], [2.0], [3.0]]), pad=0)
    np.testing.assert_array_equal(image, np.array([[-1.0, 0.0], [1.0, B]]))


def test_tile_filters_five_filters_layout():
    image = viz.tile_filters(np.random.default_rng(0).normal(size=(5, 16)), pad=2)
    # cols = 3, rows = 2: (2 + 2 * (4 + 2), 2 + 3 * (4 + 2)).
    assert image.shape == (14, 20)
    np.testing.assert_array_equal(image[8:12, 14:18], np.full((4, 4), B))  # sixth slot empty
    assert np.all(image[:2] == B) and np.all(image[:, :2] == B)
    assert np.abs(image).max() == 1.0


def test_tile_filters_patch_shape_is_row_major():
    image = viz.tile_filters(np.arange(6.0)[None, :], patch_shape=(2, 3))
    # Centred: -2.5 .. 2.5 in steps of 1, divided by 2.5, read row by row.
    expected = np.array([
        [B, B, B, B, B],
        [B, -1.0, -0.6, -0.2, B],
        [B, 0.2, 0.6, 1.0, B],
        [B, B, B, B, B],
    ])
    np.testing.assert_allclose(image, expected, rtol=0, atol=1e-15)


def test_tile_filters_colour_red_filter_is_red_in_its_tile():
    red = np.zeros((2, 2, 3))
    red[..., 0] = 1.0
    green_ramp = np.zeros((2, 2, 3))
    green_ramp[..., 1] = [[0.0, 1.0], [2.0, 4.0]]
    W = np.stack([red.reshape(-1), green_ramp.reshape(-1)])  # (p, p, 3) flattened row-major
    image = viz.tile_filters(W, channels=3)
    assert image.shape == (4, 7, 3)
    np.testing.assert_array_equal(image[1:3, 1:3], np.broadcast_to([1.0, 0.0, 0.0], (2, 2, 3)))
    np.testing.assert_allclose(image[1:3, 4:6, 1], [[0.0, 0.25], [0.5, 1.0]])
    np.testing.assert_array_equal(image[1:3, 4:6, [0, 2]], 0.0)
    background = np.ones((4, 7), bool)
    background[1:3, 1:3] = background[1:3, 4:6] = False
    np.testing.assert_array_equal(image[background], 0.0)


def test_tile_filters_colour_constant_filter_is_mid_grey():
    image = viz.tile_filters(np.full((1, 12), 3.0), channels=3, pad=0)
    np.testing.assert_array_equal(image, np.full((2, 2, 3), 0.5))


@pytest.mark.parametrize(
    "W, kwargs, match",
    [
        (np.zeros((2, 5)), {}, "perfect square"),
        (np.zeros((2, 8)), {"patch_shape": (3, 3)}, "patch_shape"),
        (np.zeros((2, 8)), {"patch_shape": (2, 2, 2)}, "patch_shape"),
        (np.zeros((2, 4)), {"channels": 2}, "channels"),
        (np.zeros((2, 13)), {"channels": 3}, "multiple of channels"),
        (np.zeros((2, 24)), {"channels": 3}, "perfect square"),
        (np.zeros(4), {}, r"W\[None, :\]"),
        (np.zeros((2, 2, 4)), {}, r"\(H, N\)"),
        (np.zeros((0, 4)), {}, "non-empty"),
        (np.full((2, 4), np.nan), {}, "NaN"),
        (np.zeros((2, 4)), {"pad": -1}, "pad"),
    ],
)
def test_tile_filters_bad_input_raises(W, kwargs, match):
    with pytest.raises(ValueError, match=match):
        viz.tile_filters(W, **kwargs)


# --- figures ----------------------------------------------------------------------------------


def test_save_filters_square_and_non_square_count(tmp_path):
    rng = np.random.default_rng(1)
    path = viz.save_filters(rng.normal(size=(25, 64)), tmp_path / "a" / "b" / "W1.png", title="W1")
    assert path == tmp_path / "a" / "b" / "W1.png"
    read_png(path, (500 + 35, 500))
    # 5 filters of 8x8: a (19, 28)-pixel tiling, drawn 5 inches wide at 100 dpi.
    path = viz.save_filters(rng.normal(size=(5, 64)), tmp_path / "five.png")
    read_png(path, (round(19 / 28 * 500), 500))


def test_save_filters_draws_each_tile_at_its_grid_position(tmp_path):
    W, expected = one_bright_pixel_per_filter()
    pixels = read_png(viz.save_filters(W, tmp_path / "tiles.png"), (500, 500))
    # The gray colormap on [-1, 1]: background black, a tile's -1/8 at 0.44, its bright pixel white.
    np.testing.assert_allclose(grey_cells(pixels, (9, 9)), (expected + 1) / 2, atol=0.02)


def test_save_filters_colour_draws_red(tmp_path):
    red = np.zeros((1, 4, 4, 3))
    red[..., 0] = 1.0
    pixels = read_png(viz.save_filters(red.reshape(1, -1), tmp_path / "red.png", channels=3),
                      (500, 500))
    np.testing.assert_allclose(pixels[250, 250, :3], [1.0, 0.0, 0.0], atol=0.02)


def test_save_curves_full_history(tmp_path):
    history = [
        {"step": s, "loss": 1.0 / (s + 1), "reconstruction": 0.5 / (s + 1),
         "weight_decay": 0.01, "sparsity": 0.1, "lr": 1e-3, "optimizer": "lbfgs"}
        for s in range(50)
    ]
    read_png(viz.save_curves(history, tmp_path / "curves.png", title="run"), (400, 600))


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
    read_png(viz.save_curves(history, tmp_path / "curves.png"), (400, 600))


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


def test_filter_grid_image_puts_each_run_in_its_cell():
    # One 2x2 filter per run of an unsorted grid, each bright at a pixel that names its run.
    rho, beta = [0.1, 0.01], [3.0, 0.0, 1.0]
    filters = np.zeros((2, 3, 1, 4))
    bright = np.array([[0, 1, 2], [3, 0, 1]])  # entry [i, j]: pixel of run (rho[i], beta[j])
    for i in range(2):
        for j in range(3):
            filters[i, j, 0, bright[i, j]] = 1.0
    image, rho_drawn, beta_drawn = viz.filter_grid_image(filters, rho, beta, gap=2)
    assert list(rho_drawn) == [0.01, 0.1] and list(beta_drawn) == [0.0, 1.0, 3.0]
    # one tiling is 4 x 4 (a 2x2 filter with a 1-pixel border); cells 2 pixels apart
    assert image.shape == (2 * 4 + 2, 3 * 4 + 2 * 2)
    drawn = bright[[1, 0]][:, [1, 2, 0]]  # row r is rho[1 - r], column c is beta[[1, 2, 0][c]]
    for r in range(2):
        for c in range(3):
            cell = image[r * 6:r * 6 + 4, c * 6:c * 6 + 4]
            np.testing.assert_array_equal(cell, viz.tile_filters(filters[1 - r, [1, 2, 0][c]]))
            ys, xs = np.nonzero(cell == cell.max())
            p = drawn[r, c]
            assert (ys[0], xs[0]) == (1 + p // 2, 1 + p % 2), (r, c)
    gaps = np.ones(image.shape, bool)
    for r in range(2):
        for c in range(3):
            gaps[r * 6:r * 6 + 4, c * 6:c * 6 + 4] = False
    assert np.isnan(image[gaps]).all() and not np.isnan(image[~gaps]).any()


def test_save_filter_grid_draws_the_mosaic_with_its_axes(tmp_path):
    ramps = np.broadcast_to(np.linspace(-1.0, 1.0, 64), (8, 8, 25, 64))  # smooth: a small PNG
    path = viz.save_filter_grid(ramps, np.geomspace(0.005, 0.2, 8),
                                np.geomspace(0.1, 10, 8), tmp_path / "grid.png", title="t")
    pixels = read_png(path, (int(100 * (1.5 * 8 + 0.9)), int(100 * (1.5 * 8 + 0.9))))
    assert pixels[..., :3].std() > 0.1  # the filters are drawn, not a blank page


def test_save_filter_grid_colour(tmp_path):
    colour = np.random.default_rng(5).normal(size=(1, 1, 4, 27))
    path = viz.save_filter_grid(colour, [0.05], [3.0], tmp_path / "one.png", channels=3)
    read_png(path, (240, 270))


def test_save_filter_grid_bad_shape_raises():
    with pytest.raises(ValueError, match=r"\(2, 3, H, N\)"):
        viz.save_filter_grid(np.zeros((3, 2, 4, 16)), [0.01, 0.1], [0.0, 1.0, 3.0], "unused.png")
    with pytest.raises(ValueError, match="perfect square"):
        viz.save_filter_grid(np.zeros((1, 1, 4, 15)), [0.01], [1.0], "unused.png")


@pytest.mark.slow
def test_figures_leave_pyplot_alone(tmp_path):
    # Drawing must not import pyplot, which would pick a global backend for the caller.
    code = (
        "import sys, numpy as np; from saejax import viz; "
        f"viz.save_filters(np.eye(4), {str(tmp_path / 'f.png')!r}); "
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


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
        ax = fig.axes[0]
        seen["scale"] = ax.get_yscale()
        seen["labels"] = [t.get_text() for t in ax.get_legend().get_texts()]
        seen["sparsity_steps"] = list(ax.get_lines()[1].get_xdata())
        return save(fig, path)

    monkeypatch.setattr(curves, "save_png", recording)
    read_png(viz.save_curves(history, tmp_path / "c.png"), (400, 600))
    assert seen["scale"] == "log"
    assert seen["labels"] == ["loss", "sparsity (1 zero not drawn)"]
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


def test_montage_subset_keeps_the_ends_and_spaces_the_rest():
    np.testing.assert_array_equal(viz.montage_subset(3), [0, 1, 2])
    np.testing.assert_array_equal(viz.montage_subset(5), [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(viz.montage_subset(8), [0, 2, 4, 5, 7])
    np.testing.assert_array_equal(viz.montage_subset(32), [0, 8, 16, 23, 31])
    assert len(viz.montage_subset(1000)) == viz.MONTAGE_SIDE
