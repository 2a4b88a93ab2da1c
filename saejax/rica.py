"""Reconstruction ICA (RICA) as the newer UFLDL tutorial sets it (rica/softICACost.m), with a
hand-written gradient, and its convolutional features (stl/feedfowardRICA.m).

For patches x_k (rows of x, (m, n)) and weights W (k, n), whose rows are first scaled to unit
length as l2rowscaled does, V = W / sqrt(||W_i||^2 + 1e-5):

    A = V x^T (k, m)      R = V^T A - x^T (n, m)
    J = (lambda sum sqrt(A^2 + epsilon) + 1/2 ||R||_F^2) / m

and backwards (the mean over patches keeps J's scale independent of m; the minimizer is that of
the exercise's sum):

    dJ/dV = (lambda A / sqrt(A^2 + epsilon) x + A R^T + V R x) / m
    dJ/dW = dJ/dV / l_i - V_i (dJ/dV_i . W_i) / l_i^2,   l_i = sqrt(||W_i||^2 + 1e-5)
                                                          (l2rowscaledg)

``features`` convolves images with the learned filters (no bias) and pools each p x p region
by the square-square-root, sqrt(sum resp^2 + epsilon).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from saejax import differences as diff
from saejax.checks import check_count, check_rows
from saejax.cnn import convolve
from saejax.optim.fit import lbfgs_scan

NORM_EPS = 1e-5  # l2rowscaled's normeps


def unit_rows(W):
    """l2rowscaled(W, 1): each row over sqrt(its squared norm + 1e-5)."""
    return W / jnp.sqrt(jnp.sum(W * W, axis=1, keepdims=True) + NORM_EPS)


def cost(W, x_MxN, lam, epsilon):
    """J of the weights ``W`` (k, n) before their rows are scaled (for autodiff)."""
    V = unit_rows(W)
    A = V @ x_MxN.T
    R = V.T @ A - x_MxN.T
    return (lam * jnp.sum(jnp.sqrt(A * A + epsilon)) + 0.5 * jnp.sum(R * R)) / x_MxN.shape[0]


def cost_and_grad(W, x_MxN, lam, epsilon):
    """J and its hand-written gradient (the module docstring's equations; no jax.grad)."""
    m = x_MxN.shape[0]
    norms = jnp.sqrt(jnp.sum(W * W, axis=1, keepdims=True) + NORM_EPS)
    V = W / norms
    A = V @ x_MxN.T                                   # k, m
    R = V.T @ A - x_MxN.T                             # n, m
    smooth = jnp.sqrt(A * A + epsilon)
    J = (lam * jnp.sum(smooth) + 0.5 * jnp.sum(R * R)) / m
    dV = ((lam * A / smooth) @ x_MxN + A @ R.T + (V @ R) @ x_MxN) / m
    dW = dV / norms - V * (jnp.sum(dV * W, axis=1, keepdims=True) / norms**2)
    return J, dW


def preprocess(patches_MxN, zca_epsilon: float = 1e-4, normalize: bool = True):
    """The exercise's preprocessing (zca2.m, runSoftICA.m): ZCA whitening with ``zca_epsilon``
    and no mean removal (``data.PCA`` of the patches as they are), then, with ``normalize``,
    each patch divided by sqrt(||x||^2 + 1e-8) as runSoftICA.m does (stlExercise.m's answer
    passes the whitened patches on as they are: ``normalize=False``). Returns (x, the ZCA
    matrix V)."""
    from saejax.data import PCA

    V = PCA.fit(patches_MxN).zca_matrix(zca_epsilon)
    white = patches_MxN @ V
    if not normalize:
        return white, V
    return white / np.sqrt(np.sum(white**2, axis=1, keepdims=True) + 1e-8), V


def initial_weights(n: int, num_features: int, seed: int = 0, dtype=jnp.float32):
    """The exercise's start: 0.01 N(0, 1), each row scaled to unit length."""
    W0 = 0.01 * jax.random.normal(jax.random.key(seed), (num_features, n), dtype)
    return W0 / jnp.linalg.norm(W0, axis=1, keepdims=True)


def _fit_impl(W0, x, lam, epsilon, steps: int):
    return lbfgs_scan(lambda W: cost(W, x, lam, epsilon), W0, steps,
                      value_and_grad=lambda W: cost_and_grad(W, x, lam, epsilon),
                      memory_size=100, max_linesearch_steps=25)


_fit = jax.jit(_fit_impl, static_argnames="steps")  # by call: mutmut reaches the body


def train(x_MxN, num_features: int, lam: float = 5e-4, epsilon: float = 1e-2,
          steps: int = 1000, seed: int = 0):
    """RICA's weights (num_features, n) from the tutorial's start (0.01 N(0, 1), rows scaled to
    unit length) by ``steps`` L-BFGS iterations (optax's, 100 pairs as minFunc keeps, on the
    hand-written gradient). Returns (W with unit rows, J at the start of every iteration and
    after the last: ``steps + 1`` values, the last of W before its rows are scaled)."""
    check_rows(x_MxN)
    num_features = check_count("num_features", num_features, "positive_int")
    steps = check_count("steps", steps)
    x = jnp.asarray(x_MxN)
    W0 = initial_weights(x.shape[1], num_features, seed, x.dtype)
    lam, epsilon = jnp.asarray(lam, x.dtype), jnp.asarray(epsilon, x.dtype)
    W, values, final = _fit(W0, x, lam, epsilon, steps)
    return unit_rows(W), np.append(np.asarray(values), float(final))


def square_sqrt_pool(resp_BxFxCxC, pool: int, epsilon):
    """sqrt(sum of squares over each pool x pool block + epsilon), feedfowardRICA's pooling."""
    b, f, c, _ = resp_BxFxCxC.shape
    sq = (resp_BxFxCxC ** 2).reshape(b, f, c // pool, pool, c // pool, pool).sum(axis=(3, 5))
    return jnp.sqrt(sq + epsilon)


def _features_impl(x, filters, pool: int, epsilon):
    return square_sqrt_pool(convolve(x, filters), pool, epsilon).reshape(x.shape[0], -1)


_features = jax.jit(_features_impl, static_argnames="pool")  # by call: mutmut reaches the body


def features(images_BxDxD, filters_FxKxK, pool: int, epsilon, batch: int = 1000) -> np.ndarray:
    """The images convolved with the filters (no bias) and square-square-root pooled, one row
    of F (C/p)^2 features per image, in batches (one compiled program per batch shape)."""
    return np.concatenate([np.asarray(_features(jnp.asarray(images_BxDxD[i:i + batch]),
                                                filters_FxKxK, pool, epsilon))
                           for i in range(0, len(images_BxDxD), batch)])


def problem(dtype=jnp.float64, seed: int = 0):
    """A small check problem: 6 filters on 20 random 9-dimensional patches."""
    k = jax.random.split(jax.random.key(seed), 2)
    return (jax.random.normal(k[0], (6, 9), dtype), jax.random.normal(k[1], (20, 9), dtype))


def check(W, x_MxN, lam: float = 0.3, epsilon: float = 1e-2, eps=None) -> dict:
    """The three-way check of ``cost_and_grad`` (``differences.three_way``)."""
    return diff.three_way(lambda w: cost(w, x_MxN, lam, epsilon),
                          lambda w: cost_and_grad(w, x_MxN, lam, epsilon)[1], W, eps)
