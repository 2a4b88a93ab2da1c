"""The forward pass's named results against NumPy, UFLDL's initialization, and the shape errors at
its entry."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import saejax


def numpy_sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


@pytest.fixture
def net():
    params = saejax.init_params(jax.random.key(0), 6, 4, dtype=np.float64)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (5, 6))
    params = {k: np.asarray(v) for k, v in params.items()}
    # nonzero biases, so that a bias dropped or subtracted changes every result
    params["b1"], params["b2"] = rng.normal(0, 0.5, 4), rng.normal(0, 0.5, 6)
    return params, x


def test_results_name_themselves_and_still_unpack(net):
    params, x = net
    z2 = x @ params["W1"].T + params["b1"]
    a2 = numpy_sigmoid(z2)
    a3 = numpy_sigmoid(a2 @ params["W2"].T + params["b2"])
    hidden = saejax.encode(params, x)
    np.testing.assert_allclose(hidden.a2, a2, rtol=1e-12)
    np.testing.assert_allclose(hidden.z2, z2, rtol=1e-12)
    z2_again, a2_again = hidden  # positional unpacking, as before
    np.testing.assert_array_equal(a2_again, hidden.a2)
    out = saejax.forward(params, x)
    np.testing.assert_allclose(out.a2, a2, rtol=1e-12)
    np.testing.assert_allclose(out.a3, a3, rtol=1e-12)
    np.testing.assert_allclose(saejax.decode(params, a2).a3, a3, rtol=1e-12)
    linear = saejax.decode(params, a2, decoder="linear")
    np.testing.assert_allclose(linear.z3, a2 @ params["W2"].T + params["b2"], rtol=1e-12)
    np.testing.assert_array_equal(linear.a3, linear.z3)
    np.testing.assert_allclose(saejax.forward(params, x, "linear").a3, linear.z3, rtol=1e-12)
    # tied: W2 = W1^T
    tied = {k: v for k, v in params.items() if k != "W2"}
    np.testing.assert_allclose(saejax.decode(tied, a2, decoder="linear", tied=True).z3,
                               a2 @ params["W1"] + params["b2"], rtol=1e-12)
    # rho_hat: the mean over the examples (rows), per hidden unit
    np.testing.assert_allclose(saejax.mean_activation(a2), a2.mean(axis=0), rtol=1e-12)


def test_a_wrong_width_raises_a_value_error_naming_the_shapes(net):
    params, x = net
    with pytest.raises(ValueError, match=r"x has shape \(5, 3\) but the network takes 6 inputs "
                                         r"per example: pass \(M, 6\)"):
        saejax.encode(params, x[:, :3])
    # one example as a vector, or a stack of batches: (M, N) is what the network takes
    with pytest.raises(ValueError, match=r"x has shape \(6,\) but .* pass \(M, 6\)"):
        saejax.encode(params, x[0])
    with pytest.raises(ValueError, match=r"x has shape \(2, 5, 6\)"):
        saejax.encode(params, np.stack([x, x]))
    with pytest.raises(ValueError, match=r"a2 has shape \(5, 2\).*takes 4 hidden units"):
        saejax.decode(params, np.ones((5, 2)))


def test_a_tied_or_untied_mismatch_names_the_flag(net):
    params, x = net
    tied = saejax.init_params(jax.random.key(0), 6, 4, tied=True)
    with pytest.raises(ValueError, match="pass tied=True"):
        saejax.forward(tied, x)
    with pytest.raises(ValueError, match="pass tied=True"):
        saejax.loss(tied, x, saejax.Hyper(0.1, 3.0, 1e-3))
    with pytest.raises(ValueError, match="pass tied=False"):
        saejax.forward(params, x, tied=True)


def test_init_params_ufldl():
    n, h = 64, 25
    params = saejax.init_params(jax.random.key(3), n, h, jnp.float32)
    r = np.sqrt(6) / np.sqrt(n + h + 1)
    assert params["W1"].shape == (h, n) and params["W2"].shape == (n, h)
    assert params["b1"].shape == (h,) and params["b2"].shape == (n,)
    assert all(v.dtype == jnp.float32 for v in params.values())
    for key in ("W1", "W2"):
        w = np.asarray(params[key])
        assert np.abs(w).max() <= r
        # Uniform on [-r, r]: the extremes come close to r (closer than the bound with
        # n + h + 2 under the root, 0.9945 r) and the variance is r^2 / 3.
        assert np.abs(w).max() > np.sqrt(6) / np.sqrt(n + h + 2)
        np.testing.assert_allclose(w.var(), r**2 / 3, rtol=0.15)
    assert not np.any(params["b1"]) and not np.any(params["b2"])


@pytest.mark.parametrize("fn", ["decode", "forward"])
def test_an_unknown_decoder_is_refused_not_read_as_sigmoid(net, fn):
    params, x = net
    arg = np.ones((5, 4)) if fn == "decode" else x
    with pytest.raises(ValueError, match=r"unknown decoder 'linaer'; choose one of \['sigmoid', "
                                         r"'linear'\]"):
        getattr(saejax, fn)(params, arg, decoder="linaer")


def test_param_keys_name_the_untied_network_by_default():
    assert saejax.model.param_keys() == ("W1", "b1", "W2", "b2")
    assert saejax.model.param_keys(tied=True) == ("W1", "b1", "b2")
