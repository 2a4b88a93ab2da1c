"""Filter tilings against hand-worked arrays, and the PNGs draw those arrays: which tile sits at
which grid position, read back from the pixels."""

import jax.numpy as jnp
import numpy as np
import pytest
from helpers import read_png

from saejax import viz

B = -1.0  # grayscale background


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


def test_montage_subset_keeps_the_ends_and_spaces_the_rest():
    np.testing.assert_array_equal(viz.montage_subset(3), [0, 1, 2])
    np.testing.assert_array_equal(viz.montage_subset(5), [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(viz.montage_subset(8), [0, 2, 4, 5, 7])
    np.testing.assert_array_equal(viz.montage_subset(32), [0, 8, 16, 23, 31])
    assert len(viz.montage_subset(1000)) == viz.MONTAGE_SIDE


def test_a_long_title_over_a_narrow_grid_is_wrapped_inside_the_figure(tmp_path, monkeypatch):
    from saejax.viz import filters as module

    drawn = {}

    def keep(fig, path):
        drawn["fig"] = fig
        fig.canvas.draw()
        return path

    monkeypatch.setattr(module, "save_png", keep)
    title = "5 of 6 rho values x 2 of 2 beta values, evenly spaced (all in heatmaps.png)"
    w1 = np.random.default_rng(0).normal(size=(5, 2, 4, 16))
    module.save_filter_grid(w1, np.arange(1, 6) / 10, [1.0, 3.0], tmp_path / "g.png",
                            title=title)
    fig = drawn["fig"]
    text = fig.axes[0].title
    assert text.get_text().replace("\n", " ") == title and "\n" in text.get_text()
    box, frame = text.get_window_extent(), fig.bbox
    assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and box.y1 <= frame.y1
