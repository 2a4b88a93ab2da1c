"""Heatmaps of a (rho, beta) sweep: one panel per result, a cell per grid point."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.ticker import NullLocator

from saejax.viz.canvas import axis_values, new_figure, save_png

logger = logging.getLogger(__name__)

# Cell annotations stop being readable beyond this many rows or columns.
MAX_ANNOTATED_SIDE = 10


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
    rho = axis_values(rho_values, "rho_values")
    beta = axis_values(beta_values, "beta_values")
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

    fig = new_figure(4.3 * len(arrays), 3.8 + (0.3 if title else 0.0))
    for k, (name, data) in enumerate(arrays.items()):
        data, panel_title, label = heatmap_panel(name, data[np.ix_(rho_order, beta_order)], rho)
        ax = fig.add_subplot(1, len(arrays), k + 1)
        masked = np.ma.masked_invalid(data)
        mesh = ax.pcolormesh(x_edges, y_edges, masked, cmap="viridis", shading="flat")
        if masked.count() == 0:
            mesh.set_clim(0.0, 1.0)
        bar = fig.colorbar(mesh, ax=ax)
        bar.set_label(label)
        finite = masked.compressed()
        if finite.size and np.ptp(finite) == 0:  # one value: a scale would mean nothing
            bar.ax.set_visible(False)  # (its room kept, so every panel has the same layout)
            panel_title = f"{panel_title}\nevery cell {finite[0]:.4g}"
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
    return save_png(fig, path)


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
