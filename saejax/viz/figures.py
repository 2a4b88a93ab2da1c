"""The figure sets: what a training run draws into its directory, and what a sweep draws.

The pictures are drawn through the package (``viz.save_filters``, ...), so a caller who wraps
one of them there sees every figure a run or sweep draws with it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from saejax import viz


def run_figures(workdir: Path, params: dict, summary: dict, history: list, config,
                resumed_at: list) -> None:
    """filters.png (when the inputs are square patches or colour patches), curves.png (marks
    at the steps a resume began) and rho_hat.png."""
    n_visible = params["W1"].shape[1]
    side = math.isqrt(n_visible)
    if config.dataset == "color-patches":  # rows of W1 in the ZCA-whitened colour domain
        viz.save_filters(params["W1"], workdir / "filters.png", channels=3,
                         title=f"W1 rows (ZCA domain), rho={config.rho}, beta={config.beta}")
    elif side * side == n_visible:
        viz.save_filters(params["W1"], workdir / "filters.png",
                         title=f"W1 rows, rho={config.rho}, beta={config.beta}")
    if history:
        viz.save_curves(history, workdir / "curves.png",
                        title=f"{config.optimizer}, {config.grad}", resumed_at=resumed_at)
    viz.save_rho_hat_histogram(np.asarray(summary["rho_hat"]), config.rho,
                               workdir / "rho_hat.png")


def sweep_heatmaps(workdir: Path, config, grid, rows: list):
    """heatmaps.png from the rows so far; cells of members not yet trained are blank (NaN).
    Returns the rho and beta values of its axes."""
    keys = ["reconstruction", "rho_hat_mean", "dead_fraction"]
    if "probe_accuracy" in rows[0]:
        keys.append("probe_accuracy")
    pending = [{**grid.member(i), **dict.fromkeys(keys, float("nan"))}
               for i in range(len(rows), len(grid))]
    rhos, betas, panels = viz.heatmap_arrays(rows + pending, keys)
    title = f"{config.optimizer}, {config.steps} steps"
    if pending:
        title += f" ({len(rows)} of {len(grid)} members)"
    count, spread = viz.cell_spread(rows + pending, "reconstruction")
    if count.max() > 1:  # several seeds, learning rates or lambdas share a cell
        widest = np.nanmax(spread) if np.isfinite(spread).any() else float("nan")
        title += (f"; each cell the mean of {count.max()} members, reconstruction spread "
                  f"(max - min) up to {widest:.3g}")
    viz.save_heatmaps(rhos, betas, panels, workdir / "heatmaps.png", title=title)
    return rhos, betas


def sweep_figures(workdir: Path, config, grid, rows: list, params: dict) -> None:
    """heatmaps.png, and filters_grid.png (the first member of each (rho, beta) cell) when the
    inputs are square patches."""
    rhos, betas = sweep_heatmaps(workdir, config, grid, rows)
    n = params["W1"].shape[-1]
    if math.isqrt(n) ** 2 != n:
        return
    first = {}
    for i, r in enumerate(rows):
        first.setdefault((r["rho"], r["beta"]), i)
    h = params["W1"].shape[1]
    filters = np.zeros((len(rhos), len(betas), h, n))
    for (r, b), i in first.items():
        filters[np.searchsorted(rhos, r), np.searchsorted(betas, b)] = params["W1"][i]
    # A large grid's thumbnails would be too small to read: a subset of rows and columns
    rows_, cols_ = viz.montage_subset(len(rhos)), viz.montage_subset(len(betas))
    title = None
    if len(rows_) < len(rhos) or len(cols_) < len(betas):
        title = (f"{len(rows_)} of {len(rhos)} rho values x {len(cols_)} of {len(betas)} beta "
                 "values, evenly spaced (all in heatmaps.png)")
    viz.save_filter_grid(filters[np.ix_(rows_, cols_)], rhos[rows_], betas[cols_],
                         workdir / "filters_grid.png", title=title)
