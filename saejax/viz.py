"""PNG figures for filters, training curves, rho_hat histograms and (rho, beta) sweeps."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

logger = logging.getLogger(__name__)

DPI = 100
# The terms of J that a metrics row may carry, in the order they are drawn.
CURVE_KEYS = ("loss", "reconstruction", "weight_decay", "sparsity")
# A hidden unit counts as dead when its mean activation is below this fraction of the target rho.
DEAD_FRACTION = 0.1
# Cell annotations stop being readable beyond this many rows or columns.
MAX_ANNOTATED_SIDE = 10


# Margins of a figure with one axes (fractions of its width and height), room for the tick
# labels, axis labels and title of a 6 x 4 inch figure. Constrained layout finds them itself
# but doubles the drawing time, which a training run pays on every exit.
ONE_AXES_MARGINS = {"left": 0.11, "right": 0.97, "bottom": 0.12, "top": 0.92}


def _new_figure(width: float, height: float, margins: dict | None = None) -> Figure:
    """A bare Figure with its own Agg canvas: constrained layout, or fixed ``margins``.

    It never touches pyplot's global backend or figure list, so it is freed when the last
    reference goes and works under any backend the caller uses.
    """
    fig = Figure(figsize=(width, height), dpi=DPI,
                 layout=None if margins else "constrained")
    if margins:
        fig.subplots_adjust(**margins)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI)
    fig.clear()
    logger.debug("wrote %s", path)
    return path


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
    fig = _new_figure(width, height)
    ax = fig.add_subplot()
    _show_tiles(ax, image)
    if title:
        ax.set_title(title)
    return _save(fig, path)


def _as_float(value) -> float | None:
    """A finite real scalar (Python, NumPy or JAX) as float; anything else as None."""
    if isinstance(value, (bool, np.bool_)):
        return None
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        return None
    if array.ndim != 0 or array.dtype.kind not in "iuf":
        return None
    number = float(array)
    return number if math.isfinite(number) else None


def curve_series(history: Sequence[Mapping]) -> dict[str, tuple[list[float], list[float]]]:
    """The points ``save_curves`` draws: per term of J, its steps and values.

    A row counts only with a numeric "step" (rows without one are logged and skipped); a value
    counts only when it is a finite real scalar (a diverged step's NaN or Inf, a string or a bool
    is left out). Keys other than CURVE_KEYS are ignored.

    Args:
      history: rows of a metrics.jsonl, each a mapping with "step" and any of CURVE_KEYS.

    Returns:
      dict from each key of CURVE_KEYS that has at least one usable point to its
      ``(steps, values)``, two lists of floats in row order.
    """
    series: dict[str, tuple[list[float], list[float]]] = {}
    skipped = 0
    for row in history:
        step = _as_float(row.get("step"))
        if step is None:
            skipped += 1
            continue
        for key in CURVE_KEYS:
            value = _as_float(row.get(key))
            if value is not None:
                steps, values = series.setdefault(key, ([], []))
                steps.append(step)
                values.append(value)
    if skipped:
        logger.warning("curve_series: left out %d row(s) without a numeric 'step'", skipped)
    return series


def curve_scale(series: Mapping) -> str:
    """The y-axis of ``save_curves``: "log" when no value is negative and one is positive (J's
    terms span decades; a term that is exactly 0 is left off the axis and its legend entry says
    how many points were), else "linear"."""
    values = [v for _, vals in series.values() for v in vals]
    return "log" if values and min(values) >= 0 and max(values) > 0 else "linear"


def save_curves(history: Sequence[Mapping], path: str | Path, title=None,
                resumed_at: Sequence[int] = ()) -> Path:
    """Plots the terms of J against step, one line per term present in the rows.

    The points are ``curve_series(history)``: rows without a numeric "step" and non-finite
    values (a diverged step) are left out, and keys other than CURVE_KEYS are ignored. The y-axis
    is ``curve_scale``'s: logarithmic unless a value is negative (zeros are left off it).

    Args:
      history: rows of a metrics.jsonl, each a mapping with "step" and any of the terms.
      path: where to write the PNG; parent directories are created.
      title: optional axes title.
      resumed_at: steps at which the run was resumed (config.json's segments), each drawn as
        a dashed vertical line.

    Returns:
      ``path`` as a Path.
    """
    if isinstance(history, Mapping) or not isinstance(history, Sequence):
        raise ValueError(
            "history must be a list of dicts (rows of metrics.jsonl), "
            f"got {type(history).__name__}."
        )
    for i, row in enumerate(history):
        if not isinstance(row, Mapping):
            raise ValueError(f"history[{i}] must be a dict, got {type(row).__name__}.")

    series = curve_series(history)
    scale = curve_scale(series)
    fig = _new_figure(6.0, 4.0, ONE_AXES_MARGINS)
    ax = fig.add_subplot()
    for key in CURVE_KEYS:
        if key in series:
            steps, values = series[key]
            label = key
            if scale == "log":  # a zero has no place on a log axis: say so, draw the rest
                zeros = sum(v == 0 for v in values)
                steps = [s for s, v in zip(steps, values, strict=True) if v > 0]
                values = [v for v in values if v > 0]
                if zeros:
                    label = f"{key} ({zeros} zero{'s' if zeros > 1 else ''} not drawn)"
            # Markers keep a short run (a single row is a single point) visible.
            ax.plot(steps, values, label=label, marker="o" if len(steps) <= 30 else None, ms=3)
    if series:
        ax.set_yscale(scale)
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no curves to plot", ha="center", va="center", transform=ax.transAxes)
    for i, step in enumerate(resumed_at):
        ax.axvline(step, color="0.4", ls="--", lw=1, label="resumed" if i == 0 else None)
    if resumed_at:
        ax.legend()
    ax.set_xlabel("step")
    ax.set_ylabel("value")
    ax.grid(True, which="major", alpha=0.3)
    if title:
        ax.set_title(title)
    return _save(fig, path)


def save_rho_hat_histogram(rho_hat, rho: float, path: str | Path, title=None) -> Path:
    """Histogram of the hidden units' mean activations against the target rho.

    The bins span the values' own range (``rho_hat_bins``: linear, or logarithmic once units
    die and the values span decades; units at 0 count in the first bin); the target rho is
    always in view. The dead threshold, DEAD_FRACTION * rho, is drawn when it lies in view and
    named in the legend, with the number of units below it, either way.

    Args:
      rho_hat: (H,) mean activation of each hidden unit over the data.
      rho: the target sparsity, in (0, 1).
      path: where to write the PNG; parent directories are created.
      title: optional axes title.

    Returns:
      ``path`` as a Path.
    """
    rho_hat = np.asarray(rho_hat, dtype=np.float64)
    rho = float(rho)
    if rho_hat.ndim != 1 or rho_hat.size == 0:
        raise ValueError(f"rho_hat must be a non-empty (H,) array, got shape {rho_hat.shape}.")
    if not np.all(np.isfinite(rho_hat)) or np.any(rho_hat < 0):
        raise ValueError("rho_hat must be finite and >= 0 (mean sigmoid activations).")
    if not 0.0 < rho < 1.0:
        raise ValueError(f"rho must be in (0, 1), got {rho}.")

    dead = DEAD_FRACTION * rho
    edges, scale = rho_hat_bins(rho_hat)
    fig = _new_figure(6.0, 4.0, ONE_AXES_MARGINS)
    ax = fig.add_subplot()
    ax.hist(np.clip(rho_hat, edges[0], edges[-1]), bins=edges, color="tab:blue", alpha=0.8,
            edgecolor="white", linewidth=0.5)
    ax.set_xscale(scale)
    lo, hi = min(edges[0], rho), max(edges[-1], rho)  # the target is always in view
    if scale == "log":
        pad = (hi / lo) ** 0.03
        ax.set_xlim(lo / pad, hi * pad)
    else:
        pad = 0.03 * (hi - lo)
        ax.set_xlim(lo - pad, hi + pad)
    ax.axvline(rho, color="tab:red", linestyle="-", label=f"target rho = {rho:.3g}")
    n_dead = int(np.sum(rho_hat < dead))
    dead_label = f"dead threshold = {dead:.3g} ({n_dead}/{rho_hat.size} units below)"
    if lo <= dead <= hi:
        ax.axvline(dead, color="black", linestyle="--", label=dead_label)
    else:  # off the range of the data: said, not drawn
        ax.plot([], [], " ", label=dead_label)
    ax.set_xlabel("rho_hat (mean activation per hidden unit)")
    ax.set_ylabel("hidden units")
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return _save(fig, path)


def rho_hat_bins(rho_hat) -> tuple[np.ndarray, str]:
    """The bins of ``save_rho_hat_histogram``: ``(edges, scale)`` over the range of rho_hat.

    Between 10 and 50 bins (twice the square root of the number of units) span exactly the
    smallest to the largest rho_hat: linear bins when the values lie within a factor of 10,
    logarithmic ones (scale "log") when they span more, as they do once units die; then the
    smallest positive value starts the first bin, which also counts the units at 0. Equal
    values get one bin 1% wide around them.
    """
    rho_hat = np.asarray(rho_hat, dtype=np.float64)
    n_bins = int(np.clip(math.ceil(math.sqrt(rho_hat.size)) * 2, 10, 50))
    lo, hi = float(rho_hat.min()), float(rho_hat.max())
    positive = rho_hat[rho_hat > 0]
    if positive.size and hi > 10 * max(lo, 0.0) and positive.min() < hi:
        return np.geomspace(positive.min(), hi, n_bins + 1), "log"
    if hi == lo:
        width = 0.01 * abs(lo) or 1e-6
        return np.array([lo - width / 2, lo + width / 2]), "linear"
    return np.linspace(lo, hi, n_bins + 1), "linear"


def _axis_values(values, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence, got shape {values.shape}.")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} must be finite, got {values}.")
    if np.unique(values).size != values.size:
        raise ValueError(f"{name} has repeated values: {values}.")
    return values


def cell_edges(values) -> tuple[np.ndarray, bool]:
    """The cell edges ``save_heatmaps`` draws along one axis, and whether that axis is log-scaled.

    Positive values get cells centred in log space: neighbours meet at their geometric
    midpoint, the outer edges mirror the nearest inner one, and a single value gets half a decade
    on either side. A grid containing 0 or a negative value (beta = 0 is a natural baseline)
    cannot be log-scaled, so its cells are equal-width slots centred at positions 0, 1, ...

    Args:
      values: (K,) increasing grid values.

    Returns:
      ``(edges, log)``: the (K + 1,) increasing edges, cell k spanning edges[k] to edges[k + 1],
      and True when the edges are on a log axis (False: the slot positions).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size == 0 or np.any(np.diff(values) <= 0):
        raise ValueError(f"values must be a non-empty increasing 1-D sequence, got {values}.")
    if np.all(values > 0):
        logs = np.log10(values)
        if logs.size == 1:
            return 10.0 ** np.array([logs[0] - 0.5, logs[0] + 0.5]), True
        mids = (logs[:-1] + logs[1:]) / 2
        edges = np.concatenate([[2 * logs[0] - mids[0]], mids, [2 * logs[-1] - mids[-1]]])
        return 10.0**edges, True
    return np.arange(values.size + 1) - 0.5, False


def heatmap_arrays(
    rows: Sequence[Mapping], keys: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The (rho, beta) grids of a sweep's results, ready for ``save_heatmaps``.

    Members that share a (rho, beta) cell (several seeds, learning rates or lambdas) are
    averaged. Non-finite values (a diverged member's NaN) are left out of the mean; a cell with
    no finite value, or with no member at all, is NaN.

    Args:
      rows: one mapping per sweep member with "rho", "beta" and every name in ``keys``, such
        as ``SweepResult.rows`` or the rows of results.json.
      keys: the metrics to grid, e.g. ("reconstruction", "rho_hat_mean").

    Returns:
      ``(rho_values, beta_values, panels)``: the distinct rho and beta values in increasing
      order, (R,) and (B,), and a dict from each key to its (R, B) float64 array, entry [i, j]
      the mean over the members with rho_values[i] and beta_values[j].
    """
    if not rows:
        raise ValueError("rows is empty; a sweep has at least one member.")
    for i, row in enumerate(rows):
        missing = [k for k in ("rho", "beta", *keys) if k not in row]
        if missing:
            raise ValueError(f"rows[{i}] has no {', '.join(map(repr, missing))}.")
    rho = np.unique(np.asarray([row["rho"] for row in rows], dtype=np.float64))
    beta = np.unique(np.asarray([row["beta"] for row in rows], dtype=np.float64))
    r = np.searchsorted(rho, [float(row["rho"]) for row in rows])
    b = np.searchsorted(beta, [float(row["beta"]) for row in rows])
    panels = {}
    for key in keys:
        values = np.asarray([row[key] for row in rows], dtype=np.float64)
        finite = np.isfinite(values)
        total = np.zeros((rho.size, beta.size))
        count = np.zeros((rho.size, beta.size))
        np.add.at(total, (r[finite], b[finite]), values[finite])
        np.add.at(count, (r[finite], b[finite]), 1)
        panels[key] = np.divide(total, count, out=np.full_like(total, np.nan), where=count > 0)
    return rho, beta, panels


def cell_spread(rows: Sequence[Mapping], key: str) -> tuple[np.ndarray, np.ndarray]:
    """How ``heatmap_arrays`` averaged ``key``: per (rho, beta) cell, ``(count, spread)``.

    ``count`` is the number of members in the cell, ``spread`` the max - min of their finite
    values (0 for one member, NaN for none), both (R, B) over the axes of ``heatmap_arrays``.
    """
    rho, beta, _ = heatmap_arrays(rows, [key])
    count = np.zeros((rho.size, beta.size), int)
    lo = np.full((rho.size, beta.size), np.inf)
    hi = np.full((rho.size, beta.size), -np.inf)
    for row in rows:
        i = int(np.searchsorted(rho, float(row["rho"])))
        j = int(np.searchsorted(beta, float(row["beta"])))
        count[i, j] += 1
        value = float(row[key])
        if math.isfinite(value):
            lo[i, j], hi[i, j] = min(lo[i, j], value), max(hi[i, j], value)
    spread = np.where(np.isfinite(lo), hi - lo, np.nan)
    return count, spread


def save_heatmaps(
    rho_values, beta_values, panels: Mapping[str, object], path: str | Path, title=None
) -> Path:
    """One heatmap per metric over a (rho, beta) sweep, rho down the rows and beta across.

    Both axes are logarithmic (cells centred on the grid values, see ``cell_edges``) unless an
    axis holds a value <= 0, which then gets equal-width cells. ``heatmap_arrays`` builds the
    arguments from a sweep's rows. NaN cells (diverged runs) are left blank. On a panel
    named "rho_hat_mean", the cells show rho_hat_mean / rho, printed in each cell of a grid up to
    10 x 10 (``heatmap_panel``); every colour bar is labelled with what it shows.

    Args:
      rho_values: (R,) target sparsities of the sweep.
      beta_values: (B,) sparsity weights of the sweep.
      panels: metric name -> (R, B) array, entry [i, j] for rho_values[i], beta_values[j].
      path: where to write the PNG; parent directories are created.
      title: optional figure title.

    Returns:
      ``path`` as a Path.
    """
    rho = _axis_values(rho_values, "rho_values")
    beta = _axis_values(beta_values, "beta_values")
    if not panels:
        raise ValueError("panels is empty; pass at least one name -> (len(rho), len(beta)) array.")
    arrays = {}
    for name, data in panels.items():
        data = np.asarray(data, dtype=np.float64)
        if data.shape != (rho.size, beta.size):
            raise ValueError(
                f"panel {name!r} has shape {data.shape}, expected (len(rho_values), "
                f"len(beta_values)) = {(rho.size, beta.size)}."
            )
        arrays[name] = data

    # Sorted axes make the cell edges monotonic; the panels are permuted to match.
    rho_order, beta_order = np.argsort(rho), np.argsort(beta)
    rho, beta = rho[rho_order], beta[beta_order]
    x_edges, x_log = cell_edges(beta)
    y_edges, y_log = cell_edges(rho)
    x_centres = beta if x_log else np.arange(beta.size)
    y_centres = rho if y_log else np.arange(rho.size)

    fig = _new_figure(4.3 * len(arrays), 3.8 + (0.3 if title else 0.0))
    for k, (name, data) in enumerate(arrays.items()):
        data, panel_title, label = heatmap_panel(name, data[np.ix_(rho_order, beta_order)], rho)
        ax = fig.add_subplot(1, len(arrays), k + 1)
        masked = np.ma.masked_invalid(data)
        mesh = ax.pcolormesh(x_edges, y_edges, masked, cmap="viridis", shading="flat")
        if masked.count() == 0:
            mesh.set_clim(0.0, 1.0)
        fig.colorbar(mesh, ax=ax).set_label(label)
        if x_log:
            ax.set_xscale("log")
        if y_log:
            ax.set_yscale("log")
        ax.set_xlim(x_edges[0], x_edges[-1])
        # Rows read top to bottom in rho order, like save_filter_grid's grid.
        ax.set_ylim(y_edges[-1], y_edges[0])
        _value_ticks(ax.xaxis, beta, x_log)
        _value_ticks(ax.yaxis, rho, y_log)
        ax.set_xlabel("beta")
        ax.set_ylabel("rho")
        ax.set_title(panel_title, fontsize=9)
        if name == "rho_hat_mean" and max(data.shape) <= MAX_ANNOTATED_SIDE:
            _annotate(ax, mesh, data, x_centres, y_centres)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def _value_ticks(axis, values: np.ndarray, logscale: bool) -> None:
    # Ticks at the grid values themselves: the swept settings are what the reader looks up.
    axis.set_ticks(values if logscale else np.arange(values.size))
    # Three significant digits keep the labels of a log-spaced grid from running together.
    axis.set_ticklabels([f"{v:.3g}" for v in values], fontsize=8,
                        rotation=45 if axis.axis_name == "x" else 0)
    axis.set_minor_locator(NullLocator())


def heatmap_panel(name: str, data: np.ndarray, rho: np.ndarray) -> tuple[np.ndarray, str, str]:
    """What one panel of ``save_heatmaps`` draws: ``(values, title, colour bar label)``.

    The "rho_hat_mean" panel draws (and, up to 10 x 10 cells, prints) the ratio
    rho_hat_mean / rho of each cell, so that its numbers, its colours and its colour bar show
    one quantity; the title says so. A panel whose finite cells all hold one value says that
    value in its title, since its colours alone would show nothing.
    """
    data = np.asarray(data, dtype=np.float64)
    label = name
    if name == "rho_hat_mean":
        data = data / np.asarray(rho, dtype=np.float64)[:, None]
        label = "rho_hat_mean / rho"
    title = label + (" (colours and numbers)" if name == "rho_hat_mean" else "")
    finite = data[np.isfinite(data)]
    if finite.size and finite.min() == finite.max():
        title = f"{label}: {finite[0]:.3g} in every cell"
    elif not finite.size:
        title = f"{label}: no finite value"
    return data, title, label


def _annotate(ax, mesh, data, x_centres, y_centres) -> None:
    """Writes each finite cell's value, in black or white to contrast with the cell."""
    for i, y in enumerate(y_centres):
        for j, x in enumerate(x_centres):
            value = data[i, j]
            if not math.isfinite(value):
                continue
            r, g, b, _ = mesh.cmap(mesh.norm(value))
            colour = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"
            ax.text(x, y, f"{value:.3g}", ha="center", va="center", fontsize=8, color=colour)


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
    rho = _axis_values(rho_values, "rho_values")
    beta = _axis_values(beta_values, "beta_values")
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
    """
    image, rho, beta = filter_grid_image(filters, rho_values, beta_values, channels,
                                         patch_shape)
    n_rows, n_cols = rho.size, beta.size
    # Cells shrink as the grid grows so that the figure stays within about 12 inches.
    cell = min(1.8, 12.0 / max(n_rows, n_cols))
    fig = _new_figure(cell * n_cols + 0.9, cell * n_rows + (0.9 if title else 0.6))
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
    ax.set_xlabel("beta")
    ax.set_ylabel("rho")
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title)
    return _save(fig, path)


def save_penalties(rho: float, path: str | Path, title=None) -> Path:
    """The sparsity penalties P(rho_hat) and their derivatives dP/drho_hat against rho_hat.

    Left: KL(rho || rho_hat) and (rho_hat - rho)^2; right: -rho/rho_hat + (1-rho)/(1-rho_hat) and
    2 (rho_hat - rho). Both are computed by saejax itself (``losses`` and ``grads``), so the
    picture shows exactly what the loss and the hand-written gradient use.

    Args:
      rho: the sparsity target in (0, 1).
      path: PNG file to write.
    """
    import jax.numpy as jnp

    from saejax.penalties import kl_divergence, penalty_derivative, squared_penalty

    r = jnp.linspace(0.002, 0.6, 400)
    fig = _new_figure(9.0, 3.4)
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    left.plot(r, kl_divergence(rho, r), label=r"KL($\rho\,\|\,\hat\rho$)")
    left.plot(r, squared_penalty(rho, r), label=r"$(\hat\rho-\rho)^2$")
    right.plot(r, penalty_derivative("kl", rho, r), label=r"$-\rho/\hat\rho+(1-\rho)/(1-\hat\rho)$")
    right.plot(r, penalty_derivative("squared", rho, r), label=r"$2(\hat\rho-\rho)$")
    for ax, name in ((left, "penalty"), (right, "derivative")):
        ax.axvline(rho, color="k", linestyle="--", linewidth=0.8, label=rf"$\rho$ = {rho:g}")
        ax.axhline(0.0, color="0.6", linewidth=0.5)
        ax.set_xlabel(r"$\hat\rho$")
        ax.set_title(name)
        ax.legend(fontsize=7)
    left.set_ylim(-0.05, 1.0)
    right.set_ylim(-20.0, 5.0)
    if title:
        fig.suptitle(title)
    return _save(fig, path)
