"""saejax.sparse_coding: the feature step's hand-written gradient against autodiff and finite
differences (float64), the weight step's closed form against its gradient, the torus groups by
hand, and the topography measure on a planted basis."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from saejax import sparse_coding as sc
from saejax.differences import relative_difference


def test_the_feature_gradient_is_autodiffs_and_finite_differences():
    result = sc.check(*sc.problem())
    d = result["differences"]
    assert result["passed"] and d["analytic~autodiff"] < 1e-10 and d["analytic~numerical"] < 1e-7


def test_the_check_would_catch_a_wrong_sparsity_gradient():
    from saejax.differences import three_way

    S, A, X, V = sc.problem()

    def wrong(s):  # the group sum left out: lambda s / sqrt(s^2 + eps) per feature
        g = sc.feature_cost_and_grad(s, A, X, V, 0.3, 1e-2)[1]
        smooth = jnp.sqrt(V @ (s * s) + 1e-2)
        return g - 0.3 * (V.T @ (1 / smooth)) * s + 0.3 * s / jnp.sqrt(s * s + 1e-2)

    result = three_way(lambda s: sc.feature_cost(s, A, X, V, 0.3, 1e-2), wrong, S)
    assert not result["passed"] and result["differences"]["analytic~autodiff"] > 1e-3


def test_the_feature_cost_is_the_exercises_in_numpy():
    S, A, X, V = (np.asarray(a) for a in sc.problem(seed=1))
    want = (np.sum((A @ S - X) ** 2) / X.shape[1]
            + 0.3 * np.sum(np.sqrt(V @ (S**2) + 1e-2)))
    np.testing.assert_allclose(sc.feature_cost(S, A, X, V, 0.3, 1e-2), want, rtol=1e-12)


def test_the_weight_step_zeroes_the_weight_gradient():
    S, _, X, _ = sc.problem(seed=2)
    A = sc.weight_step(S, X, 1e-2)
    g = jax.grad(sc.weight_cost)(A, S, X, 1e-2)
    assert float(jnp.max(jnp.abs(g))) < 1e-12
    # and it is the minimum: any nudge raises the cost
    nudge = 1e-3 * jax.random.normal(jax.random.key(0), A.shape, A.dtype)
    assert sc.weight_cost(A + nudge, S, X, 1e-2) > sc.weight_cost(A, S, X, 1e-2)


def test_groups_are_the_3x3_neighbourhoods_of_the_torus():
    V = sc.group_matrix(4, 3)
    assert V.shape == (16, 16) and np.all(V.sum(axis=1) == 9) and np.all(V.sum(axis=0) == 9)
    # group of feature (3, 3) wraps: rows 3, 0, 1 and columns 3, 0, 1
    members = {divmod(j, 4) for j in np.flatnonzero(V[3 * 4 + 3])}
    assert members == {(r, c) for r in (3, 0, 1) for c in (3, 0, 1)}


def test_topography_sees_a_planted_arrangement():
    # bases that vary slowly over the torus: neighbours alike, the rest less so
    side, n = 5, 12
    angle = 2 * np.pi * np.arange(side) / side
    rows = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    A = np.array([np.concatenate([rows[r], rows[c], np.zeros(n - 4)])
                  for r in range(side) for c in range(side)]).T
    topo = sc.topography(A, side)
    assert topo["neighbours"] > 1.2 * topo["others"]
    shuffled = sc.topography(A[:, np.random.default_rng(0).permutation(side * side)], side)
    assert shuffled["neighbours"] < topo["neighbours"]


@pytest.mark.slow  # five compiled rounds
def test_learning_lowers_the_objective_on_a_small_problem():
    x = np.random.default_rng(3).normal(size=(600, 16)) @ np.random.default_rng(4).normal(
        size=(16, 16))
    A, S, X, history = sc.learn(x, num_features=16, batch=200, rounds=5, feature_steps=10)
    assert A.shape == (16, 16) and S.shape == (16, 200) and X.shape == (16, 200)
    J, _ = sc.feature_cost_and_grad(S, A, X, jnp.asarray(sc.group_matrix(4, 3)), 5e-5, 1e-5)
    assert relative_difference(J, sc.feature_cost(S, A, X, jnp.asarray(sc.group_matrix(4, 3)),
                                                  5e-5, 1e-5)) < 1e-12
    assert history[-1]["residue"] < history[0]["residue"]


def test_the_check_problem_draws_each_array_from_a_key_of_its_own():
    # one key for X and V would make X a monotone function of V entry by entry
    S, A, X, V = (np.asarray(a) for a in sc.problem(seed=4))
    assert (S.shape, A.shape, X.shape, V.shape) == ((16, 10), (8, 16), (8, 10), (5, 16))
    ranks = [np.argsort(np.argsort(a.ravel()[:80])) for a in (S, A, X, V)]
    for i in range(4):
        for j in range(i):
            assert abs(np.corrcoef(ranks[i], ranks[j])[0, 1]) < 0.5, (i, j)


def test_the_check_weighs_sparsity_as_its_docstring_says():
    # lambda 0.3 and epsilon 1e-2 by default: the differences of the check spelled out
    from saejax.differences import three_way

    S, A, X, V = sc.problem(seed=3)
    want = three_way(lambda s: sc.feature_cost(s, A, X, V, 0.3, 1e-2),
                     lambda s: sc.feature_cost_and_grad(s, A, X, V, 0.3, 1e-2)[1], S)
    assert sc.check(S, A, X, V)["differences"] == want["differences"]


@pytest.mark.slow  # two compiled rounds
def test_a_round_over_every_patch_takes_each_once_in_3x3_groups_and_keeps_float32():
    x = np.random.default_rng(5).normal(size=(30, 6))
    A, S, X, history = sc.learn(x, num_features=16, batch=30, rounds=1, feature_steps=3)
    # without replacement: the minibatch is the 30 patches in some order
    order = np.lexsort(np.asarray(X)[::-1])
    np.testing.assert_array_equal(np.asarray(X)[:, order], x[np.lexsort(x.T[::-1])].T)
    # the default groups are the torus's 3 x 3 neighbourhoods: the objective recomputed
    V = jnp.asarray(sc.group_matrix(4, 3))  # 4 x 4, since on a 3 x 3 torus both cover all
    want = sc.objective(A, S, X, V, 5e-5, 1e-5, 1e-2)
    assert history[-1] == pytest.approx({k: float(v) for k, v in want.items()}, rel=1e-12)
    A32, S32, X32, _ = sc.learn(x.astype(np.float32), num_features=16, batch=30, rounds=1,
                                feature_steps=3)
    assert A32.dtype == S32.dtype == X32.dtype == jnp.float32


def test_learning_refuses_nan_patches_a_batch_beyond_them_and_no_rounds():
    patches = np.random.default_rng(0).uniform(size=(100, 8))
    with pytest.raises(ValueError, match="patches contains 1 NaN or Inf"):
        sc.learn(np.where(np.eye(100, 8) * np.arange(8) == 5, np.nan, patches), 16, batch=20)
    with pytest.raises(ValueError, match="batch 200 exceeds the 100 patches"):
        sc.learn(patches, 16, batch=200)
    with pytest.raises(ValueError, match="rounds must be a positive integer, got 0"):
        sc.learn(patches, 16, batch=20, rounds=0)
