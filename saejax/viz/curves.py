"""Training curves, the rho_hat histogram and the penalties' shapes."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from saejax.metrics import DEAD_FRACTION_OF_RHO
from saejax.schema import TERMS
from saejax.viz.canvas import ONE_AXES_MARGINS, new_figure, save_png

logger = logging.getLogger(__name__)

# Beside J's terms, a logged row may hold the activity of the codes (schema.SCALAR_TERMS):
# save_curves draws these on a panel of their own, as their units are not J's.
ACTIVITY_KEYS = ("fvu", "mean_l0")


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


def curve_series(history: Sequence[Mapping],
                 keys: Sequence[str] = TERMS) -> dict[str, tuple[list[float], list[float]]]:
    """The points ``save_curves`` draws: per term of J, its steps and values.

    A row counts only with a numeric "step" (rows without one are logged and skipped); a value
    counts only when it is a finite real scalar (a diverged step's NaN or Inf, a string or a bool
    is left out). Keys other than ``keys`` are ignored.

    Args:
      history: rows of a metrics.jsonl, each a mapping with "step" and any of ``keys``.
      keys: the series to collect: J's terms (TERMS, the default), or ``ACTIVITY_KEYS``.

    Returns:
      dict from each of ``keys`` that has at least one usable point to its
      ``(steps, values)``, two lists of floats in row order.
    """
    series: dict[str, tuple[list[float], list[float]]] = {}
    skipped = 0
    for row in history:
        step = _as_float(row.get("step"))
        if step is None:
            skipped += 1
            continue
        for key in keys:
            value = _as_float(row.get(key))
            if value is not None:
                steps, values = series.setdefault(key, ([], []))
                steps.append(step)
                values.append(value)
    if skipped and keys is TERMS:  # said once, by the first panel's call
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
    """Plots J against step on a panel of its own (a linear axis, so that its decrease shows),
    and its terms on a second panel, one line per term present in the rows.

    The points are ``curve_series(history)``: rows without a numeric "step" and non-finite
    values (a diverged step) are left out, and keys other than TERMS are ignored. The terms'
    y-axis is ``curve_scale``'s: logarithmic unless a value is negative (zeros are left off it).
    When the rows also hold the codes' activity (``ACTIVITY_KEYS``: FVU and L0, which every
    training step logs), a third panel draws FVU (left axis) and L0 (right axis) against step.

    Args:
      history: rows of a metrics.jsonl, each a mapping with "step" and any of the terms.
      path: where to write the PNG; parent directories are created.
      title: optional figure title (the run's data, network and optimizer).
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
    activity = curve_series(history, ACTIVITY_KEYS)
    panels = 3 if activity else 2
    fig = new_figure(5.0 * panels, 4.0, PANEL_MARGINS[panels])
    loss_ax, terms_ax = fig.add_subplot(1, panels, 1), fig.add_subplot(1, panels, 2)
    _loss_panel(loss_ax, series.get("loss"), resumed_at)
    _terms_panel(terms_ax, {k: v for k, v in series.items() if k != "loss"}, resumed_at)
    if activity:
        _activity_panel(fig.add_subplot(1, panels, 3), activity, resumed_at)
    if title:
        fig.suptitle(title)
    return save_png(fig, path)


# Margins of save_curves' figure, by its number of panels: room for the L0 axis on the right.
PANEL_MARGINS = {2: {"left": 0.07, "right": 0.98, "bottom": 0.12, "top": 0.86, "wspace": 0.22},
                 3: {"left": 0.05, "right": 0.95, "bottom": 0.12, "top": 0.86, "wspace": 0.3}}


def _marker(steps) -> str | None:
    return "o" if len(steps) <= 30 else None  # a short run (one row: one point) stays visible


def _resumes(ax, resumed_at: Sequence[int], label: bool) -> None:
    for i, step in enumerate(resumed_at):
        ax.axvline(step, color="0.4", ls="--", lw=1,
                   label="resumed" if label and i == 0 else None)


def _loss_panel(ax, points, resumed_at: Sequence[int]) -> None:
    """J on a linear axis."""
    if points:
        ax.plot(*points, color="tab:blue", label="J", marker=_marker(points[0]), ms=3)
    else:
        ax.text(0.5, 0.5, "no J to plot", ha="center", va="center", transform=ax.transAxes)
    _resumes(ax, resumed_at, label=True)
    if resumed_at:
        ax.legend()
    ax.set_xlabel("step")
    ax.set_ylabel("J")
    ax.grid(True, which="major", alpha=0.3)
    ax.set_title("J (loss)", fontsize=10)


def _terms_panel(ax, series: Mapping, resumed_at: Sequence[int]) -> None:
    """J's terms, on ``curve_scale``'s axis."""
    scale = curve_scale(series)
    for key in TERMS:
        if key in series:
            steps, values = series[key]
            label = key
            if scale == "log":  # a zero has no place on a log axis: say so, draw the rest
                zeros = sum(v == 0 for v in values)
                steps = [s for s, v in zip(steps, values, strict=True) if v > 0]
                values = [v for v in values if v > 0]
                if zeros:
                    label = f"{key} ({zeros} zero{'s' if zeros > 1 else ''} not drawn)"
            ax.plot(steps, values, label=label, marker=_marker(steps), ms=3)
    if series:
        ax.set_yscale(scale)
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no terms to plot", ha="center", va="center", transform=ax.transAxes)
    _resumes(ax, resumed_at, label=False)
    ax.set_xlabel("step")
    ax.set_ylabel("value")
    ax.grid(True, which="major", alpha=0.3)
    ax.set_title("the terms of J", fontsize=10)


def _activity_panel(ax, activity: Mapping, resumed_at: Sequence[int]) -> None:
    """FVU on the left axis and L0 on a twin right axis, against step."""
    handles, twin = [], ax.twinx()
    for key, axis, colour, name in (("fvu", ax, "tab:purple", "FVU"),
                                    ("mean_l0", twin, "tab:green", "L0")):
        if key not in activity:
            continue
        steps, values = activity[key]
        handles += axis.plot(steps, values, color=colour, label=name, marker=_marker(steps),
                             ms=3)
        axis.set_ylabel({"fvu": "FVU: fraction of variance unexplained",
                         "mean_l0": "L0: mean active latents per example"}[key], color=colour)
    _resumes(ax, resumed_at, label=False)
    ax.set_xlabel("step")
    ax.grid(True, which="major", alpha=0.3)
    twin.legend(handles=handles, fontsize="small")  # the twin is drawn over ax
    ax.set_title("the codes: FVU and L0 on each logged step's batch", fontsize=10)


def save_rho_hat_histogram(rho_hat, rho: float, path: str | Path, title=None) -> Path:
    """Histogram of the hidden units' mean activations against the target rho.

    The bins span the values' own range (``rho_hat_bins``: linear, or logarithmic once units
    die and the values span decades; units at 0 count in the first bin); the target rho is
    always in view. The dead threshold, DEAD_FRACTION_OF_RHO * rho, is drawn when it lies in view and
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

    dead = DEAD_FRACTION_OF_RHO * rho
    edges, scale = rho_hat_bins(rho_hat)
    fig = new_figure(6.0, 4.0, ONE_AXES_MARGINS)
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
    return save_png(fig, path)


def save_firing_histogram(rho_hat, path: str | Path, title=None) -> Path:
    """Histogram of the latents' firing frequencies: the family's rho_hat, which has no target.

    A latent's firing frequency is the fraction of the examples on which its code is nonzero;
    their mean is L0 / H, drawn as a line. The bins are ``rho_hat_bins``' over the latents that
    fire; the dead ones, which fire on no example, are not drawn but counted in the legend.

    Args:
      rho_hat: (H,) firing frequency of each latent, in [0, 1].
      path: where to write the PNG; parent directories are created.
      title: optional axes title.

    Returns:
      ``path`` as a Path.
    """
    rho_hat = np.asarray(rho_hat, dtype=np.float64)
    if rho_hat.ndim != 1 or rho_hat.size == 0:
        raise ValueError(f"rho_hat must be a non-empty (H,) array, got shape {rho_hat.shape}.")
    if not np.all(np.isfinite(rho_hat)) or np.any(rho_hat < 0) or np.any(rho_hat > 1):
        raise ValueError("rho_hat must be finite and in [0, 1] (firing frequencies).")

    alive = rho_hat[rho_hat > 0]
    fig = new_figure(6.0, 4.0, ONE_AXES_MARGINS)
    ax = fig.add_subplot()
    if alive.size:
        edges, scale = rho_hat_bins(alive)
        ax.hist(alive, bins=edges, color="tab:blue", alpha=0.8, edgecolor="white",
                linewidth=0.5)
        ax.set_xscale(scale)
        mean = float(rho_hat.mean())
        ax.axvline(mean, color="tab:red", linestyle="-",
                   label=f"mean = {mean:.3g} (L0 / H, the dead included)")
    else:
        ax.text(0.5, 0.5, "no latent fires", ha="center", va="center", transform=ax.transAxes)
    n_dead = rho_hat.size - alive.size
    ax.plot([], [], " ", label=f"dead (never fire): {n_dead}/{rho_hat.size} latents, not drawn")
    ax.set_xlabel("firing frequency (fraction of examples where the latent is active)")
    ax.set_ylabel("latents")
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return save_png(fig, path)


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
    fig = new_figure(9.0, 3.4)
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
    return save_png(fig, path)
