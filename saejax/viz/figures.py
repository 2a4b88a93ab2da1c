"""The figure sets: what a training run draws into its directory, and what a sweep draws.

    run:    filters.png, curves.png, rho_hat.png (the sigmoid network: mean activations
            against rho; the family: firing frequencies)
    sweep:  frontier.png (every sweep); the sigmoid network's rho x beta grid: heatmaps.png
            and filters_grid.png; the family: filters_grid.png, a cell per knob value
    while a sweep runs: ``sweep_progress``, heatmaps.png or frontier.png from the rows so far

The pictures are drawn through the package (``viz.save_filters``, ...), so a caller who wraps
one of them there sees every figure a run or sweep draws with it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from saejax import viz
from saejax.config import network_name
from saejax.schema import KNOBS


def knob_title(config) -> str:
    """The architecture's knob values in a config: "rho=0.01, beta=3", "k=16", "l1=0.3"."""
    return viz.member_label(config, KNOBS[config.arch])


def square_images(config, n_visible: int) -> bool:
    """Whether W1's rows can be drawn as square pictures: the inputs are n_visible = side^2
    pixels, and not a language model's activations (a d_model of 576 is 24^2, but a direction
    in the residual stream is no picture)."""
    from saejax.data.activation_files import is_activations

    return math.isqrt(n_visible) ** 2 == n_visible and not is_activations(config.data)


def run_figures(workdir: Path, params: dict, summary: dict, history: list, config,
                resumed_at: list) -> None:
    """filters.png (when the inputs are square pictures, ``square_images``, or colour patches),
    curves.png (marks at the steps a resume began) and rho_hat.png: the sigmoid network's mean
    activations against the target rho, or the family's firing frequencies. Titles name the
    knob."""
    n_visible = params["W1"].shape[1]
    knobs = knob_title(config)
    family = config.arch != "sigmoid"
    arch = f"{config.arch}, " if family else ""
    if config.dataset == "color-patches":  # rows of W1 in the ZCA-whitened colour domain
        viz.save_filters(params["W1"], workdir / "filters.png", channels=3,
                         title=f"W1 rows (ZCA domain), {arch}{knobs}")
    elif square_images(config, n_visible):
        viz.save_filters(params["W1"], workdir / "filters.png",
                         title=f"W1 rows, {arch}{knobs}")
    if history:
        viz.save_curves(history, workdir / "curves.png",
                        title=f"{config.dataset} data, {network_name(config, n_visible)}, "
                              f"{config.optimizer}, {config.grad} gradient",
                        resumed_at=resumed_at)
    rho_hat = np.asarray(summary["rho_hat"])
    if family:  # firing frequencies: no target to mark
        viz.save_firing_histogram(rho_hat, workdir / "rho_hat.png",
                                  title=f"{config.arch}, {knobs}")
    else:
        viz.save_rho_hat_histogram(rho_hat, config.rho, workdir / "rho_hat.png")


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


def sweep_frontier(workdir: Path, config, grid, rows: list) -> Path:
    """frontier.png from the rows so far (``viz.save_frontier``), its points labelled by the
    architecture's knobs; the title says how many members are in while the sweep runs."""
    title = f"{config.arch}, {config.optimizer}, {config.steps} steps"
    if len(rows) < len(grid):
        title += f" ({len(rows)} of {len(grid)} members)"
    return viz.save_frontier(rows, workdir / "frontier.png", knob=KNOBS[config.arch],
                             title=title)


def sweep_progress(workdir: Path, config, grid, rows: list) -> None:
    """The figure a running sweep redraws from its rows so far: heatmaps.png for the sigmoid
    network's rho x beta grid, frontier.png for the family."""
    if config.arch == "sigmoid":
        sweep_heatmaps(workdir, config, grid, rows)
    else:
        sweep_frontier(workdir, config, grid, rows)


def sweep_figures(workdir: Path, config, grid, rows: list, params: dict) -> None:
    """frontier.png for every sweep; for the sigmoid network, heatmaps.png and filters_grid.png
    (the first member of each (rho, beta) cell), for the family filters_grid.png (the first
    member of each knob value); filters only when the inputs are square patches."""
    sweep_frontier(workdir, config, grid, rows)
    if config.arch != "sigmoid":
        _family_filters(workdir, config, rows, params)
        return
    rhos, betas = sweep_heatmaps(workdir, config, grid, rows)
    n = params["W1"].shape[-1]
    if not square_images(config, n):
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


def _family_filters(workdir: Path, config, rows: list, params: dict) -> None:
    """filters_grid.png of a family sweep: one row of cells, the first member of each knob value
    in increasing order (at most ``viz.MONTAGE_SIDE`` of them, evenly spaced)."""
    if not square_images(config, params["W1"].shape[-1]):
        return
    (knob,) = KNOBS[config.arch]
    first = {}
    for i, r in enumerate(rows):
        first.setdefault(r[knob], i)
    values = np.asarray(sorted(first), dtype=np.float64)
    shown = viz.montage_subset(values.size)
    members = [first[v] for v in sorted(first)]
    filters = np.stack([params["W1"][members[j]] for j in shown])[None]
    title = f"W1 rows, {config.arch}: the first member of each {knob}"
    if shown.size < values.size:
        title += f" ({shown.size} of {values.size} values, evenly spaced)"
    viz.save_filter_grid(filters, [0.0], values[shown], workdir / "filters_grid.png",
                         title=title, axis_names=(None, knob))
