"""saejax.cnn: convolution and pooling against direct loops, the hand-written gradient against
autodiff and finite differences (float64), and minFuncSGD's update rule against NumPy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from saejax import cnn
from saejax.differences import numerical_grad, relative_difference


def loop_convolve(images, filters):
    """cnnConvolve by loops: conv2(image, rot90(filter, 2), 'valid') = cross-correlation."""
    b, d, _ = images.shape
    f, k, _ = filters.shape
    out = np.zeros((b, f, d - k + 1, d - k + 1))
    for n in range(b):
        for g in range(f):
            for i in range(d - k + 1):
                for j in range(d - k + 1):
                    out[n, g, i, j] = np.sum(images[n, i:i + k, j:j + k] * filters[g])
    return out


def loop_pool(a, p):
    b, f, c, _ = a.shape
    out = np.zeros((b, f, c // p, c // p))
    for i in range(c // p):
        for j in range(c // p):
            out[:, :, i, j] = a[:, :, i * p:(i + 1) * p, j * p:(j + 1) * p].mean(axis=(2, 3))
    return out


def numpy_logits(params, x, pool=2):
    """cnnCost's forward pass by loops: sigmoid of the convolution, mean pooling, the softmax
    layer's logits."""
    p = {k: np.asarray(v) for k, v in params.items()}
    a = 1 / (1 + np.exp(-(loop_convolve(np.asarray(x), p["Wc"]) + p["bc"][None, :, None, None])))
    return loop_pool(a, pool).reshape(len(x), -1) @ p["Wd"].T + p["bd"]


def problem(seed=0):
    """A small float64 network: 3 images of 12x12, 3 filters of 5x5, pooling 2, 4 classes."""
    k = jax.random.split(jax.random.key(seed), 4)
    params = cnn.init_params(k[0], 12, 5, 3, 2, 4, jnp.float64)
    params["bc"] = 0.2 * jax.random.normal(k[1], (3,), jnp.float64)
    params["bd"] = 0.1 * jax.random.normal(k[2], (4,), jnp.float64)
    x = jax.random.uniform(k[3], (3, 12, 12), jnp.float64)
    return params, x, jnp.array([0, 3, 1])


def test_convolve_is_the_valid_cross_correlation_of_cnnconvolve():
    rng = np.random.default_rng(0)
    images, filters = rng.normal(size=(2, 7, 7)), rng.normal(size=(3, 3, 3))
    np.testing.assert_allclose(cnn.convolve(jnp.asarray(images), jnp.asarray(filters)),
                               loop_convolve(images, filters), rtol=1e-12, atol=1e-12)


def test_mean_pool_averages_disjoint_blocks():
    a = np.random.default_rng(1).normal(size=(2, 3, 6, 6))
    np.testing.assert_allclose(cnn.mean_pool(jnp.asarray(a), 2), loop_pool(a, 2), rtol=1e-12)
    np.testing.assert_allclose(cnn.mean_pool(jnp.asarray(a), 3), loop_pool(a, 3), rtol=1e-12)


def test_autoencoder_features_are_cnnconvolve_and_cnnpool_patch_by_patch():
    """Every 3x3x3 patch whitened, encoded by the sigmoid layer and pooled, by loops."""
    rng = np.random.default_rng(2)
    images = rng.uniform(size=(2, 8, 8, 3))
    W1, b1 = rng.normal(size=(4, 27)), rng.normal(size=4)
    T, mean = rng.normal(size=(27, 27)) / 5, rng.uniform(size=27)
    a = np.zeros((2, 4, 6, 6))
    for n in range(2):
        for i in range(6):
            for j in range(6):
                x = images[n, i:i + 3, j:j + 3, :].reshape(-1)  # row-major over (3, 3, 3)
                a[n, :, i, j] = 1 / (1 + np.exp(-(W1 @ (T @ (x - mean)) + b1)))
    got = cnn.autoencoder_features(*map(jnp.asarray, (images, W1, b1, T, mean)), pool=3)
    np.testing.assert_allclose(got, loop_pool(a, 3), rtol=1e-12, atol=1e-12)


def test_the_loss_is_the_cross_entropy_computed_in_numpy():
    params, x, y = problem()
    logits = numpy_logits(params, x)
    log_p = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
    want = -np.mean(log_p[np.arange(len(y)), np.asarray(y)])
    np.testing.assert_allclose(cnn.loss(params, x, y), want, rtol=1e-12)


def test_the_hand_written_gradient_is_autodiffs_and_finite_differences():
    params, x, y = problem()
    cost, g = cnn.loss_and_grad(params, x, y)
    np.testing.assert_allclose(cost, cnn.loss(params, x, y), rtol=1e-14)
    auto = jax.grad(cnn.loss)(params, x, y)
    assert relative_difference(g, auto) < 1e-10
    numerical = numerical_grad(lambda p: cnn.loss(p, x, y), params, eps=1e-5)
    assert relative_difference(g, numerical) < 1e-7
    for key in g:  # every block, not only the whole
        assert relative_difference(g[key], auto[key]) < 1e-10, key


def test_init_follows_cnninitparams_and_refuses_a_pool_that_does_not_divide():
    params = cnn.init_params(jax.random.key(0))
    assert params["Wc"].shape == (10, 9, 9) and params["Wd"].shape == (10, 1000)
    r = np.sqrt(6) / np.sqrt(10 + 1000 + 1)
    assert np.max(np.abs(params["Wd"])) <= r and np.max(np.abs(params["Wd"])) > 0.9 * r
    assert abs(float(np.std(params["Wc"])) - 0.1) < 0.01
    assert not np.any(params["bc"]) and not np.any(params["bd"])
    with pytest.raises(ValueError, match="must divide"):
        cnn.init_params(jax.random.key(0), 28, 8, 2, 2)
    for dtype in (jnp.float32, jnp.float64):  # every block at the dtype asked for
        made = cnn.init_params(jax.random.key(0), 12, 5, 2, 2, 4, dtype)
        assert {k: v.dtype for k, v in made.items()} == dict.fromkeys(made, jnp.dtype(dtype))


def test_predict_is_the_largest_logit_batch_by_batch():
    params, x, _ = problem()
    x = jnp.concatenate([x, x[::-1] * 0.5])  # 6 images, in batches of 4 and 2
    want = np.argmax(numpy_logits(params, x), axis=1)
    np.testing.assert_array_equal(cnn.predict(params, x, batch=4), want)


def test_the_debugging_problem_passes_its_three_way_check_and_eps_reaches_it():
    # saejax gradcheck --cnn: cnnTrain's debugging network, smaller (2 filters of 5x5 on 4
    # images of 12x12, pooling 2, 4 classes, non-zero biases), checked three ways in float64.
    params, x, y = cnn.problem()
    shapes = {k: v.shape for k, v in params.items()}
    assert shapes == {"Wc": (2, 5, 5), "bc": (2,), "Wd": (4, 2 * 4 * 4), "bd": (4,)}
    assert x.shape == (4, 12, 12) and x.dtype == jnp.float64 and 0 <= x.min() and x.max() < 1
    assert set(np.asarray(y).tolist()) <= {0, 1, 2, 3}
    # its biases: N(0, 0.2^2) and N(0, 0.1^2) draws, whose spread over 60 seeds shows it
    draws = [cnn.problem(seed=s)[0] for s in range(60)]
    for name, sd in (("bc", 0.2), ("bd", 0.1)):
        spread = np.std(np.concatenate([np.asarray(p[name]) for p in draws]))
        assert 0.8 * sd < spread < 1.2 * sd, (name, spread)
    # ... drawn independently of each other (one key for both would make bc twice bd's start)
    bc0, bd0 = (np.array([float(p[name][0]) for p in draws]) for name in ("bc", "bd"))
    assert abs(np.corrcoef(bc0, bd0)[0, 1]) < 0.5
    # float32 asked for, float32 throughout (x64 is on in the tests)
    p32, x32, _ = cnn.problem(dtype=jnp.float32)
    assert {k: v.dtype for k, v in p32.items()} == {k: jnp.float32 for k in p32}
    assert x32.dtype == jnp.float32
    report = cnn.check(params, x, y)
    assert report["dtype"] == "float64" and report["passed"], report
    # eps is the finite differences' step: a step 1000 times as large is visibly less accurate
    coarse = cnn.check(params, x, y, eps=1e-2)["differences"]["analytic~numerical"]
    assert coarse > 100 * report["differences"]["analytic~numerical"]


def test_sgd_is_minfuncsgd_step_for_step():
    # A NumPy transcription of minFuncSGD over the same minibatches: momentum 0.5, then 0.95
    # from iteration 10; velocity = mom v + alpha g; theta -= v; alpha halved each epoch.
    params, x, y = problem(seed=2)
    x = jnp.tile(x, (8, 1, 1))  # 24 images, minibatches of 4: 6 iterations an epoch
    y = jnp.tile(y, 8)
    # alpha and momentum left at their defaults, cnnTrain's 0.1 and 0.95
    got, costs = cnn.train_sgd(params, x, y, epochs=2, minibatch=4, seed=5)
    rng = np.random.default_rng(5)
    theta = {k: np.asarray(v) for k, v in params.items()}
    velocity = {k: np.zeros_like(v) for k, v in theta.items()}
    alpha, mom, it, want_costs = 0.1, 0.5, 0, []
    for _ in range(2):
        order = rng.permutation(len(y))
        for s in range(0, len(y) - 4 + 1, 4):
            it += 1
            if it == 10:
                mom = 0.95
            idx = order[s:s + 4]
            c, g = cnn.loss_and_grad({k: jnp.asarray(v) for k, v in theta.items()}, x[idx],
                                     y[idx])
            want_costs.append(float(c))
            for k in theta:
                velocity[k] = mom * velocity[k] + alpha * np.asarray(g[k])
                theta[k] = theta[k] - velocity[k]
        alpha /= 2
    np.testing.assert_allclose(costs, want_costs, rtol=1e-10)
    for k in theta:
        np.testing.assert_allclose(got[k], theta[k], rtol=1e-10, atol=1e-14)
    assert not np.allclose(got["Wc"], params["Wc"])  # the caller's params are left as they were


def test_init_refuses_a_filter_as_large_as_the_image_and_no_pooling_by_name():
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="filter_dim 12 must be below image_dim 12"):
        cnn.init_params(key, 12, 12, 2, 1, 4)
    with pytest.raises(ValueError, match="pool_dim must be a positive integer, got 0"):
        cnn.init_params(key, 12, 5, 2, 0, 4)


def test_sgd_refuses_labels_images_and_minibatches_that_do_not_fit():
    params, x, y = problem()  # 3 images of 12x12, 4 classes
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\).*hold 13"):
        cnn.train_sgd(params, x, y + 10, minibatch=3)
    with pytest.raises(ValueError, match=r"3 examples but \(2,\) labels"):
        cnn.train_sgd(params, x, y[:2], minibatch=2)
    with pytest.raises(ValueError, match="minibatch 4 exceeds the 3 images"):
        cnn.train_sgd(params, x, y, minibatch=4)
    with pytest.raises(ValueError, match="minibatch must be a positive integer, got 0"):
        cnn.train_sgd(params, x, y, minibatch=0)
    with pytest.raises(ValueError, match="images contains 1 NaN"):
        cnn.train_sgd(params, x.at[1, 2, 3].set(jnp.nan), y, minibatch=3)
    with pytest.raises(ValueError, match="images of 10x10 do not fit the network"):
        cnn.train_sgd(params, x[:, :10, :10], y, minibatch=3)
