"""The NumPy baseline of the benchmarks: J and its gradient, vectorized as a careful NumPy user would.

It mirrors sparseAutoencoderCost.m: one forward pass, one backward pass, every example at once,
KL penalty. It works in the dtype of its inputs (float32 stays float32).
"""

from __future__ import annotations

import numpy as np


def value_and_grad(params: dict, x: np.ndarray, rho: float, beta: float, lam: float):
    """J and dJ/dparams for the KL-sparse autoencoder; x is (m, n), params as in saejax."""
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    m = x.shape[0]
    a2 = 1.0 / (1.0 + np.exp(-(x @ W1.T + b1)))
    a3 = 1.0 / (1.0 + np.exp(-(a2 @ W2.T + b2)))
    rho_hat = a2.mean(axis=0)
    err = a3 - x
    J = (
        0.5 * np.sum(err * err) / m
        + 0.5 * lam * (np.sum(W1 * W1) + np.sum(W2 * W2))
        + beta * np.sum(rho * np.log(rho / rho_hat) + (1 - rho) * np.log((1 - rho) / (1 - rho_hat)))
    )
    delta3 = err * a3 * (1.0 - a3) / m
    sparse = beta * (-rho / rho_hat + (1 - rho) / (1 - rho_hat)) / m
    delta2 = (delta3 @ W2 + sparse) * a2 * (1.0 - a2)
    grads = {
        "W1": delta2.T @ x + lam * W1,
        "b1": delta2.sum(axis=0),
        "W2": delta3.T @ a2 + lam * W2,
        "b2": delta3.sum(axis=0),
    }
    return J, grads


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
