"""Softmax regression against NumPy, on separable classes, and on the features of a sparse
autoencoder (self-taught learning)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import saejax
from saejax import softmax, train
from saejax.config import TrainConfig
from saejax.data import load_digits


def np_softmax(theta, x, y, lam):
    W, b = np.asarray(theta["W"]), np.asarray(theta["b"])
    logits = x @ W.T + b
    logits = logits - logits.max(1, keepdims=True)
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    onehot = np.eye(W.shape[0])[y]
    m = len(x)
    J = -np.mean(np.log(p[np.arange(m), y])) + lam / 2 * np.sum(W**2)
    return J, {"W": -(onehot - p).T @ x / m + lam * W, "b": -(onehot - p).sum(0) / m}


def test_softmax_loss_and_gradient_against_numpy():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 6)), rng.integers(0, 3, 20)
    theta = {"W": jnp.asarray(rng.normal(size=(3, 6))), "b": jnp.asarray(rng.normal(size=3))}
    J, g = np_softmax(theta, x, y, 0.1)
    np.testing.assert_allclose(softmax.softmax_loss(theta, x, y, 0.1), J, rtol=1e-13)
    auto = jax.grad(softmax.softmax_loss)(theta, jnp.asarray(x), jnp.asarray(y), 0.1)
    for k in g:
        np.testing.assert_allclose(auto[k], g[k], rtol=1e-12, atol=1e-14)


@pytest.mark.slow
def test_softmax_learns_separable_classes_and_rejects_bad_labels():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 300)
    x = rng.normal(size=(300, 4)) + 4.0 * np.eye(3, 4)[y]
    fit = softmax.train_softmax(x[:150], y[:150], steps=100)
    theta, info = fit  # still unpacks
    assert fit.theta is theta and fit.info is info
    assert softmax.accuracy(theta, x[150:], y[150:]) > 0.95
    # the fit itself is accepted where theta is, with the same predictions
    np.testing.assert_array_equal(softmax.predict(fit, x), softmax.predict(theta, x))
    assert softmax.accuracy(fit, x[150:], y[150:]) == softmax.accuracy(theta, x[150:], y[150:])
    with pytest.raises(ValueError, match="train_softmax's result or its theta dict"):
        softmax.accuracy(tuple(fit)[::-1], x, y)
    assert info["num_classes"] == 3
    with pytest.raises(ValueError, match="300 examples but"):
        softmax.train_softmax(x, y[:10])
    with pytest.raises(ValueError, match="single class"):
        softmax.train_softmax(x, np.zeros(300, int))


@pytest.mark.slow
def test_self_taught_learning_on_digits():
    # Features from digits 5-9 (no labels) classify digits 0-4 far above chance (20%).
    images, labels = load_digits()
    cfg = TrainConfig(dataset="digits", n_hidden=36, rho=0.1, beta=3.0, lam=1e-4, steps=100)
    sae = train.run(cfg, images[labels >= 5], progress=False)
    labeled, digit = images[labels <= 4], labels[labels <= 4]
    features = np.asarray(saejax.encode(sae.state.params, jnp.asarray(labeled, jnp.float32))[1])
    half = len(labeled) // 2
    theta, _ = softmax.train_softmax(features[:half], digit[:half], steps=200)
    assert softmax.accuracy(theta, features[half:], digit[half:]) > 0.85


def test_the_fit_reports_the_loss_of_the_theta_it_returns_and_keeps_float32():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 40)
    x = rng.normal(size=(40, 5)) + 2.0 * np.eye(3, 5)[y]
    theta, info = softmax.train_softmax(x, y, lam=0.05, steps=3)
    assert info == {"loss": pytest.approx(np_softmax(theta, x, y, 0.05)[0], rel=1e-12),
                    "num_classes": 3, "steps": 3}
    theta32, info32 = softmax.train_softmax(x.astype(np.float32), y, lam=0.05, steps=3)
    assert {a.dtype for a in theta32.values()} == {np.dtype(np.float32)}
    assert info32["loss"] == pytest.approx(info["loss"], rel=1e-4)
    with pytest.raises(ValueError, match="non-negative integers"):
        softmax.train_softmax(x, y - 1)
    with pytest.raises(ValueError, match="NaN"):
        softmax.train_softmax(np.where(np.eye(40, 5) == 1, np.nan, x), y)


def test_two_classes_are_enough_and_the_class_count_is_the_largest_label_plus_one():
    x = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [0.5, -1.0]])
    assert softmax.check_labels(x, np.array([0, 1, 1, 0]))[2] == 2
    assert softmax.check_labels(x, np.array([0, 2, 2, 0]))[2] == 3  # class 1 never seen
    with pytest.raises(ValueError, match="single class"):
        softmax.check_labels(x, np.array([1, 1, 1, 1]))


def test_integer_features_train_as_floats_with_their_weight_decay():
    # uint8 pixels (MNIST) and int64 counts: lam must not be cast to the features' integer
    # dtype (0.05 would become 0, or overflow), and the fit is that of the same values as floats
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 40)
    x = rng.integers(0, 4, (40, 5)) + 3 * np.eye(3, 5, dtype=np.int64)[y]
    for dtype in (np.uint8, np.int64):
        theta, info = softmax.train_softmax(x.astype(dtype), y, lam=0.05, steps=3)
        assert theta["W"].dtype == jnp.float64  # x64 is on in the tests
        assert info["loss"] == pytest.approx(np_softmax(theta, x.astype(float), y, 0.05)[0],
                                             rel=1e-12)


@pytest.mark.parametrize("kwargs, match", [
    ({"lam": -1.0}, r"lam must be finite and >= 0, got -1\.0"),
    ({"lam": float("nan")}, "lam must be finite and >= 0, got nan"),
    ({"steps": 0}, "steps must be a positive integer"),
])
def test_a_negative_or_nan_lam_and_no_steps_are_refused(kwargs, match):
    x = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [0.5, -1.0]])
    with pytest.raises(ValueError, match=match):
        softmax.train_softmax(x, np.array([0, 1, 1, 0]), **kwargs)


def test_no_examples_and_a_width_mismatch_are_refused_by_name():
    with pytest.raises(ValueError, match=r"features has no examples \(shape \(0, 4\)\)"):
        softmax.train_softmax(np.zeros((0, 4)), np.zeros(0, int))
    theta = {"W": jnp.zeros((3, 4)), "b": jnp.zeros(3)}
    with pytest.raises(ValueError, match="features has 2 features per row but .*=4"):
        softmax.predict(theta, np.zeros((5, 2)))


def test_labels_must_lie_below_a_given_class_count():
    x = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [0.5, -1.0]])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\) for a softmax of 3 "
                                         r"classes; the labels hold 3"):
        softmax.check_labels(x, np.array([0, 3, 1, 0]), num_classes=3)
    assert softmax.check_labels(x, np.array([0, 2, 1, 0]), num_classes=5)[2] == 5
