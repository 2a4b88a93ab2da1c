"""Topographic sparse coding as UFLDL's exercise sets it (sparseCodingExercise.m,
sparseCodingFeatureCost.m, sparseCodingWeightCost.m), with the feature step's gradient written
by hand and the weight step in closed form.

The exercise's convention is kept: patches are the columns of X (n, m), the basis A (n, k) and
the codes S (k, m); V (g, k) groups the features (a 1 where feature j is in group i):

    feature cost   J(S) = ||A S - X||_F^2 / m + lambda sum sqrt(V (S o S) + epsilon)
    its gradient   dJ/dS = 2 A^T (A S - X) / m + lambda (V^T (1 / sqrt(V (S o S) + epsilon))) o S
    weight cost    J(A) = ||A S - X||_F^2 / m + gamma ||A||_F^2
    weight step    A = X S^T (S S^T + gamma m I)^-1    (where dJ/dA = 0)

Features sit on a square torus (121 on 11 x 11); each group is one 3 x 3 neighbourhood of it,
wrapping around the edges, so neighbouring features share the penalty and are pushed to fire
together: the topography. ``learn`` alternates, as the exercise does: a fresh minibatch, codes
started at A^T X scaled by each basis vector's squared norm, 20 L-BFGS iterations on the codes,
then the weights in closed form.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from saejax import differences as diff
from saejax.checks import check_count, check_rows
from saejax.optim.fit import lbfgs_scan


def group_matrix(side: int = 11, pool: int = 3) -> np.ndarray:
    """(side^2, side^2): row i marks the pool x pool neighbourhood of feature i on the torus
    (the exercise's donut: feature (r, c) groups (r..r+pool-1, c..c+pool-1) mod side)."""
    groups = np.zeros((side, side, side, side))
    for r in range(side):
        for c in range(side):
            for dr in range(pool):
                for dc in range(pool):
                    groups[r, c, (r + dr) % side, (c + dc) % side] = 1.0
    return groups.reshape(side * side, side * side)


def feature_cost(S, A, X, V, lam, epsilon):
    """J of the codes S (k, m) for fixed weights A (for autodiff)."""
    m = X.shape[1]
    return (jnp.sum((A @ S - X) ** 2) / m
            + lam * jnp.sum(jnp.sqrt(V @ (S * S) + epsilon)))


def feature_cost_and_grad(S, A, X, V, lam, epsilon):
    """J of the codes and its hand-written gradient (the module docstring's equations)."""
    m = X.shape[1]
    residual = A @ S - X
    smooth = jnp.sqrt(V @ (S * S) + epsilon)
    J = jnp.sum(residual**2) / m + lam * jnp.sum(smooth)
    return J, 2.0 * A.T @ residual / m + lam * (V.T @ (1.0 / smooth)) * S


def weight_cost(A, S, X, gamma):
    """J of the weights for fixed codes: reconstruction and weight decay."""
    return jnp.sum((A @ S - X) ** 2) / X.shape[1] + gamma * jnp.sum(A * A)


def weight_step(S, X, gamma):
    """The weights that minimize ``weight_cost``: X S^T (S S^T + gamma m I)^-1."""
    k, m = S.shape
    return jnp.linalg.solve(S @ S.T + gamma * m * jnp.eye(k, dtype=S.dtype), S @ X.T).T


def objective(A, S, X, V, lam, epsilon, gamma) -> dict:
    """The terms the exercise prints: residue, sparsity, weight and their sum."""
    terms = {"residue": jnp.sum((A @ S - X) ** 2) / X.shape[1],
             "sparsity": lam * jnp.sum(jnp.sqrt(V @ (S * S) + epsilon)),
             "weight": gamma * jnp.sum(A * A)}
    return {**terms, "objective": terms["residue"] + terms["sparsity"] + terms["weight"]}


def _round_impl(A, X_all, key, V, lam, epsilon, gamma, batch: int, feature_steps: int):
    """One alternation: a fresh minibatch, the codes by L-BFGS, the weights in closed form."""
    X = X_all[:, jax.random.choice(key, X_all.shape[1], (batch,), replace=False)]
    S0 = (A.T @ X) / jnp.sum(A * A, axis=0)[:, None]
    S, _, _ = lbfgs_scan(lambda s: feature_cost(s, A, X, V, lam, epsilon), S0, feature_steps,
                         value_and_grad=lambda s: feature_cost_and_grad(s, A, X, V, lam, epsilon))
    A = weight_step(S, X, gamma)
    return A, S, X, objective(A, S, X, V, lam, epsilon, gamma)


# by call, not as a decorator: mutmut reaches the body
_round = jax.jit(_round_impl, static_argnames=("batch", "feature_steps"))


def learn(patches_MxN, num_features: int = 121, pool: int = 3, lam: float = 5e-5,
          epsilon: float = 1e-5, gamma: float = 1e-2, batch: int = 2000, rounds: int = 200,
          feature_steps: int = 20, seed: int = 0):
    """The exercise's alternation (sparseCodingExercise.m's STEP 3) on ``patches`` (one per row).
    A starts uniform in [0, 1) as the exercise's rand. Returns (A (n, k), the last batch's codes
    S (k, batch) and patches X (n, batch), the objective's terms after every round)."""
    check_rows(patches_MxN, "patches")
    for name, value in (("num_features", num_features), ("batch", batch), ("rounds", rounds),
                        ("feature_steps", feature_steps)):
        check_count(name, value, "positive_int")
    if batch > len(patches_MxN):
        raise ValueError(f"batch {batch} exceeds the {len(patches_MxN)} patches: each round "
                         "draws a batch of distinct patches. Pass batch <= "
                         f"{len(patches_MxN)}, or more patches.")
    side = int(round(np.sqrt(num_features)))
    if side * side != num_features:
        raise ValueError(f"num_features must be a perfect square (features on a square torus), "
                         f"got {num_features}.")
    X_all = jnp.asarray(patches_MxN).T
    V = jnp.asarray(group_matrix(side, pool), X_all.dtype)
    key = jax.random.key(seed)
    key, init = jax.random.split(key)
    A = jax.random.uniform(init, (X_all.shape[0], num_features), X_all.dtype)
    history = []
    for _ in range(rounds):
        key, sub = jax.random.split(key)
        A, S, X, terms = _round(A, X_all, sub, V, lam, epsilon, gamma, batch, feature_steps)
        history.append({k: float(v) for k, v in terms.items()})
    return A, S, X, history


def topography(A, side: int = 11) -> dict:
    """How topographic the basis is: the mean |cosine| between each basis vector and its 8
    torus neighbours, against the mean over all other pairs."""
    U = np.asarray(A) / np.linalg.norm(np.asarray(A), axis=0, keepdims=True)
    cos = np.abs(U.T @ U)
    near = np.zeros_like(cos, dtype=bool)
    for r in range(side):
        for c in range(side):
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    if dr or dc:
                        near[r * side + c, ((r + dr) % side) * side + (c + dc) % side] = True
    far = ~near & ~np.eye(len(cos), dtype=bool)
    return {"neighbours": float(cos[near].mean()), "others": float(cos[far].mean())}


def check(S, A, X, V, lam: float = 0.3, epsilon: float = 1e-2, eps=None) -> dict:
    """The three-way check of ``feature_cost_and_grad`` (``differences.three_way``); epsilon
    1e-2 as the exercise's own check uses, and lambda 0.3, so that the sparsity term's
    gradient weighs as much as the reconstruction's (at the exercise's 5e-5 a wrong sparsity
    gradient would hide below the check's tolerance)."""
    return diff.three_way(lambda s: feature_cost(s, A, X, V, lam, epsilon),
                          lambda s: feature_cost_and_grad(s, A, X, V, lam, epsilon)[1], S, eps)


def problem(dtype=jnp.float64, seed: int = 0):
    """A small check problem: 16 features on a 4 x 4 torus, 8-pixel patches, 10 of them;
    random groups as the exercise's topographic check draws them."""
    k = jax.random.split(jax.random.key(seed), 4)
    S = jax.random.normal(k[0], (16, 10), dtype)
    A = jax.random.normal(k[1], (8, 16), dtype)
    X = jax.random.normal(k[2], (8, 10), dtype)
    V = jax.random.uniform(k[3], (5, 16), dtype)
    return S, A, X, V
