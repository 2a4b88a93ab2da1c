"""The members of a sweep: one value per axis (``schema.AXES``) each, checked by the config's
own rules before anything compiles."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from saejax.config import TrainConfig, check_own_knobs, check_value, rule_of
from saejax.schema import AXES, HYPER, KNOBS


@dataclass(frozen=True)
class Grid:
    """The sweep's members: one tuple of values per axis, all of the same length G."""

    rho: tuple
    beta: tuple
    lam: tuple
    l1: tuple
    k: tuple
    l0: tuple
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
    if axis in ("seed", "k"):  # a whole float (1.0) names a seed or a k too
        values = tuple(int(v) if isinstance(v, float) and v.is_integer() else v for v in values)
    for v in values:
        check_value(axis, v, rule_of(axis))
    return values


def make_grid(config: TrainConfig, rho=None, beta=None, lam=None, lr=None, seed=None,
              mode: str = "product", *, l1=None, k=None, l0=None) -> Grid:
    """Builds and validates the grid; unset axes take the config's single value.

    Args:
      config: the base settings every member shares; ``config.arch`` says which knobs
        (``schema.KNOBS``) the sweep may vary.
      rho, beta: values of the sigmoid network's sparsity target and weight (required for it).
      lam, lr, seed: optional values of the weight decay, learning rate and seed.
      mode: ``"product"`` (cartesian product of the axes) or ``"points"`` (the given lists are
        zipped; they must all have the same length).
      l1, k, l0: values of relu-l1's, topk's or batchtopk's, and jumprelu's knob.

    Raises:
      ValueError: an empty axis, a value its setting does not allow (rho outside (0, 1), a
        negative beta, lam, l1 or l0, a non-positive lr, k not a whole number from 1 to
        n_hidden, a seed that is not a whole number in [0, 2**31)), a knob of another
        architecture, no axis at all, lists of different lengths in points mode, or an
        unknown mode.
    """
    given = {"rho": rho, "beta": beta, "lam": lam, "l1": l1, "k": k, "l0": l0, "lr": lr,
             "seed": seed}
    _check_knobs(config.arch, given)
    values = {a: _values(a, v) for a, v in given.items() if v is not None}
    for v in values.get("k", ()):
        config.check_k(v)
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


def _check_knobs(arch: str, given: dict) -> None:
    """A sweep varies its architecture's knobs (the sigmoid network needs rho and beta), never
    another architecture's, and at least one axis."""
    check_own_knobs(arch, [a for a in HYPER if given[a] is not None])
    if arch == "sigmoid":
        for axis in KNOBS[arch]:
            if given[axis] is None:
                raise ValueError(f"a sweep needs values of {axis}; pass at least one.")
    if all(v is None for v in given.values()):
        raise ValueError(f"a sweep needs values of at least one axis, e.g. "
                         f"{' or '.join(KNOBS[arch])}.")
