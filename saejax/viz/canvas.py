"""The bare figures every picture of saejax is drawn on, and how they are written."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from saejax.records import files

logger = logging.getLogger(__name__)

DPI = 100

# Margins of a figure with one axes (fractions of its width and height), room for the tick
# labels, axis labels and title of a 6 x 4 inch figure. Constrained layout finds them itself
# but doubles the drawing time, which a training run pays on every exit.
ONE_AXES_MARGINS = {"left": 0.11, "right": 0.97, "bottom": 0.12, "top": 0.92}


def new_figure(width: float, height: float, margins: dict | None = None) -> Figure:
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


def save_png(fig: Figure, path: str | Path) -> Path:
    """Writes the figure as a PNG in one step (``records.files.replace``): a picture that fails
    half-drawn or half-written leaves the one before it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    files.replace(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI))
    fig.clear()
    logger.debug("wrote %s", path)
    return path


def axis_values(values, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence, got shape {values.shape}.")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} must be finite, got {values}.")
    if np.unique(values).size != values.size:
        raise ValueError(f"{name} has repeated values: {values}.")
    return values
