"""The sparsity-fidelity frontier of a sweep: L0 (mean active latents per example) against FVU,
a point per member, and the Pareto front through the members no other member beats."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from saejax.viz.canvas import ONE_AXES_MARGINS, new_figure, save_png

logger = logging.getLogger(__name__)

# Beyond this many points a label per point is unreadable: only the front's are written.
MAX_LABELLED = 40
# An axis is logarithmic when its positive values span at least this factor.
LOG_SPAN = 10.0


def pareto_front(l0, fvu) -> np.ndarray:
    """The indices of the non-dominated points, lower L0 and lower FVU both better.

    Point i is dominated when another point j has l0[j] <= l0[i] and fvu[j] <= fvu[i], one of
    the two strictly; points that tie exactly dominate neither each other, so both stay.

    Args:
      l0, fvu: (G,) finite values, one per member.

    Returns:
      (P,) int indices into the inputs, in increasing L0 (so decreasing FVU): the order in
      which ``save_frontier`` draws the front's steps.
    """
    l0 = np.asarray(l0, dtype=np.float64)
    fvu = np.asarray(fvu, dtype=np.float64)
    if l0.ndim != 1 or l0.shape != fvu.shape:
        raise ValueError(f"l0 and fvu must be 1-D of one length, got shapes {l0.shape} and "
                         f"{fvu.shape}.")
    if not (np.all(np.isfinite(l0)) and np.all(np.isfinite(fvu))):
        raise ValueError("l0 and fvu must be finite (leave diverged members out first).")
    # [i, j]: does j dominate i
    no_worse = (l0[None, :] <= l0[:, None]) & (fvu[None, :] <= fvu[:, None])
    better = (l0[None, :] < l0[:, None]) | (fvu[None, :] < fvu[:, None])
    front = np.flatnonzero(~np.any(no_worse & better, axis=1))
    return front[np.lexsort((fvu[front], l0[front]))]


def member_label(member, knob: str | Sequence[str]) -> str:
    """The knob values of a sweep member (a row, a mapping) or of a config (its attributes):
    "k=8", "l1=0.3", "rho=0.01, beta=3"."""
    names = (knob,) if isinstance(knob, str) else tuple(knob)
    get = member.get if isinstance(member, Mapping) else lambda name: getattr(member, name)
    return ", ".join(f"{name}={_value(get(name))}" for name in names)


def _value(v) -> str:
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return str(int(v))
    return f"{float(v):.3g}"


def frontier_points(rows: Sequence[Mapping], knob: str | Sequence[str]):
    """What ``save_frontier`` draws: ``(l0, fvu, labels, left_out)``.

    The members that diverged, or whose mean_l0 or fvu is not finite, are left out; ``l0`` and
    ``fvu`` are (P,) arrays of the rest, ``labels`` their ``member_label``s, ``left_out`` the
    note that says how many were dropped and why ("" when none was).
    """
    kept = [r for r in rows if not r.get("diverged", False)
            and math.isfinite(float(r["mean_l0"])) and math.isfinite(float(r["fvu"]))]
    l0 = np.asarray([float(r["mean_l0"]) for r in kept])
    fvu = np.asarray([float(r["fvu"]) for r in kept])
    diverged = sum(bool(r.get("diverged", False)) for r in rows)
    other = len(rows) - len(kept) - diverged
    notes = [f"{n} {'members' if n > 1 else 'member'}{what} left out"
             for n, what in ((diverged, " that diverged"),
                             (other, " without a finite L0 or FVU")) if n]
    return l0, fvu, [member_label(r, knob) for r in kept], "; ".join(notes)


def _log_axis(values: np.ndarray) -> bool:
    """Whether an axis of these values is logarithmic: all positive, spanning a factor of 10."""
    return bool(values.size) and values.min() > 0 and values.max() >= LOG_SPAN * values.min()


def save_frontier(rows: Sequence[Mapping], path: str | Path, knob: str | Sequence[str],
                  title=None) -> Path:
    """L0 against FVU, a point per sweep member, and the Pareto front as a step line.

    Each point is labelled with its member's knob values (``member_label``; members that share
    them, such as several seeds, are points of their own with the same label); above
    ``MAX_LABELLED`` points only the front's are. The front (``pareto_front``) steps from each
    of its points to the next: to the right at its FVU, then down. An axis is logarithmic when
    its values span a factor of 10 or more (the L0 of a k sweep from 4 to 256 does), else
    linear. Diverged members, and any with a non-finite L0 or FVU, are left out; the title
    says how many.

    Args:
      rows: one mapping per member with "mean_l0", "fvu", the knob names and optionally
        "diverged", such as ``SweepResult.rows`` or the rows of results.json.
      path: where to write the PNG; parent directories are created.
      knob: the name, or names, of the setting that labels each point (``schema.KNOBS``).
      title: optional first line of the title.

    Returns:
      ``path`` as a Path.
    """
    if isinstance(rows, Mapping) or not isinstance(rows, Sequence):
        raise ValueError(f"rows must be a list of dicts (a sweep's rows), got "
                         f"{type(rows).__name__}.")
    for i, row in enumerate(rows):
        missing = [k for k in ("mean_l0", "fvu") if k not in row]
        if missing:
            raise ValueError(f"rows[{i}] has no {', '.join(map(repr, missing))}.")
    l0, fvu, labels, left_out = frontier_points(rows, knob)
    # Room on the left for FVU's ticks (0.775), and for a two-line title on top
    fig = new_figure(6.0, 4.5, {**ONE_AXES_MARGINS, "left": 0.14, "top": 0.88})
    ax = fig.add_subplot()
    if l0.size:
        front = pareto_front(l0, fvu)
        on_front = np.zeros(l0.size, bool)
        on_front[front] = True
        ax.scatter(l0[~on_front], fvu[~on_front], s=18, color="0.55", zorder=2,
                   label=f"dominated ({l0.size - front.size})")
        ax.scatter(l0[front], fvu[front], s=24, color="tab:red", zorder=3,
                   label=f"Pareto front ({front.size} of {l0.size})")
        ax.step(l0[front], fvu[front], where="post", color="tab:red", lw=1.2, zorder=1)
        labelled = range(l0.size) if l0.size <= MAX_LABELLED else front
        for i in labelled:
            ax.annotate(labels[i], (l0[i], fvu[i]), xytext=(4, 3), textcoords="offset points",
                        fontsize=7, color="tab:red" if on_front[i] else "0.3")
        ax.margins(x=0.08, y=0.08)  # the labels right of the last points stay inside
        if _log_axis(l0):
            ax.set_xscale("log")
        if _log_axis(fvu):
            ax.set_yscale("log")
        ax.legend(fontsize="small")
    else:
        ax.text(0.5, 0.5, "no member to plot", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("L0: mean active latents per example")
    ax.set_ylabel("FVU: fraction of variance unexplained")
    ax.grid(True, which="major", alpha=0.3)
    notes = []
    if left_out:
        notes.append(left_out)
    if l0.size > MAX_LABELLED:
        notes.append(f"labels on the front only ({l0.size} points)")
    lines = [title] if title else []
    if notes:
        lines.append("; ".join(notes))
    if lines:
        ax.set_title("\n".join(lines), fontsize=10)
    return save_png(fig, path)
