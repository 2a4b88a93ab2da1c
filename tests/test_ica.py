"""saejax.ica: the hand-written gradient against autodiff and finite differences (float64), the
cost against NumPy, the projection against (W W^T)^(-1/2) W in NumPy, a line search that never
raises the cost, training, and the measures of the reproduction's row on planted filters."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from saejax import ica
from saejax.differences import relative_difference


def test_the_hand_written_gradient_is_autodiffs_and_finite_differences():
    W, x = ica.problem(seed=1)
    np.testing.assert_allclose(ica.cost_and_grad(W, x, 1e-2)[0], ica.cost(W, x, 1e-2),
                               rtol=1e-14)
    result = ica.check(W, x)
    d = result["differences"]
    assert result["passed"] and d["analytic~autodiff"] < 1e-10 and d["analytic~numerical"] < 1e-7


def test_the_check_smooths_with_the_epsilon_its_docstring_gives():
    from saejax.differences import three_way

    W, x = ica.problem(seed=3)
    want = three_way(lambda w: ica.cost(w, x, 1e-2), lambda w: ica.cost_and_grad(w, x, 1e-2)[1],
                     W)
    assert ica.check(W, x)["differences"] == want["differences"]


def test_float32_stays_float32_from_the_start_to_the_trained_weights():
    assert ica.initial_weights(8, 5, seed=3, dtype=jnp.float32).dtype == jnp.float32
    W, x = ica.problem(dtype=jnp.float32)
    assert W.dtype == x.dtype == jnp.float32
    W, trace = ica.train(np.asarray(x), 3, steps=3)
    assert W.dtype == jnp.float32 and trace["t"].dtype == np.float32
    assert trace["cost"][-1] < trace["cost"][0]


def test_the_cost_is_orthonormalicacost_in_numpy():
    W, x = (np.asarray(a) for a in ica.problem(seed=2))
    X = x.T  # columns are patches, as the exercise has them
    want = np.sum(np.sqrt((W @ X) ** 2 + 1e-6)) / X.shape[1]
    np.testing.assert_allclose(ica.cost(W, x, 1e-6), want, rtol=1e-12)


def _inverse_sqrt_projection(W):
    d, U = np.linalg.eigh(W @ W.T)
    return U @ np.diag(d ** -0.5) @ U.T @ W


def test_the_projection_is_the_inverse_square_root_and_gives_orthonormal_rows():
    rng = np.random.default_rng(0)
    for k, n in ((3, 7), (5, 5), (1, 4)):
        W = rng.normal(size=(k, n))
        P = np.asarray(ica.orthonormalize(jnp.asarray(W)))
        np.testing.assert_allclose(P, _inverse_sqrt_projection(W), atol=1e-10)
        np.testing.assert_allclose(P @ P.T, np.eye(k), atol=1e-10)
        # the nearest such matrix: no other orthonormal rows are closer to W
        Q = np.linalg.qr(rng.normal(size=(n, n)))[0][:k]
        assert np.linalg.norm(W - P) <= np.linalg.norm(W - Q)
        # a projection: orthonormal rows stay where they are
        np.testing.assert_allclose(np.asarray(ica.orthonormalize(jnp.asarray(P))), P,
                                   atol=1e-10)
    # a line search's trial point, a step off orthonormal rows, passes the exercise's own check
    # of its projection, sum((W W^T - I)^2) < 1e-23
    W = np.linalg.qr(rng.normal(size=(9, 9)))[0][:6] + 0.1 * rng.normal(size=(6, 9))
    P = np.asarray(ica.orthonormalize(jnp.asarray(W)))
    assert np.sum((P @ P.T - np.eye(6)) ** 2) < 1e-23


def test_the_start_is_the_exercises_rand_projected():
    W = np.asarray(ica.initial_weights(8, 5, seed=3, dtype=jnp.float64))
    raw = np.asarray(jax.random.uniform(jax.random.key(3), (5, 8), jnp.float64))
    assert raw.min() >= 0 and raw.max() < 1
    np.testing.assert_allclose(W, _inverse_sqrt_projection(raw), atol=1e-10)


def test_the_tangent_share_splits_the_gradient_at_the_constraint():
    W = np.asarray(ica.orthonormalize(jnp.asarray(np.random.default_rng(1).normal(size=(4, 4)))))
    skew = np.triu(np.ones((4, 4)), 1)
    skew = skew - skew.T
    assert float(ica.tangent_share(W, skew @ W)) == pytest.approx(1.0, abs=1e-12)
    assert float(ica.tangent_share(W, np.diag([1.0, 2, 3, 4]) @ W)) == pytest.approx(0, abs=1e-12)


def test_a_small_projected_step_moves_along_the_tangent_part_of_the_gradient():
    # the line search's predicted decrease, <g, W - P(W - t g)>, is t ||g_T||^2 to first order
    W, x = ica.problem(seed=4)
    _, g = ica.cost_and_grad(W, x, 1e-2)
    S = g @ W.T
    tangent = g - 0.5 * (S + S.T) @ W
    for t in (1e-4, 1e-5):
        step = (W - ica.orthonormalize(W - t * g)) / t
        assert relative_difference(step, tangent) < 10 * t


def test_the_line_search_never_raises_the_cost():
    search = jax.jit(ica.line_search)
    for seed in range(4):
        W, x = ica.problem(seed=seed)
        J, g = ica.cost_and_grad(W, x, 1e-2)
        for t in (1e-3, 1.0, 1e3):  # from a tiny step to one far past the minimum
            W2, J2, _, tries = search(W, J, g, t, x, 1e-2)
            assert float(J2) < float(J) and int(tries) >= 1
            np.testing.assert_allclose(float(J2), float(ica.cost(W2, x, 1e-2)), rtol=1e-14)
            np.testing.assert_allclose(np.asarray(W2 @ W2.T), np.eye(4), atol=1e-12)
    # at a point where no trial passes, nothing moves (the zero gradient predicts no decrease)
    W2, J2, _, tries = search(W, J, jnp.zeros_like(g), 1.0, x, 1e-2)
    assert float(J2) == float(J) and np.array_equal(W2, W) and int(tries) == 100


def test_training_lowers_the_cost_every_step_and_keeps_orthonormal_rows():
    x = np.random.default_rng(5).laplace(size=(200, 6)) @ np.linalg.qr(
        np.random.default_rng(6).normal(size=(6, 6)))[0]
    W, trace = ica.train(x, 4, epsilon=1e-2, steps=30)
    cost = trace["cost"]
    assert len(cost) == 31 and np.all(np.diff(cost) <= 0) and cost[-1] < 0.95 * cost[0]
    np.testing.assert_allclose(float(ica.cost(W, x, 1e-2)), cost[-1], rtol=1e-12)
    np.testing.assert_allclose(np.asarray(W @ W.T), np.eye(4), atol=1e-12)
    with pytest.raises(ValueError, match="cannot outnumber"):
        ica.train(x, 7, steps=1)


def test_training_takes_a_thousand_steps_unless_told_and_traces_the_tangent_share():
    x = np.random.default_rng(7).laplace(size=(20, 6))
    _, trace = ica.train(x, 4)
    assert len(trace["cost"]) == 1001
    assert len(trace["t"]) == len(trace["tries"]) == len(trace["tangent_share"]) == 1000
    for steps in (1, 3):  # the last entry is the share at the W returned, here in NumPy
        W, trace = ica.train(x, 4, epsilon=1e-2, steps=steps)
        W = np.asarray(W)
        a = x @ W.T
        g = (a / np.sqrt(a**2 + 1e-2)).T @ x / len(x)
        S = g @ W.T
        tangent = g - 0.5 * (S + S.T) @ W
        share = trace["tangent_share"]
        assert share.shape == (steps,) and np.all((share >= 0) & (share <= 1))
        assert share[-1] == pytest.approx(np.sum(tangent**2) / np.sum(g**2), rel=1e-10)


def test_a_random_orthonormal_baseline_has_orthonormal_rows():
    R = ica.random_orthonormal(9, 5, seed=1)
    np.testing.assert_allclose(R @ R.T, np.eye(5), atol=1e-12)


def test_the_exercises_colour_patches_are_read_from_matlabs_layout(tmp_path):
    from scipy.io import savemat

    from experiments.reproduce.ica import colour_patches

    rng = np.random.default_rng(8)
    raw = rng.integers(0, 256, size=(7, 8, 8, 3)).astype(np.float64)
    columns = np.zeros((192, 7))
    for r in range(8):  # MATLAB's reshape(patch, 8, 8, 3): row r, column c, channel ch
        for c in range(8):
            for ch in range(3):
                columns[r + 8 * c + 64 * ch] = raw[:, r, c, ch]
    savemat(tmp_path / "p.mat", {"patches": columns})
    np.testing.assert_array_equal(colour_patches(tmp_path / "p.mat", count=6),
                                  raw[:6].reshape(6, -1) / 255.0)
    with pytest.raises(ValueError, match="192 x at least 8"):
        colour_patches(tmp_path / "p.mat", count=8)


@pytest.mark.slow  # the experiment script in a fresh process
def test_the_script_prints_what_the_reproduction_row_reads(tmp_path):
    import subprocess
    import sys

    from helpers import REPO

    from experiments.reproduce.reproduce_ufldl import number

    done = subprocess.run([sys.executable, "-m", "experiments.reproduce.ica", "--steps", "40",
                           "--workdir", str(tmp_path / "ica")], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "grayscale" in out and "rose 0 times" in out
    learned, random_ = (number(rf"^localization: {side} ([0-9.]+)", out)
                        for side in ("learned", ".*, random"))
    assert 0 < random_ < learned <= 1
    assert number(r"^kurtosis: .*, random ([0-9.]+)", out) < number(
        r"^kurtosis: learned ([0-9.]+)", out)
    assert (tmp_path / "ica" / "filters.png").exists()


def test_training_refuses_nan_patches_and_counts_below_one():
    _, x = ica.problem()  # 20 patches of 6
    with pytest.raises(ValueError, match="x contains 1 NaN or Inf"):
        ica.train(x.at[3, 2].set(jnp.nan), 4, steps=2)
    for bad in (0, -1):  # no features: an empty W, or a negative shape
        with pytest.raises(ValueError, match=f"num_features must be a positive integer, got {bad}"):
            ica.train(x, bad, steps=2)
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        ica.train(x, 4, steps=0)
