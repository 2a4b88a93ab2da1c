"""The one NumPy reference of the sparse autoencoder: J, its terms and a per-example backprop.

Every test that checks a value of J or of its gradient compares saejax with this module, and the
benchmarks' NumPy peer (experiments/peers/numpy_sae.py) takes J from it. It is written from the
CS294A notes, apart from saejax: it imports neither saejax nor jax, and it computes in float64.

Symbols, for m examples x_k (the rows of x, shape (m, N)), N visible and H hidden units:

    z2 = W1 x + b1,  a2 = s(z2)                  s(z) = 1 / (1 + exp(-z)),  W1: (H, N)
    z3 = W2 a2 + b2, a3 = s(z3)                  decoder="linear": a3 = z3,  W2: (N, H)
    tied weights (params without "W2"):          W2 = W1^T
    rho_hat_j = (1/m) sum_k a2_j(x_k)

    J = (1/2m) sum_k ||a3(x_k) - x_k||^2         reconstruction
      + (lam/2) (||W1||_F^2 + ||W2||_F^2)        weight_decay (tied: lam ||W1||_F^2); no biases
      + beta sum_j P(rho_hat_j)                  sparsity

    P(rho_hat)                                          dP/drho_hat
    kl       rho log(rho/rho_hat)                       -rho/rho_hat + (1-rho)/(1-rho_hat)
             + (1-rho) log((1-rho)/(1-rho_hat))
    squared  (rho_hat - rho)^2                          2 (rho_hat - rho)
    l1       rho_hat                                    1

The KL penalty clips rho_hat to [EPS, 1 - EPS], EPS = 1e-6, as saejax does (a saturated float32
sigmoid would give log(0)); outside the interval P is constant, so dP/drho_hat is 0 there.

Backpropagation (``grad``) follows the notes one example at a time: a first pass gives rho_hat,
which every example's delta2 needs; then for each x_k

    delta3 = (a3 - x_k) * a3 (1 - a3)            linear decoder: delta3 = a3 - x_k
    delta2 = (W2^T delta3 + beta dP/drho_hat) * a2 (1 - a2)
    dW1 += delta2 x_k^T,  db1 += delta2,  dW2 += delta3 a2^T,  db2 += delta3

and dJ/dW1 = dW1/m + lam W1, dJ/db1 = db1/m, dJ/dW2 = dW2/m + lam W2, dJ/db2 = db2/m.
Tied: dJ/dW1 = dW1/m + (dW2/m)^T + 2 lam W1 (W1 is both the encoder and, transposed, the decoder).
"""

from __future__ import annotations

import numpy as np

EPS = 1e-6  # the KL penalty's clip of rho_hat, as saejax.RHO_HAT_EPS


def sigmoid(z):
    """s(z) = 1 / (1 + exp(-z))."""
    return 1.0 / (1.0 + np.exp(-z))


def weights(params: dict, dtype=np.float64):
    """(W1, b1, W2, b2, tied) as NumPy arrays; W2 = W1^T (tied) when params hold no "W2".

    ``dtype=None`` keeps the dtype of the params (the float32 benchmark peer).
    """
    W1, b1, b2 = (np.asarray(params[k], dtype) for k in ("W1", "b1", "b2"))
    tied = "W2" not in params
    W2 = W1.T if tied else np.asarray(params["W2"], dtype)
    return W1, b1, W2, b2, tied


def forward(params: dict, x, decoder: str = "sigmoid", dtype=np.float64):
    """(a2 (m, H), a3 (m, N)) for every example at once: a2 = s(x W1^T + b1), a3 = s(a2 W2^T + b2)."""
    W1, b1, W2, b2, _ = weights(params, dtype)
    x = np.asarray(x, dtype)
    a2 = sigmoid(x @ W1.T + b1)
    z3 = a2 @ W2.T + b2
    return a2, (z3 if decoder == "linear" else sigmoid(z3))


def penalty_value(name: str, rho, rho_hat):
    """P(rho_hat_j) per hidden unit for the penalty ``name`` ("kl", "squared" or "l1")."""
    if name == "kl":
        r = np.clip(rho_hat, EPS, 1.0 - EPS)
        return rho * np.log(rho / r) + (1.0 - rho) * np.log((1.0 - rho) / (1.0 - r))
    if name == "squared":
        return (rho_hat - rho) ** 2
    if name == "l1":
        return rho_hat
    raise ValueError(f"unknown penalty {name!r}")


def penalty_derivative(name: str, rho, rho_hat):
    """dP/drho_hat_j per hidden unit; for "kl" zero outside the clip interval (P is flat there)."""
    if name == "kl":
        inside = (rho_hat > EPS) & (rho_hat < 1.0 - EPS)
        r = np.clip(rho_hat, EPS, 1.0 - EPS)
        return np.where(inside, -rho / r + (1.0 - rho) / (1.0 - r), 0.0)
    if name == "squared":
        return 2.0 * (rho_hat - rho)
    if name == "l1":
        return np.ones_like(rho_hat)
    raise ValueError(f"unknown penalty {name!r}")


def terms(params: dict, x, rho, beta, lam, penalty: str = "kl", decoder: str = "sigmoid",
          dtype=np.float64) -> dict:
    """J and its terms from one vectorized forward pass.

    Returns a dict: the scalars ``loss`` (J), ``reconstruction``, ``weight_decay`` and
    ``sparsity``, the vector ``rho_hat`` (H,), and the activations ``a2`` (m, H) and
    ``a3`` (m, N). ``dtype=None`` computes in the dtype of the inputs instead of float64.
    """
    W1, _, W2, _, _ = weights(params, dtype)
    x = np.asarray(x, dtype)
    a2, a3 = forward(params, x, decoder, dtype)
    m = x.shape[0]
    rho_hat = a2.mean(axis=0)
    out = {
        "reconstruction": np.sum((a3 - x) ** 2) / (2 * m),
        # With tied weights ||W2||_F = ||W1||_F, which makes this lam ||W1||_F^2.
        "weight_decay": lam / 2 * (np.sum(W1**2) + np.sum(W2**2)),
        "sparsity": beta * np.sum(penalty_value(penalty, rho, rho_hat)),
    }
    out["loss"] = out["reconstruction"] + out["weight_decay"] + out["sparsity"]
    return {**out, "rho_hat": rho_hat, "a2": a2, "a3": a3}


def grad(params: dict, x, rho, beta, lam, penalty: str = "kl",
         decoder: str = "sigmoid") -> dict:
    """dJ/dparams by backpropagation one example at a time (sparseAutoencoderCost.m), float64.

    Returns a dict with the keys of ``params`` ("W2" only when the weights are not tied).
    """
    W1, b1, W2, b2, tied = weights(params)
    x = np.asarray(x, np.float64)
    m = x.shape[0]
    # rho_hat averages over every example, so it needs a pass of its own before any delta2.
    rho_hat = sum(sigmoid(W1 @ xk + b1) for xk in x) / m
    dP = penalty_derivative(penalty, rho, rho_hat)
    dW1, db1, dW2, db2 = (np.zeros_like(a) for a in (W1, b1, W2, b2))
    for xk in x:
        a2 = sigmoid(W1 @ xk + b1)
        z3 = W2 @ a2 + b2
        if decoder == "linear":
            delta3 = z3 - xk
        else:
            a3 = sigmoid(z3)
            delta3 = (a3 - xk) * a3 * (1 - a3)
        delta2 = (W2.T @ delta3 + beta * dP) * a2 * (1 - a2)
        dW1 += np.outer(delta2, xk)
        db1 += delta2
        dW2 += np.outer(delta3, a2)
        db2 += delta3
    g = {"W1": dW1 / m + lam * W1, "b1": db1 / m, "b2": db2 / m}
    if tied:
        g["W1"] = g["W1"] + dW2.T / m + lam * W1
    else:
        g["W2"] = dW2 / m + lam * W2
    return g
