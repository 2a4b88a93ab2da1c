"""Filter tilings against hand-worked arrays, and every figure written as a readable PNG."""

import math
import subprocess
import sys

import jax.numpy as jnp
import matplotlib.image
import numpy as np
import pytest

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
    series = viz._curve_series(history)
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
    edges, log = viz._cell_edges(np.array([0.01, 0.1, 1.0]))
    assert log
    np.testing.assert_allclose(edges, 10.0 ** np.array([-2.5, -1.5, -0.5, 0.5]))
    edges, log = viz._cell_edges(np.array([1e-4, 1e-2]))
    np.testing.assert_allclose(edges, [1e-5, 1e-3, 1e-1])
    edges, log = viz._cell_edges(np.array([3.0]))
    np.testing.assert_allclose(edges, [3.0 / math.sqrt(10), 3.0 * math.sqrt(10)])
    # beta = 0 cannot sit on a log axis: equal slots instead.
    edges, log = viz._cell_edges(np.array([0.0, 0.5, 3.0]))
    assert not log
    np.testing.assert_array_equal(edges, [-0.5, 0.5, 1.5, 2.5])


def test_save_heatmaps(tmp_path):
    rho, beta = [0.1, 0.01, 0.03], [0.0, 0.3, 3.0, 1.0]  # unsorted, with beta = 0
    rng = np.random.default_rng(3)
    panels = {
        "reconstruction": rng.uniform(0.1, 1.0, (3, 4)),
        "rho_hat_mean": np.array(rho)[:, None] * rng.uniform(0.5, 2.0, (3, 4)),
        "dead_fraction": jnp.asarray(rng.uniform(0.0, 1.0, (3, 4))),
    }
    panels["reconstruction"][1, 2] = np.nan
    path = viz.save_heatmaps(rho, beta, panels, tmp_path / "sweep.png", title="sweep")
    read_png(path, (380 + 30, 3 * 430))


def test_save_heatmaps_single_cell_and_all_nan(tmp_path):
    panels = {"rho_hat_mean": [[0.02]], "reconstruction": [[np.nan]]}
    read_png(viz.save_heatmaps([0.01], [3.0], panels, tmp_path / "one.png"), (380, 2 * 430))


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


def test_save_filter_grid(tmp_path):
    filters = np.random.default_rng(4).normal(size=(2, 3, 5, 16))
    path = viz.save_filter_grid(filters, [0.01, 0.1], [0.0, 1.0, 3.0], tmp_path / "grid.png")
    read_png(path, (2 * 180, 3 * 180))
    colour = np.random.default_rng(5).normal(size=(1, 1, 4, 27))
    path = viz.save_filter_grid(colour, [0.05], [3.0], tmp_path / "one.png", channels=3)
    read_png(path, (180, 180))


def test_save_filter_grid_bad_shape_raises():
    with pytest.raises(ValueError, match=r"\(2, 3, H, N\)"):
        viz.save_filter_grid(np.zeros((3, 2, 4, 16)), [0.01, 0.1], [0.0, 1.0, 3.0], "unused.png")
    with pytest.raises(ValueError, match="perfect square"):
        viz.save_filter_grid(np.zeros((1, 1, 4, 15)), [0.01], [1.0], "unused.png")


def test_figures_leave_pyplot_alone(tmp_path):
    # Drawing must not import pyplot, which would pick a global backend for the caller.
    code = (
        "import sys, numpy as np; from saejax import viz; "
        f"viz.save_filters(np.eye(4), {str(tmp_path / 'f.png')!r}); "
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_save_penalties_writes_png(tmp_path):
    path = viz.save_penalties(0.05, tmp_path / "pen.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
