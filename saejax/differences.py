"""The measures of a gradient check: central finite differences and UFLDL's relative
difference ||a - b|| / ||a + b||, over all parameters flattened and per block, with the
tolerances the checks (``saejax.gradcheck``, ``saejax.architectures.gradcheck``) hold them to.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.flatten_util import ravel_pytree

PAIRS = ("analytic~autodiff", "analytic~numerical", "autodiff~numerical")

# Tolerances on the relative difference, per dtype. float64 is the UFLDL check; float32 central
# differences are limited by rounding (~1e-7 / eps), so they only catch gross errors.
TOLERANCES = {
    "float64": {"analytic~autodiff": 1e-12, "analytic~numerical": 1e-9, "autodiff~numerical": 1e-9},
    "float32": {"analytic~autodiff": 1e-5, "analytic~numerical": 2e-2, "autodiff~numerical": 2e-2},
}
# Finite-difference step of the check, per dtype. Central differences err by eps^2 f'''/6
# (truncation) plus about ulp(J)/eps (rounding); on the default problem UFLDL's 1e-4 leaves
# ~1e-9 of truncation error on the b2 block and 2e-5 about 1e-10 (measured). float32 needs 1e-2.
NUMERICAL_EPS = {"float64": 2e-5, "float32": 1e-2}

def numerical_grad(f, params, eps: float = 1e-4):
    """Central finite differences of a scalar function over every parameter entry.

    UFLDL's computeNumericalGradient: g_i = (f(theta + eps e_i) - f(theta - eps e_i)) / (2 eps).

    Args:
      f: a JAX-traceable function from a pytree like ``params`` to a scalar.
      params: any pytree of arrays (a params dict, or e.g. ``{"x": array}``).
      eps: the step; 1e-4 in float64 as in UFLDL.

    Returns:
      A pytree shaped like ``params`` holding the numerical gradient.
    """
    theta, unravel = ravel_pytree(params)
    theta = np.asarray(theta)
    # One compiled program evaluated at each perturbed point, as UFLDL's loop does. Separate
    # calls keep f(theta + eps e_i) and f(theta - eps e_i) bitwise comparable, so a structural
    # zero of the gradient comes out as exactly zero rather than as rounding noise.
    f_flat = jax.jit(lambda t: f(unravel(t)))
    g = np.empty_like(theta)
    for i in range(theta.size):
        up, down = theta.copy(), theta.copy()
        up[i] += eps
        down[i] -= eps
        g[i] = (float(f_flat(up)) - float(f_flat(down))) / (2 * eps)
    return unravel(g)


def relative_difference(a, b) -> float:
    """||a - b|| / ||a + b|| over all leaves flattened (0 when both are zero)."""
    fa, _ = ravel_pytree(a)
    fb, _ = ravel_pytree(b)
    fa, fb = np.asarray(fa, np.float64), np.asarray(fb, np.float64)
    num, den = np.linalg.norm(fa - fb), np.linalg.norm(fa + fb)
    if den == 0:
        return 0.0 if num == 0 else float("inf")
    return float(num / den)


def block_differences(a: dict, b: dict) -> dict:
    """Relative differences per parameter block, plus ``"all"`` over every block together."""
    out = {k: relative_difference(a[k], b[k]) for k in a}
    out["all"] = relative_difference(a, b)
    return out


def three_way(loss_fn, analytic, params, eps=None) -> dict:
    """The three-way check of a hand-written gradient ``analytic`` (params -> dJ/dparams) of
    ``loss_fn`` (params -> J) against ``jax.grad`` and central differences, as the checks of the
    other networks report it: ``{"dtype", "differences": {pair: ||a-b||/||a+b||},
    "tolerances", "passed"}``."""
    dtype = np.result_type(*(leaf.dtype for leaf in jax.tree.leaves(params))).name
    eps = NUMERICAL_EPS.get(dtype, 1e-4) if eps is None else eps
    g = {"analytic": analytic(params), "autodiff": jax.grad(loss_fn)(params),
         "numerical": numerical_grad(loss_fn, params, eps)}
    tolerances = TOLERANCES.get(dtype, TOLERANCES["float32"])
    found = {pair: relative_difference(*(g[side] for side in pair.split("~"))) for pair in PAIRS}
    return {"dtype": dtype, "differences": found, "tolerances": tolerances,
            "passed": bool(all(found[p] <= tolerances[p] for p in PAIRS))}
