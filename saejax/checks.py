"""Validation of inputs at the public entry points, with errors that say what to do.

Shapes are static and always checked. Values (NaN in x, rho outside (0, 1), ...) are checked
only when concrete: a tracer inside a user's ``jit`` or ``vmap`` has no value to look at, so
such values are validated where they enter (for example by a sweep's grid).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from saejax import penalties
from saejax.config import check_value
from saejax.model import check_decoder, param_keys


def _concrete(value) -> np.ndarray | None:
    """The value as a NumPy array, or None when it is a tracer."""
    if isinstance(value, jax.core.Tracer):
        return None
    return np.asarray(value)


def check_params(params, tied: bool = False) -> tuple[int, int]:
    """Checks the params dict's keys and shapes; returns ``(n_visible, n_hidden)``."""
    keys = param_keys(tied)
    if not isinstance(params, dict):
        raise ValueError(
            f"params must be a dict with keys {list(keys)}, got {type(params).__name__}. "
            "Create one with saejax.init_params."
        )
    missing = [k for k in keys if k not in params]
    extra = [k for k in params if k not in keys]
    if missing or extra:
        hint = " (tied weights hold no W2)" if tied else ""
        if set(params) == set(param_keys(not tied)):  # the other variant's params: say so
            raise ValueError(
                "these params hold no W2 (tied weights): pass tied=True." if not tied else
                "these params hold a W2 (untied weights): pass tied=False, or create them "
                "with saejax.init_params(..., tied=True).")
        raise ValueError(
            f"params must have exactly the keys {list(keys)}{hint}; missing {missing}, "
            f"unexpected {extra}. Create params with saejax.init_params(..., tied={tied})."
        )
    w1 = jnp.shape(params["W1"])
    if len(w1) != 2:
        raise ValueError(f"params['W1'] must be 2-D (n_hidden, n_visible), got shape {w1}.")
    h, n = w1
    expected = {"W1": (h, n), "b1": (h,), "W2": (n, h), "b2": (n,)}
    for key in keys:
        shape = expected[key]
        if tuple(jnp.shape(params[key])) != shape:
            raise ValueError(
                f"params['{key}'] has shape {tuple(jnp.shape(params[key]))}, but W1's shape "
                f"{w1} implies {shape} (n_hidden={h}, n_visible={n})."
            )
    return n, h


def check_x(x, n_visible: int, name: str = "x"):
    """Checks that x is a real numeric (M, n_visible) array with M >= 1 and, when concrete,
    finite."""
    kind = getattr(getattr(x, "dtype", None), "kind", None)
    if kind is None and not hasattr(x, "shape"):  # a list: what NumPy would make of it
        kind = np.asarray(x, dtype=object if _ragged(x) else None).dtype.kind
    if kind is not None and kind not in "biuf":
        what = {"c": "complex", "b": "boolean", "O": "object", "U": "string", "S": "bytes"}.get(
            kind, f"dtype kind {kind!r}")
        raise ValueError(f"{name} must be a real numeric array (floats, integers or booleans), got "
                         f"{what} values; convert it first (complex data: take .real or "
                         "abs() yourself, as the analysis needs).")
    shape = jnp.shape(x)
    if len(shape) != 2:
        raise ValueError(
            f"{name} must be 2-D (m examples, n_visible={n_visible} features), one example per "
            f"row; got shape {shape}. Reshape a single example with x[None, :]."
        )
    if shape[1] != n_visible:
        raise ValueError(
            f"{name} has {shape[1]} features per row but the model expects "
            f"{n_visible} (n_visible={n_visible}); got shape {shape}. Pass one example per row "
            "(transpose column-major data), of the width the model was trained on."
        )
    if shape[0] < 1:
        raise ValueError(f"{name} has no examples (shape {shape}): pass at least one row.")
    value = _concrete(x)
    if value is not None and not np.all(np.isfinite(value)):
        bad = int(np.size(value) - np.count_nonzero(np.isfinite(value)))
        raise ValueError(
            f"{name} contains {bad} NaN or Inf values; clean or drop those examples first."
        )


def _ragged(x) -> bool:
    """Whether a nested list has rows of unequal lengths (NumPy refuses to make an array)."""
    try:
        np.asarray(x)
        return False
    except ValueError:
        return True


def check_nonnegative(name: str, value) -> None:
    """Raises unless every (concrete) element of value is finite and >= 0."""
    v = _concrete(value)
    if v is not None and not (np.all(np.isfinite(v)) and np.all(v >= 0)):
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}.")


def check_hyper(hyper) -> None:
    """Checks rho in (0, 1) and beta, lam >= 0, elementwise, where the values are concrete."""
    for field in ("rho", "beta", "lam"):
        if not hasattr(hyper, field):
            raise ValueError(
                f"hyper must be saejax.Hyper(rho, beta, lam); got {type(hyper).__name__}."
            )
    rho = _concrete(hyper.rho)
    if rho is not None and not np.all((rho > 0) & (rho < 1)):
        raise ValueError(
            f"rho must lie strictly inside (0, 1), got {hyper.rho!r}. It is the target mean "
            "activation of a hidden unit, e.g. 0.01 or 0.05."
        )
    check_nonnegative("beta", hyper.beta)
    check_nonnegative("lam", hyper.lam)


def check_penalty(penalty: str) -> None:
    """Raises for an unknown penalty name (the rule of ``penalties.get``)."""
    penalties.get(penalty)


def check_inputs(params, x, hyper=None, penalty: str | None = None,
                 decoder: str = "sigmoid", tied: bool = False):
    """Validates the arguments of a loss or gradient; returns x cast to the params' dtype."""
    check_decoder(decoder)
    n, _ = check_params(params, tied)
    check_x(x, n)
    if hyper is not None:
        check_hyper(hyper)
    if penalty is not None:
        check_penalty(penalty)
    return jnp.asarray(x, dtype=jnp.result_type(params["W1"]))


def check_training_data(data, config, rows: int | None = None) -> np.ndarray:
    """The training data (M, N) as a NumPy array, checked against the config that will train
    on it: finite, 2-D, at least a batch of examples, float64 only when JAX allows it, and
    within [0, 1] for the sigmoid decoder, whose output cannot leave (0, 1).

    Args:
      data: training examples, one per row.
      config: a ``TrainConfig``.
      rows: the examples trained on, when ``data`` holds only some of them (a stream's
        evaluation rows); default: all of ``data``.

    Raises:
      ValueError: naming the problem (a run, a sweep and the command line share these).
    """
    if config.dtype == "float64" and not jax.config.jax_enable_x64:
        raise ValueError("dtype float64 needs jax_enable_x64: call "
                         "jax.config.update('jax_enable_x64', True) first.")
    data = np.asarray(data)
    check_x(data, data.shape[-1] if data.ndim == 2 else -1, name="training data")
    rows = data.shape[0] if rows is None else rows
    if config.batch_size is not None and config.batch_size > rows:
        raise ValueError(f"batch_size {config.batch_size} exceeds the {rows} training "
                         f"examples: pass a batch size of at most {rows} (--batch-size), or more "
                         "data.")
    if config.decoder == "sigmoid":
        # a3 = sigmoid(z3) lies in (0, 1): a target outside [0, 1] cannot be reconstructed, and
        # the squared error would silently stay large however long the run trains.
        low, high = float(data.min()), float(data.max())
        if low < 0.0 or high > 1.0:
            raise ValueError(
                f"the sigmoid decoder's output lies in (0, 1), but the training data range from "
                f"{low:.6g} to {high:.6g}. Use a linear decoder (--decoder linear, "
                "TrainConfig(decoder='linear')), or normalize the data into [0.1, 0.9] "
                "(--normalize ufldl, training_data(..., normalize='ufldl')), or scale it into "
                "[0, 1] yourself.")
    return data


def check_rows(x, name: str = "x") -> None:
    """``check_x`` at x's own width: a real numeric 2-D array of at least one row, finite
    when concrete (for data that no params fix the width of)."""
    shape = jnp.shape(x)
    if len(shape) != 2:
        raise ValueError(f"{name} must be 2-D, one example per row; got shape {shape}.")
    check_x(x, shape[-1], name)


def check_count(name: str, value, rule: str = "step_count") -> int:
    """``value`` as an int, refused by ``config.check_value`` unless it obeys ``rule`` (a count
    rule of ``config.RULES``); NumPy integers count as Python's (a config file gives them)."""
    if isinstance(value, np.integer):
        value = int(value)
    check_value(name, value, rule)
    return value
