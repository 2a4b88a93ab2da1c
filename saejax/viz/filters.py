"""Filters as pictures: the rows of W1 tiled as patches, and a montage of a sweep's filters."""

from __future__ import annotations

import logging
import math
import textwrap
from pathlib import Path

import matplotlib
import numpy as np

from saejax.viz.canvas import axis_values, new_figure, save_png

logger = logging.getLogger(__name__)

def _patch_shape(n: int, channels: int, patch_shape) -> tuple[int, int]:
    """The (rows, cols) of one patch whose flattened length is ``n`` over ``channels``."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels}.")
    if patch_shape is not None:
        shape = tuple(int(s) for s in patch_shape)
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(
                f"patch_shape must be two positive ints (rows, cols), got {patch_shape}."
            )
        if shape[0] * shape[1] * channels != n:
            raise ValueError(
                f"patch_shape {shape} with {channels} channel(s) needs rows of length "
                f"{shape[0] * shape[1] * channels}, but W has rows of length {n}."
            )
        return shape
    if n % channels:
        raise ValueError(
            f"W has rows of length {n}, which is not a multiple of channels={channels}; "
            "a colour filter is a (p, p, 3) patch flattened row-major."
        )
    side = math.isqrt(n // channels)
    if side * side * channels != n:
        raise ValueError(
            f"W has rows of length {n}, which is not {channels} x a perfect square; "
            "pass patch_shape=(rows, cols) for non-square patches."
        )
    return side, side


def tile_filters(
    W, channels: int = 1, patch_shape=None, pad: int = 1, normalize: bool = True
) -> np.ndarray:
    """Lays out the rows of W as image patches in one image, like UFLDL's display_network.m.

    Filters fill a grid of ``cols = ceil(sqrt(H))`` columns and ``ceil(H / cols)`` rows in
    reading order, with ``pad`` pixels of background between neighbours and around the border.

    Grayscale (display_network.m): the mean of all of W is subtracted, then each filter is
    divided by its own largest absolute value (``normalize=False``: by the largest over all of
    W), so 0 is mid-grey, values lie in [-1, 1], and the background is -1 (black).

    Colour: each filter is min-max scaled, jointly over its three channels, to [0, 1]; the
    background is 0 (black). A constant filter comes out as 0 (grayscale) or 0.5 (colour).

    Args:
      W: (H, N) weights, one filter per row, e.g. ``params["W1"]``; N = rows * cols * channels,
        a colour filter being a (rows, cols, 3) patch flattened row-major.
      channels: 1 for grayscale, 3 for RGB.
      patch_shape: (rows, cols) of one patch; defaults to square, (sqrt(N / channels),) * 2.
      pad: background pixels between filters and around the border.
      normalize: scale each filter by its own maximum (grayscale only; colour always is).

    Returns:
      float64 image of shape (R, C) for grayscale or (R, C, 3) for colour, with
      R = pad + rows * (patch_rows + pad) and C = pad + cols * (patch_cols + pad).
    """
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2 or W.shape[0] < 1 or W.shape[1] < 1:
        raise ValueError(
            f"W must be a non-empty (H, N) array with one filter per row, got shape {W.shape}; "
            "wrap a single filter as W[None, :]."
        )
    if not np.all(np.isfinite(W)):
        raise ValueError("W contains NaN or inf; the run that produced it has diverged.")
    if int(pad) < 0:
        raise ValueError(f"pad must be >= 0, got {pad}.")
    pad = int(pad)
    n_filters, n = W.shape
    prows, pcols = _patch_shape(n, channels, patch_shape)

    if channels == 1:
        W = W - W.mean()
        if normalize:
            scale = np.max(np.abs(W), axis=1, keepdims=True)
        else:
            scale = np.full((n_filters, 1), np.max(np.abs(W)))
        # An all-zero filter stays 0 (grey) instead of becoming 0/0.
        W = np.divide(W, scale, out=np.zeros_like(W), where=scale > 0)
        patches = W.reshape(n_filters, prows, pcols)
        background = -1.0
    else:
        lo = W.min(axis=1, keepdims=True)
        span = W.max(axis=1, keepdims=True) - lo
        W = np.divide(W - lo, span, out=np.full_like(W, 0.5), where=span > 0)
        patches = W.reshape(n_filters, prows, pcols, 3)
        background = 0.0

    cols = math.ceil(math.sqrt(n_filters))
    rows = math.ceil(n_filters / cols)
    shape = (pad + rows * (prows + pad), pad + cols * (pcols + pad))
    image = np.full(shape + patches.shape[3:], background)
    for k, patch in enumerate(patches):
        r0 = pad + (k // cols) * (prows + pad)
        c0 = pad + (k % cols) * (pcols + pad)
        image[r0 : r0 + prows, c0 : c0 + pcols] = patch
    return image


def _show_tiles(ax, image: np.ndarray) -> None:
    if image.ndim == 2:
        ax.imshow(image, cmap="gray", vmin=-1.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(image, interpolation="nearest")
    ax.set_axis_off()


def save_filters(W, path: str | Path, channels: int = 1, patch_shape=None, title=None) -> Path:
    """Writes ``tile_filters(W)`` as a PNG: gray colormap on [-1, 1], no interpolation, no axes.

    Args:
      W: (H, N) weights, one filter per row (see ``tile_filters``).
      path: where to write the PNG; parent directories are created.
      channels: 1 for grayscale, 3 for RGB.
      patch_shape: (rows, cols) of one patch; defaults to square.
      title: optional figure title.

    Returns:
      ``path`` as a Path.
    """
    image = tile_filters(W, channels=channels, patch_shape=patch_shape)
    # The longer side gets 5 inches, so small tilings are magnified and large ones stay readable.
    scale = 5.0 / max(image.shape[:2])
    width = max(1.5, image.shape[1] * scale)
    height = max(1.5, image.shape[0] * scale + (0.35 if title else 0.0))
    fig = new_figure(width, height)
    ax = fig.add_subplot()
    _show_tiles(ax, image)
    if title:
        ax.set_title(title)
    return save_png(fig, path)



def filter_grid_image(filters, rho_values, beta_values, channels: int = 1, patch_shape=None,
                      gap: int = 2):
    """The mosaic ``save_filter_grid`` draws: one ``tile_filters`` per (rho, beta) cell.

    Rows are rho and columns beta, both increasing; cells are ``gap`` pixels apart, and the
    gaps hold NaN (grayscale, drawn white) or 1.0 (colour, white).

    Returns:
      ``(image, rho_sorted, beta_sorted)``: the (R, C) or (R, C, 3) mosaic and the axis values
      in drawing order; cell (r, c) starts at row ``r * (h + gap)``, column ``c * (w + gap)``,
      where (h, w) is one tiling's shape.
    """
    rho = axis_values(rho_values, "rho_values")
    beta = axis_values(beta_values, "beta_values")
    filters = np.asarray(filters)
    if filters.ndim != 4 or filters.shape[:2] != (rho.size, beta.size):
        raise ValueError(
            f"filters must have shape (len(rho_values), len(beta_values), H, N) = "
            f"({rho.size}, {beta.size}, H, N), got {filters.shape}."
        )
    rows, cols = np.argsort(rho), np.argsort(beta)
    tiles = [[tile_filters(filters[i, j], channels=channels, patch_shape=patch_shape)
              for j in cols] for i in rows]
    h, w = tiles[0][0].shape[:2]
    shape = (rho.size * (h + gap) - gap, beta.size * (w + gap) - gap) + tiles[0][0].shape[2:]
    image = np.full(shape, np.nan if channels == 1 else 1.0)
    for r, row in enumerate(tiles):
        for c, tile in enumerate(row):
            image[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = tile
    return image, rho[rows], beta[cols]


MONTAGE_SIDE = 5  # rho or beta values a filter montage shows at most


def montage_subset(n: int, side: int = MONTAGE_SIDE) -> np.ndarray:
    """Indices of the grid values a montage shows: all of them up to ``side``, else ``side``
    evenly spaced ones, the first and the last included."""
    if n <= side:
        return np.arange(n)
    return np.unique(np.floor(np.linspace(0, n - 1, side) + 0.5).astype(int))  # halves up


def save_filter_grid(
    filters,
    rho_values,
    beta_values,
    path: str | Path,
    channels: int = 1,
    patch_shape=None,
    title=None,
    axis_names=("rho", "beta"),
) -> Path:
    """The learned filters of every run of a (rho, beta) sweep, one tiling per grid cell.

    Rows are rho and columns beta, both in increasing order, as in ``save_heatmaps``; each
    cell is ``tile_filters`` of that run's W1 (normalized on its own). The cells form one
    image (``filter_grid_image``), with rho and beta on the axes, so a grid of any size draws
    as fast as one picture.

    Args:
      filters: (R, B, H, N) weights, entry [i, j] the W1 of rho_values[i], beta_values[j].
      rho_values, beta_values: (R,) and (B,) grid values, as in ``save_heatmaps``.
      path: the PNG to write (parent directories are created); returned as a Path.
      channels, patch_shape: the patch layout, as in ``tile_filters``.
      title: optional figure title.
      axis_names: the names of the rows' and the columns' values; None hides that axis's
        labels and ticks (a family sweep draws one row of cells, a column per knob value).
    """
    image, rho, beta = filter_grid_image(filters, rho_values, beta_values, channels,
                                         patch_shape)
    n_rows, n_cols = rho.size, beta.size
    # Cells shrink as the grid grows so that the figure stays within about 12 inches.
    cell = min(1.8, 12.0 / max(n_rows, n_cols))
    width = cell * n_cols + 0.9
    # a title wider than a narrow grid is wrapped, about 14 characters of 9 points an inch
    lines = textwrap.wrap(title, max(24, int(14 * width))) if title else []
    fig = new_figure(width, cell * n_rows + 0.6 + (0.15 + 0.15 * len(lines) if lines else 0))
    ax = fig.add_subplot()
    if channels == 1:
        cmap = matplotlib.colormaps["gray"].with_extremes(bad="white")
        ax.imshow(image, cmap=cmap, vmin=-1.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(image, interpolation="nearest")
    step_r, step_c = image.shape[0] / n_rows, image.shape[1] / n_cols
    ax.set_xticks((np.arange(n_cols) + 0.5) * step_c - 0.5, [f"{b:.3g}" for b in beta])
    ax.set_yticks((np.arange(n_rows) + 0.5) * step_r - 0.5, [f"{r:.3g}" for r in rho])
    ax.tick_params(length=0, labelsize=8)
    row_name, col_name = axis_names
    ax.set_xlabel(col_name or "")
    ax.set_ylabel(row_name or "")
    if row_name is None:
        ax.set_yticks([])
    if col_name is None:
        ax.set_xticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if lines:
        ax.set_title("\n".join(lines), fontsize=9)
    return save_png(fig, path)
