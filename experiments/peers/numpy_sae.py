"""The NumPy baseline of the benchmarks: J and its gradient, vectorized as a careful NumPy user would.

It mirrors sparseAutoencoderCost.m: one forward pass, one backward pass, every example at once,
KL penalty. It works in the dtype of its inputs (float32 stays float32).

J, its forward pass and dKL/drho_hat come from the test suite's NumPy reference
(tests/reference.py), the one written-out statement of the math. Only the backward pass is
written here: the reference's per-example loop is the truth the tests use, far too slow to
time, and the benchmarks time this vectorized form of the same equations
(tests/test_grads.py checks that the two agree).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
import reference  # noqa: E402


def value_and_grad(params: dict, x: np.ndarray, rho: float, beta: float, lam: float):
    """J and dJ/dparams for the KL-sparse autoencoder; x is (m, n), params as in saejax."""
    W1, W2 = params["W1"], params["W2"]
    m = x.shape[0]
    terms = reference.terms(params, x, rho, beta, lam, "kl", dtype=None)
    a2, a3 = terms["a2"], terms["a3"]
    delta3 = (a3 - x) * a3 * (1.0 - a3) / m
    sparse = beta * reference.penalty_derivative("kl", rho, terms["rho_hat"]) / m
    delta2 = (delta3 @ W2 + sparse) * a2 * (1.0 - a2)
    grads = {
        "W1": delta2.T @ x + lam * W1,
        "b1": delta2.sum(axis=0),
        "W2": delta3.T @ a2 + lam * W2,
        "b2": delta3.sum(axis=0),
    }
    return terms["loss"], grads


def ravel(params: dict) -> np.ndarray:
    """The params dict as one float64 vector, in the order W1, b1, W2, b2 (for SciPy)."""
    return np.concatenate([np.asarray(params[k], np.float64).ravel() for k in ("W1", "b1", "W2", "b2")])


def unravel(theta: np.ndarray, n_visible: int, n_hidden: int) -> dict:
    """Inverse of ``ravel``."""
    n, h = n_visible, n_hidden
    sizes = {"W1": (h, n), "b1": (h,), "W2": (n, h), "b2": (n,)}
    out, i = {}, 0
    for key, shape in sizes.items():
        size = int(np.prod(shape))
        out[key] = theta[i : i + size].reshape(shape)
        i += size
    return out
