"""The members of a sweep: one value per axis (``schema.AXES``) each, checked by the config's
own rules before anything compiles."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from saejax.config import TrainConfig, check_value, rule_of
from saejax.schema import AXES


@dataclass(frozen=True)
class Grid:
    """The sweep's members: one tuple of values per axis, all of the same length G."""

    rho: tuple
    beta: tuple
    lam: tuple
    lr: tuple
    seed: tuple

    def __len__(self) -> int:
        return len(self.rho)

    def member(self, i: int) -> dict:
        return {a: getattr(self, a)[i] for a in AXES}


def _values(axis: str, given) -> tuple:
    """The values of one axis as a tuple of Python numbers, each checked by its setting's rule."""
    values = tuple(np.atleast_1d(np.asarray(given)).tolist())
    if not values:
        raise ValueError(f"the {axis} grid is empty; pass at least one value.")
    if axis == "seed":  # a whole float (1.0) names a seed too
        values = tuple(int(v) if isinstance(v, float) and v.is_integer() else v for v in values)
    for v in values:
        check_value(axis, v, rule_of(axis))
    return values


def make_grid(config: TrainConfig, rho, beta, lam=None, lr=None, seed=None,
              mode: str = "product") -> Grid:
    """Builds and validates the grid; unset axes take the config's single value.

    Args:
      config: the base settings every member shares.
      rho, beta: values of the sparsity target and weight (required).
      lam, lr, seed: optional values of the weight decay, learning rate and seed.
      mode: ``"product"`` (cartesian product of the axes) or ``"points"`` (the given lists are
        zipped; they must all have the same length).

    Raises:
      ValueError: an empty axis, a value its setting does not allow (rho outside (0, 1), a
        negative beta or lam, a non-positive lr, a seed that is not a whole number in
        [0, 2**31)), lists of different lengths in points mode, or an unknown mode.
    """
    given = {"rho": rho, "beta": beta, "lam": lam, "lr": lr, "seed": seed}
    for axis in ("rho", "beta"):
        if given[axis] is None:
            raise ValueError(f"a sweep needs values of {axis}; pass at least one.")
    values = {a: _values(a, v) for a, v in given.items() if v is not None}
    if mode == "product":
        axes = [a for a in AXES if a in values]
        rows = list(itertools.product(*(values[a] for a in axes)))
        columns = {a: tuple(r[i] for r in rows) for i, a in enumerate(axes)}
    elif mode == "points":
        lengths = {a: len(v) for a, v in values.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(
                f"in points mode every list must have the same length; got lengths {lengths}. "
                "Use product mode for a cartesian grid."
            )
        columns = dict(values)
    else:
        raise ValueError(f"mode must be 'product' or 'points', got {mode!r}.")
    g = len(next(iter(columns.values())))
    for axis in AXES:
        columns.setdefault(axis, (getattr(config, axis),) * g)
    return Grid(**{a: tuple(columns[a]) for a in AXES})
