"""Normalizations fitted on training data, kept as a JSON record and applied again to new data."""

from __future__ import annotations

import numpy as np

from saejax.data.errors import DataError
from saejax.schema import NORMALIZATIONS

# UFLDL's normalizeData: values beyond this many standard deviations are truncated, and the
# range [-1, 1] that remains is mapped onto [LOW, HIGH], inside the sigmoid's (0, 1).
UFLDL_STDS = 3.0
LOW, HIGH = 0.1, 0.9


def fit(kind: str, x) -> dict:
    """Fits the normalization ``kind`` on training data and returns its JSON-able record.

    Args:
      kind: ``"none"``; ``"ufldl"``, UFLDL's normalizeData (each example loses its own mean,
        values are truncated to +-3 standard deviations and mapped from [-1, 1] onto
        [0.1, 0.9]); or ``"standardize"`` (each feature to mean 0 and standard deviation 1).
      x: training examples (M, N), one per row.

    Returns:
      ``{"kind": "none"}``; ``{"kind": "ufldl", "std": s}``, s the standard deviation of all
      entries once each example's mean is removed (ddof=1, as MATLAB's std); or
      ``{"kind": "standardize", "mean": [N floats], "std": [N floats]}`` (ddof=0, a feature's
      zero std recorded as 1, so a constant feature becomes 0).

    Raises:
      DataError: an unknown kind, x not 2-D, or (ufldl) data with no spread to scale.
    """
    x = _matrix(x)
    if kind == "none":
        return {"kind": "none"}
    if kind == "ufldl":
        centred = x - x.mean(axis=1, keepdims=True)
        std = float(centred.std(ddof=1)) if centred.size > 1 else 0.0
        if not std > 0:
            raise DataError(
                "normalize ufldl: every example is constant, so there is no spread to scale. "
                "Use --normalize none or standardize.")
        return {"kind": "ufldl", "std": std}
    if kind == "standardize":
        std = x.std(axis=0)
        return {"kind": "standardize", "mean": [float(v) for v in x.mean(axis=0)],
                "std": [float(v) if v > 0 else 1.0 for v in std]}
    raise DataError(f"unknown normalization {kind!r}; choose one of {list(NORMALIZATIONS)}.")


def apply(record: dict, x) -> np.ndarray:
    """Applies a record of ``fit`` to any data of the same width, with the fitted numbers.

    Returns x itself for ``"none"``; otherwise a new array of x's floating dtype (float32 for
    integer data), computed in float64.

    Raises:
      DataError: a record of no known kind, x not 2-D, or a standardize record fitted on
        another number of features.
    """
    kind = record.get("kind")
    if kind == "none":
        return x
    x = _matrix(x)
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float32)
    if kind == "ufldl":
        limit = UFLDL_STDS * record["std"]
        centred = x - x.mean(axis=1, keepdims=True, dtype=np.float64)
        scaled = np.clip(centred, -limit, limit) / limit
        return ((scaled + 1.0) * (HIGH - LOW) / 2.0 + LOW).astype(dtype, copy=False)
    if kind == "standardize":
        mean, std = per_feature(record, x.shape[1])
        return ((x - mean) / std).astype(dtype, copy=False)
    raise _unknown(record)


def per_feature(record: dict, width: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The record as the per-feature map x' = (x - mean) / std: (mean, std), each (width,)
    float64, zeros and ones for ``"none"``. None for ``"ufldl"``, which is no such map (each
    example loses its own mean, and values are clipped), so it cannot be folded into weights or
    undone.

    Raises:
      DataError: a record of no known kind (as ``apply``), or a standardize record fitted on
        another number of features.
    """
    kind = record.get("kind")
    if kind == "none":
        return np.zeros(width), np.ones(width)
    if kind == "ufldl":
        return None
    if kind != "standardize":
        raise _unknown(record)
    mean = np.asarray(record["mean"], np.float64)
    if mean.shape[0] != width:
        raise DataError(
            f"the standardize normalization was fitted on {mean.shape[0]} features, but "
            f"this data has {width} per example; give data of the training data's width.")
    return mean, np.asarray(record["std"], np.float64)


def _unknown(record: dict) -> DataError:
    return DataError(f"unknown normalization record {record!r}; its kind must be one of "
                     f"{list(NORMALIZATIONS)}.")


def _matrix(x) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2:
        raise DataError(f"normalization takes an (M, N) array, one example per row; got shape "
                        f"{x.shape}.")
    return x
