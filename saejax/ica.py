"""Orthonormal ICA as UFLDL's older exercise sets it (ICAExercise.m, orthonormalICACost.m), with a
hand-written gradient and projected gradient descent whose backtracking line search decreases J.

For whitened patches x_k (rows of x, (m, n)) and weights W (k, n), k <= n, the exercise
minimizes the smoothed L1 norm of the responses subject to orthonormal rows:

    A = x W^T (m, k)      J(W) = sum_{k,i} sqrt(A_ki^2 + epsilon) / m      s.t.  W W^T = I
    dJ/dW = (A / sqrt(A^2 + epsilon))^T x / m

J is the mean over patches where the exercise sums: the exercise whitens to X X^T = I over its m
patches (no 1/m in its sigma), so its patches are 1 / sqrt(m) of unit-covariance ones; its sum
with epsilon is sqrt(m) times this mean with epsilon m, and has the same minimizer.

The constraint is kept by projection, W <- (W W^T)^(-1/2) W (``orthonormalize``): the nearest
matrix with orthonormal rows. ``train`` steps W(t) = P(W - t g) and accepts t when
J(W(t)) <= J(W) - alpha <g, W - W(t)>, an Armijo test against the decrease that the step
actually takes (for small t, W - W(t) ~ t times g's tangent part, so the test is met unless W is
stationary); else t shrinks by 0.9, and after each accepted step it grows by 1.1. The starter
loop of the exercise (UFLDL wiki "Exercise:Independent Component Analysis") tries W - alpha g
with t nowhere in the trial point, so backtracking re-evaluates one fixed step while only its
threshold shrinks: it takes that step once the required decrease has decayed below rounding,
or loops forever if the step raises J. And it asks for a decrease of alpha t ||g||^2, counting
g's component normal to the constraint, which the projection removes: where that component
holds more than 1 - alpha of ||g||^2 (``tangent_share`` below alpha), as it does on whitened
patches from the first step, no small step passes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from saejax import differences as diff
from saejax.checks import check_count, check_rows

ALPHA, SHRINK, GROW = 0.5, 0.9, 1.1  # ICAExercise.m's alpha and its t *= 0.9, t *= 1.1


def cost(W, x_MxN, epsilon):
    """J of the weights ``W`` (k, n), the constraint not enforced (for autodiff)."""
    A = x_MxN @ W.T
    return jnp.sum(jnp.sqrt(A * A + epsilon)) / x_MxN.shape[0]


def cost_and_grad(W, x_MxN, epsilon):
    """J and its hand-written gradient (the module docstring's equations; no jax.grad)."""
    A = x_MxN @ W.T                                   # m, k
    smooth = jnp.sqrt(A * A + epsilon)
    return jnp.sum(smooth) / x_MxN.shape[0], (A / smooth).T @ x_MxN / x_MxN.shape[0]


def orthonormalize(W):
    """(W W^T)^(-1/2) W, the nearest matrix with orthonormal rows (W of full row rank), from
    the eigendecomposition W W^T = U diag(d) U^T as U diag(d^(-1/2)) U^T W."""
    d, U = jnp.linalg.eigh(W @ W.T)
    return (U / jnp.sqrt(d)[None, :]) @ (U.T @ W)


def initial_weights(n: int, num_features: int, seed: int = 0, dtype=jnp.float32):
    """The exercise's start, rand(numFeatures, visibleSize) (uniform in [0, 1)), projected;
    twice, because that matrix is ill-conditioned (its rows share a large mean) and one
    projection in float32 leaves W W^T off I where d is small."""
    return orthonormalize(orthonormalize(
        jax.random.uniform(jax.random.key(seed), (num_features, n), dtype)))


def line_search(W, J, g, t, x, epsilon, max_tries: int = 100):
    """One projected step from orthonormal W with cost J and gradient g, backtracking from t.

    Returns (W', J', the accepted t, the number of trials). When no trial passes within
    ``max_tries`` (W stationary to rounding), W and J come back unchanged: J never rises."""

    def trial(t):
        Wt = orthonormalize(W - t * g)
        Jt = cost(Wt, x, epsilon)
        decrease = jnp.sum(g * (W - Wt))  # first-order decrease along the projected step
        return Wt, Jt, (decrease > 0) & (Jt <= J - ALPHA * decrease)

    def shrink(state):
        t, tries, *_ = state
        return (SHRINK * t, tries + 1, *trial(SHRINK * t))

    state = jax.lax.while_loop(lambda s: ~s[4] & (s[1] < max_tries), shrink, (t, 1, *trial(t)))
    t, tries, Wt, Jt, ok = state
    return jnp.where(ok, Wt, W), jnp.where(ok, Jt, J), t, tries


def _fit_impl(W0, x, epsilon, t0, steps: int):
    def step(carry, _):
        W, J, g, t = carry
        W, J_new, t, tries = line_search(W, J, g, t, x, epsilon)
        _, g = cost_and_grad(W, x, epsilon)
        return (W, J_new, g, GROW * t), (J, t, tries, tangent_share(W, g))

    J0, g0 = cost_and_grad(W0, x, epsilon)
    (W, J, _, _), trace = jax.lax.scan(step, (W0, J0, g0, t0), None, length=steps)
    return W, J, trace


_fit = jax.jit(_fit_impl, static_argnames="steps")  # by call: mutmut reaches the body


def tangent_share(W, g):
    """||g's tangent part||^2 / ||g||^2 at orthonormal W: the share of the gradient that a
    projected step can follow (the rest, sym(g W^T) W, only moves W off the constraint)."""
    S = g @ W.T
    tangent = g - 0.5 * (S + S.T) @ W
    return jnp.sum(tangent * tangent) / jnp.sum(g * g)


def train(x_MxN, num_features: int, epsilon: float = 0.02, steps: int = 1000, t0: float = 1.0,
          seed: int = 0):
    """Orthonormal ICA's weights by ``steps`` projected gradient steps (``line_search``).

    Args:
      x_MxN: whitened patches, one per row (unit covariance: see the module docstring); in
        float32 the rounding of J can hide the last steps' decrease, and each such step then
        backtracks ``line_search``'s 100 trials without moving: float64 is the safe choice.
      num_features: k, at least 1 and at most the patch dimension n.
      epsilon: the smoothing of |a| as sqrt(a^2 + epsilon), at the patches' unit scale.
      steps: projected gradient steps, at least 1; t0: the first trial step.
      seed: the start's draw (``initial_weights``).

    Returns:
      (W (k, n) with orthonormal rows, {"cost": J before each step and after the last,
      "t": the accepted step, "tries": trials per step, "tangent_share": ``tangent_share`` after
      each step}).
    """
    check_rows(x_MxN)
    num_features = check_count("num_features", num_features, "positive_int")
    steps = check_count("steps", steps)
    x = jnp.asarray(x_MxN)
    if num_features > x.shape[1]:
        raise ValueError(f"orthonormal rows cannot outnumber the dimensions: {num_features} "
                         f"features for patches of {x.shape[1]}.")
    W0 = initial_weights(x.shape[1], num_features, seed, x.dtype)
    W, J, (values, t, tries, share) = _fit(W0, x, jnp.asarray(epsilon, x.dtype),
                                           jnp.asarray(t0, x.dtype), steps)
    return W, {"cost": np.append(np.asarray(values), float(J)), "t": np.asarray(t),
               "tries": np.asarray(tries), "tangent_share": np.asarray(share)}


def random_orthonormal(n: int, num_features: int, seed: int = 0) -> np.ndarray:
    """A random W with orthonormal rows (Gaussian, projected): the baseline the learned W is
    measured against."""
    g = np.random.default_rng(seed).normal(size=(num_features, n))
    d, U = np.linalg.eigh(g @ g.T)  # in NumPy's float64 whatever JAX's precision
    return (U / np.sqrt(d)) @ (U.T @ g)


def problem(dtype=jnp.float64, seed: int = 0):
    """A small check problem: 4 orthonormal filters on 20 random 6-dimensional patches."""
    k = jax.random.split(jax.random.key(seed), 2)
    return (orthonormalize(jax.random.normal(k[0], (4, 6), dtype)),
            jax.random.normal(k[1], (20, 6), dtype))


def check(W, x_MxN, epsilon: float = 1e-2, eps=None) -> dict:
    """The three-way check of ``cost_and_grad`` (``differences.three_way``); epsilon 1e-2 rather
    than the exercise's small one, so that finite differences see a smooth |a|."""
    return diff.three_way(lambda w: cost(w, x_MxN, epsilon),
                          lambda w: cost_and_grad(w, x_MxN, epsilon)[1], W, eps)
