"""The family's shared pieces and its knobs: k as a traced leaf, the initialization, the unit-norm
projection and batchtopk's threshold average, against hand-worked values and NumPy counts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from architectures import family_reference

from saejax import architectures, gradcheck
from saejax.architectures import batchtopk, common
from saejax.losses import Hyper


@pytest.mark.parametrize("arch", ["topk", "batchtopk"])
def test_k_is_traced(arch):
    params, x, _ = gradcheck.family_problem(arch, 6, 5, 7, Hyper(0.01, 3.0, 0.0, k=2))
    params = {**params, "b1": params["b1"] + 3.0}  # every pre-activation positive
    assert np.all(np.asarray(common.pre_activation(params, x)) > 0)
    traces = []

    def f(params, x, k):
        traces.append(k)
        return architectures.terms(params, x, Hyper(0.01, 3.0, 1e-3, k=k), arch)

    jitted = jax.jit(f)
    for k in (1, 2, 3):
        got = jitted(params, x, jnp.asarray(k))
        want = architectures.terms(params, x, Hyper(0.01, 3.0, 1e-3, k=k), arch)  # k fixed
        for key in ("loss", "reconstruction", "mean_l0", "rho_hat"):
            np.testing.assert_allclose(got[key], want[key], rtol=1e-14, err_msg=key)
        # The count of active codes, from the NumPy reference at this generic point.
        f_np = family_reference.codes(family_reference.as_numpy(params), x, arch, k)
        counts = np.count_nonzero(f_np, axis=1)
        if arch == "topk":
            assert np.all(counts == k)  # exactly k per example
        else:  # k m in the batch, shared unevenly between the examples
            assert counts.sum() == k * x.shape[0] and np.any(counts != k)
        np.testing.assert_array_equal(np.count_nonzero(got["rho_hat"] > 0),
                                      np.count_nonzero(f_np.any(axis=0)))
        np.testing.assert_allclose(got["mean_l0"], counts.mean(), rtol=1e-14)
    assert len(traces) == 1  # one compiled program for every k


@pytest.mark.parametrize("arch", list(architectures.MODULES))
def test_init_params(arch):
    x_mean = jnp.array([0.5, -1.0, 2.0, 0.0, 0.25, 3.0, -0.5])
    params = architectures.init_params(jax.random.key(3), 7, 4, arch, x_mean, jnp.float64)
    assert set(params) == set(architectures.param_keys(arch))
    W2 = np.asarray(params["W2"])
    assert W2.shape == (7, 4)
    np.testing.assert_allclose(np.sqrt((W2 ** 2).sum(axis=0)), np.ones(4), rtol=1e-14)
    np.testing.assert_array_equal(params["W1"], W2.T)
    np.testing.assert_array_equal(params["b2"], x_mean)
    np.testing.assert_array_equal(params["b1"], np.zeros(4))
    if arch == "jumprelu":
        np.testing.assert_allclose(np.exp(params["log_threshold"]), np.full(4, 1e-3), rtol=1e-14)
    if arch == "batchtopk":
        assert float(params["threshold"]) == 0.0


def test_project_gives_unit_columns():
    # Columns [3, 4] (norm 5) -> [0.6, 0.8]; [0, 0] stays 0; [0, -2] -> [0, -1].
    params = {"W1": jnp.ones((3, 2)), "W2": jnp.array([[3.0, 0.0, 0.0], [4.0, 0.0, -2.0]])}
    got = common.project(params)
    np.testing.assert_allclose(got["W2"], [[0.6, 0.0, 0.0], [0.8, 0.0, -1.0]], rtol=1e-15)
    np.testing.assert_array_equal(got["W1"], params["W1"])  # only the decoder moves


def test_batchtopk_threshold_moving_average():
    params = {"W2": jnp.array([[2.0], [0.0]]), "threshold": jnp.asarray(2.0)}
    # Not the first step: 0.999 * 2 + 0.001 * 4 = 1.998 + 0.004 = 2.002.
    got = batchtopk.after_update(params, {"smallest_kept": jnp.asarray(4.0)}, False)
    np.testing.assert_allclose(got["threshold"], 2.002, rtol=1e-14)
    # The first step sets it: 4.
    got = batchtopk.after_update(params, {"smallest_kept": jnp.asarray(4.0)}, True)
    assert float(got["threshold"]) == 4.0
    # A batch that kept nothing (+inf) leaves it where it was.
    got = batchtopk.after_update(params, {"smallest_kept": jnp.asarray(jnp.inf)}, False)
    assert float(got["threshold"]) == 2.0
    # architectures.after_update also brings the decoder column [2, 0] back to [1, 0].
    got = architectures.after_update(params, {"smallest_kept": jnp.asarray(4.0)}, "batchtopk",
                                     False)
    np.testing.assert_allclose(got["threshold"], 2.002, rtol=1e-14)
    np.testing.assert_allclose(got["W2"], [[1.0], [0.0]], rtol=1e-15)
    # relu-l1's decoder is left alone.
    assert architectures.after_update(params, {}, "relu-l1", False) is params


def test_kth_largest_returns_zero_itself_and_negatives_exactly():
    # +0.0's key is exactly the sign bit: the k-th largest 0.0 must come back as 0.0, not NaN
    values = jnp.asarray([[3.0, 0.0, -1.0, -0.5], [0.0, 0.0, 2.0, -7.0]])
    for k, want in ((1, [3.0, 2.0]), (2, [0.0, 0.0]), (3, [-0.5, 0.0]), (4, [-1.0, -7.0])):
        got = common.kth_largest(values, k)
        np.testing.assert_array_equal(got, want, err_msg=f"k={k}")
    for dtype in (jnp.float32, jnp.float64):
        assert common.kth_largest(values.astype(dtype), 2).dtype == dtype


def test_batchtopk_keeps_no_zero_pre_activation():
    # pre = [[1, 2, 0], [3, -1, 0]] (W1 = [e1, e2, 0], no biases); k = 2 over 2 examples keeps
    # the 4 largest, the 4th being 0: a pre-activation of exactly 0 is not kept (f = relu), so
    # three are, and the smallest kept (the threshold's next target) is 1, not 0.
    params = {"W1": jnp.asarray([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]), "b1": jnp.zeros(3),
              "W2": jnp.eye(2, 3), "b2": jnp.zeros(2), "threshold": jnp.asarray(0.0)}
    x = jnp.asarray([[1.0, 2.0], [3.0, -1.0]])
    pre, kept = batchtopk.selection(params, x, Hyper(0.01, 0.0, 0.0, k=2))
    np.testing.assert_array_equal(kept, [[1, 1, 0], [1, 0, 0]])
    terms = batchtopk.terms(params, x, Hyper(0.01, 0.0, 0.0, k=2), architectures.Options())
    assert float(terms["smallest_kept"]) == 1.0


def test_batchtopk_threshold_keeps_its_dtype():
    params = {"threshold": jnp.asarray(2.0, jnp.float32)}
    got = batchtopk.after_update(params, {"smallest_kept": jnp.asarray(4.0, jnp.float64)}, False)
    assert got["threshold"].dtype == jnp.float32


def test_batchtopk_inference_keeps_what_is_above_its_threshold_and_zero():
    # pre = [[1, 2, 0], [3, -1, 0]] as above: threshold 2 keeps only 3 (2 itself is not above
    # it); a negative threshold keeps every positive pre-activation and never a zero one
    params = {"W1": jnp.asarray([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]), "b1": jnp.zeros(3),
              "W2": jnp.eye(2, 3), "b2": jnp.zeros(2), "threshold": jnp.asarray(2.0)}
    x = jnp.asarray([[1.0, 2.0], [3.0, -1.0]])
    np.testing.assert_array_equal(batchtopk.encode(params, x), [[0, 0, 0], [3, 0, 0]])
    params["threshold"] = jnp.asarray(-0.5)
    got = batchtopk.encode(params, x)
    np.testing.assert_array_equal(got, [[1, 2, 0], [3, 0, 0]])
    assert not np.any(np.signbit(np.asarray(got)))  # the zeros are +0
