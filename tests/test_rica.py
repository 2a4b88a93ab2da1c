"""saejax.rica: RICA's hand-written gradient against autodiff and finite differences (float64),
its cost against NumPy, and square-square-root pooling against a direct loop."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from saejax import rica
from saejax.differences import numerical_grad, relative_difference


def problem(seed=0):
    k = jax.random.split(jax.random.key(seed), 2)
    return (jax.random.normal(k[0], (6, 9), jnp.float64),
            jax.random.normal(k[1], (20, 9), jnp.float64))


def softicacost(W, x_MxN, lam, epsilon):
    """softICACost.m in NumPy: rows of W scaled to unit length, patches as columns."""
    W, xn = np.asarray(W, np.float64), np.asarray(x_MxN, np.float64).T
    V = W / np.sqrt(np.sum(W**2, axis=1, keepdims=True) + 1e-5)
    A = V @ xn
    return (lam * np.sum(np.sqrt(A**2 + epsilon)) + 0.5 * np.sum((V.T @ A - xn) ** 2)) / xn.shape[1]


def zca2(patches_MxN, epsilon):
    """zca2.m in NumPy: sigma = x^T x / m (no mean removed), U diag(1/sqrt(s + eps)) U^T."""
    s, U = np.linalg.eigh(patches_MxN.T @ patches_MxN / len(patches_MxN))
    return (U / np.sqrt(s + epsilon)) @ U.T


def test_the_cost_is_softicacost_in_numpy():
    W, x = problem()
    np.testing.assert_allclose(rica.cost(W, x, 0.3, 1e-2), softicacost(W, x, 0.3, 1e-2),
                               rtol=1e-12)


def test_the_check_problem_is_drawn_in_its_dtype_and_passes_the_check_gradcheck_runs():
    from saejax.differences import three_way

    W, x = rica.problem(seed=2)  # what saejax gradcheck --rica checks
    assert (W.shape, x.shape, W.dtype, x.dtype) == ((6, 9), (20, 9), jnp.float64, jnp.float64)
    assert relative_difference(W, x[:6]) > 0.1  # two draws, not one
    assert {a.dtype for a in rica.problem(jnp.float32, seed=2)} == {jnp.dtype(jnp.float32)}
    result = rica.check(W, x)  # lambda 0.3 and epsilon 1e-2 by default
    want = three_way(lambda w: rica.cost(w, x, 0.3, 1e-2),
                     lambda w: rica.cost_and_grad(w, x, 0.3, 1e-2)[1], W)
    assert result["passed"] and result["differences"] == want["differences"]
    coarse = rica.check(W, x, eps=1e-2)  # the step reaches the finite differences
    fine = want["differences"]["analytic~numerical"]
    assert coarse["differences"]["analytic~numerical"] > 10 * fine


def test_the_hand_written_gradient_is_autodiffs_and_finite_differences():
    W, x = problem(1)
    J, g = rica.cost_and_grad(W, x, 0.3, 1e-2)
    np.testing.assert_allclose(J, rica.cost(W, x, 0.3, 1e-2), rtol=1e-14)
    assert relative_difference(g, jax.grad(rica.cost)(W, x, 0.3, 1e-2)) < 1e-10
    numerical = numerical_grad(lambda w: rica.cost(w, x, 0.3, 1e-2), W, eps=1e-5)
    assert relative_difference(g, numerical) < 1e-7


@pytest.mark.slow  # a compiled L-BFGS
def test_training_lowers_the_cost_and_keeps_unit_rows():
    _, x = problem(2)
    W, values = rica.train(x, 4, lam=0.1, steps=30)
    assert len(values) == 31 and values[-1] <= values[-2] and values[-1] < 0.9 * values[0]
    # the last is J after the last step: of W up to the scaling of its rows (by 1 + 5e-6)
    assert values[-1] == pytest.approx(float(rica.cost(W, x, 0.1, 1e-2)), rel=1e-4)
    np.testing.assert_allclose(np.linalg.norm(W, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow  # a compiled L-BFGS
def test_float32_patches_train_in_float32_with_numpy_scalar_settings():
    # np.float64 lambda and epsilon (as a config file gives them) must not promote the fit
    _, x = problem(3)
    W, values = rica.train(np.asarray(x, np.float32), 4, lam=np.float64(0.1),
                           epsilon=np.float64(1e-2), steps=3)
    assert W.dtype == jnp.float32 and len(values) == 4 and np.all(np.isfinite(values))


def test_square_sqrt_pooling_by_loops():
    resp = np.random.default_rng(0).normal(size=(2, 3, 10, 10))
    want = np.zeros((2, 3, 2, 2))
    for i in range(2):
        for j in range(2):
            block = resp[:, :, 5 * i:5 * i + 5, 5 * j:5 * j + 5]
            want[:, :, i, j] = np.sqrt(np.sum(block**2, axis=(2, 3)) + 1e-2)
    np.testing.assert_allclose(rica.square_sqrt_pool(jnp.asarray(resp), 5, 1e-2), want,
                               rtol=1e-12)


def test_features_convolve_then_pool_each_image():
    rng = np.random.default_rng(1)
    images, filters = rng.normal(size=(3, 14, 14)), rng.normal(size=(2, 5, 5))
    got = rica.features(images, jnp.asarray(filters), 5, 1e-2, batch=2)
    assert got.shape == (3, 2 * 2 * 2)
    # the first feature of image 1: the first 5x5 pooling region of filter 0's response
    resp = np.array([[np.sum(images[1, i:i + 5, j:j + 5] * filters[0]) for j in range(5)]
                     for i in range(5)])
    np.testing.assert_allclose(got[1, 0], np.sqrt(np.sum(resp**2) + 1e-2), rtol=1e-10)


def test_preprocess_is_zca2_without_mean_removal_then_unit_patches():
    """runSoftICA's zca2 then unit patches; with normalize=False, the whitened patches alone."""
    patches = np.random.default_rng(4).uniform(size=(300, 9))
    x, V = rica.preprocess(patches, 1e-4)
    np.testing.assert_allclose(V, zca2(patches, 1e-4), rtol=1e-8, atol=1e-10)
    white = patches @ V
    np.testing.assert_allclose(x, white / np.linalg.norm(white, axis=1, keepdims=True),
                               rtol=1e-7)
    # stlExercise.m's answer hands minFunc the whitened patches as they are
    raw, V_raw = rica.preprocess(patches, 1e-4, normalize=False)
    np.testing.assert_allclose(V_raw, V, rtol=0, atol=0)
    np.testing.assert_allclose(raw, white, rtol=1e-12)


@pytest.mark.slow  # MNIST and a compiled L-BFGS
def test_the_exercise_script_prints_what_its_row_reads(tmp_path, monkeypatch, capsys):
    import json
    import sys

    from helpers import MNIST_DIR, require

    from experiments.reproduce import rica_mnist

    require(MNIST_DIR)
    monkeypatch.setattr(sys, "argv", ["rica_mnist", "--data", str(MNIST_DIR), "--steps", "30",
                                      "--workdir", str(tmp_path / "r")])
    rica_mnist.main()
    said = capsys.readouterr().out
    results = json.loads((tmp_path / "r" / "config.json").read_text())["results"]
    assert (f"localization: learned {results['localization']['learned']:.3f}, random "
            f"{results['localization']['random']:.3f}") in said
    assert f"kurtosis: learned {results['kurtosis']['learned']:.2f}" in said
    assert results["last_cost"] < results["first_cost"]
    assert (tmp_path / "r" / "filters.png").exists()


@pytest.mark.slow  # MNIST, two compiled L-BFGS fits and the convolution of 5,000 digits
def test_the_self_taught_script_hands_rica_the_whitened_patches_unscaled(tmp_path, monkeypatch,
                                                                         capsys):
    """stl_rica's first J is RICA's cost, in NumPy, of zca2-whitened patches not scaled to unit
    length (stlExercise.m), at the exercise's start; its printed accuracies are its record's."""
    import json
    import sys

    from helpers import MNIST_DIR, require

    from experiments.reproduce import stl_rica
    from saejax.data import load_mnist

    require(MNIST_DIR)
    monkeypatch.setattr(stl_rica, "PATCHES", 3000)
    monkeypatch.setattr(sys, "argv", ["stl_rica", "--data", str(MNIST_DIR), "--steps", "20",
                                      "--workdir", str(tmp_path / "s")])
    stl_rica.main()
    said = capsys.readouterr().out
    results = json.loads((tmp_path / "s" / "config.json").read_text())["results"]
    x, y = load_mnist(MNIST_DIR, "train")
    images = x.reshape(-1, 28, 28).astype(np.float64)
    train_idx = 50_000 + np.flatnonzero(y[50_000:55_000] <= 4)
    patches = stl_rica.sample_patches(np.concatenate([images[:50_000], images[train_idx]]),
                                      3000, 9, np.random.default_rng(0))
    J = softicacost(rica.initial_weights(81, 32, 0), patches @ zca2(patches, 1e-4), 5e-4, 1e-2)
    np.testing.assert_allclose(results["rica_first_cost"], J, rtol=1e-4)
    assert results["rica_last_cost"] < results["rica_first_cost"]
    assert f"test accuracy, RICA filters: {100 * results['test_accuracy']:.2f}%" in said
    assert (f"test accuracy, random filters: {100 * results['random_test_accuracy']:.2f}%"
            in said)
    assert (tmp_path / "s" / "rica_filters.png").exists()


def test_training_refuses_nan_patches_and_counts_below_one():
    _, x = problem()  # 20 patches of 9
    with pytest.raises(ValueError, match="x contains 1 NaN or Inf"):
        rica.train(x.at[3, 2].set(jnp.inf), 4, steps=2)
    with pytest.raises(ValueError, match="num_features must be a positive integer, got 0"):
        rica.train(x, 0, steps=2)
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        rica.train(x, 4, steps=0)
