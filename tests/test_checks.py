"""Bad input gets a ValueError that names the problem, never a silent NaN."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference
from helpers import make_problem

import saejax

GOOD = saejax.Hyper(0.05, 3.0, 1e-3)


# Every public function that takes (params, x, hyper, penalty).
ENTRY_POINTS = [saejax.loss, saejax.loss_terms, saejax.analytic_grad,
                saejax.value_and_analytic_grad, saejax.sparsity, saejax.sparsity_grad]


@pytest.mark.parametrize("fn", ENTRY_POINTS, ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    "hyper, message",
    [
        (saejax.Hyper(0.0, 3.0, 1e-3), "rho must lie strictly inside"),
        (saejax.Hyper(1.0, 3.0, 1e-3), "rho must lie strictly inside"),
        (saejax.Hyper(-0.2, 3.0, 1e-3), "rho must lie strictly inside"),
        (saejax.Hyper(jnp.array([0.1, 1.2]), 3.0, 1e-3), "rho must lie strictly inside"),
        (saejax.Hyper(float("nan"), 3.0, 1e-3), "rho must lie strictly inside"),
        (saejax.Hyper(0.05, -1.0, 1e-3), "beta must be finite and >= 0"),
        (saejax.Hyper(0.05, 3.0, -1e-3), "lam must be finite and >= 0"),
    ],
)
def test_bad_hyper(fn, hyper, message):
    params, x = make_problem()
    with pytest.raises(ValueError, match=message):
        fn(params, x, hyper)


@pytest.mark.parametrize("fn", ENTRY_POINTS, ids=lambda f: f.__name__)
def test_nonfinite_x(fn):
    params, x = make_problem()
    for bad in (np.nan, np.inf):
        with pytest.raises(ValueError, match="contains 1 NaN or Inf"):
            fn(params, x.at[2, 3].set(bad), GOOD)


@pytest.mark.parametrize("fn", ENTRY_POINTS, ids=lambda f: f.__name__)
def test_x_wrong_rank_or_width(fn):
    params, x = make_problem()  # n_visible = 7
    with pytest.raises(ValueError, match="must be 2-D"):
        fn(params, x[0], GOOD)
    with pytest.raises(ValueError,
                       match=r"has 6 features per row but the model expects 7 \(n_visible=7\)"):
        fn(params, x[:, :6], GOOD)
    with pytest.raises(ValueError, match="features per row"):
        fn(params, x.T, GOOD)


@pytest.mark.parametrize("fn", ENTRY_POINTS, ids=lambda f: f.__name__)
def test_bad_params(fn):
    params, x = make_problem()
    missing = {k: v for k, v in params.items() if k != "b2"}
    with pytest.raises(ValueError, match=r"missing \['b2'\]"):
        fn(missing, x, GOOD)
    with pytest.raises(ValueError, match=r"unexpected \['W3'\]"):
        fn(dict(params, W3=params["W2"]), x, GOOD)
    with pytest.raises(ValueError, match=r"params\['W2'\] has shape \(7, 3\)"):
        fn(dict(params, W2=params["W2"][:, :3]), x, GOOD)
    with pytest.raises(ValueError, match=r"params\['b1'\] has shape"):
        fn(dict(params, b1=params["b1"][:, None]), x, GOOD)
    with pytest.raises(ValueError, match="must be a dict"):
        fn([params["W1"]], x, GOOD)


@pytest.mark.parametrize("fn", ENTRY_POINTS, ids=lambda f: f.__name__)
def test_unknown_penalty(fn):
    params, x = make_problem()
    with pytest.raises(ValueError, match=r"unknown penalty 'kld'; choose one of \['kl', 'squared', 'l1'\]"):
        fn(params, x, GOOD, "kld")


def test_term_functions_validate():
    params, x = make_problem()
    with pytest.raises(ValueError, match="lam must be"):
        saejax.weight_decay(params, -1.0)
    with pytest.raises(ValueError, match="lam must be"):
        saejax.weight_decay_grad(params, -1.0)
    with pytest.raises(ValueError, match="NaN or Inf"):
        saejax.reconstruction(params, x.at[0, 0].set(np.nan))
    with pytest.raises(ValueError, match="NaN or Inf"):
        saejax.reconstruction_grad(params, x.at[0, 0].set(np.nan))
    with pytest.raises(ValueError, match="positive integers"):
        saejax.init_params(jax.random.key(0), 0, 3)


def test_shapes_still_checked_under_jit():
    params, x = make_problem()
    with pytest.raises(ValueError, match="features per row"):
        jax.jit(saejax.loss)(params, x[:, :2], GOOD)


def test_traced_values_pass_through():
    # Inside a user's vmap the values are tracers and are not inspected (the sweep validates
    # its grid instead); the computation still runs, and each member gets its own J.
    params, x = make_problem()
    rho, beta, lam = [0.05, 0.2], [1.0, 3.0], [0.0, 1e-3]
    hyper = saejax.Hyper(jnp.array(rho), jnp.array(beta), jnp.array(lam))
    out = jax.vmap(saejax.loss, in_axes=(None, None, 0))(params, x, hyper)
    want = [reference.terms(params, x, *h)["loss"] for h in zip(rho, beta, lam)]
    assert out.shape == (2,)
    np.testing.assert_allclose(out, want, rtol=1e-13)


def test_the_sigmoid_decoder_refuses_training_data_outside_0_1():
    from saejax.checks import check_training_data
    from saejax.config import TrainConfig

    x = np.linspace(0.0, 1.0, 12).reshape(4, 3)
    sigmoid = TrainConfig(decoder="sigmoid")
    np.testing.assert_array_equal(check_training_data(x, sigmoid), x)  # [0, 1] itself is fine
    wide = x.copy()
    wide[1, 2], wide[3, 0] = -0.25, 1.5
    with pytest.raises(ValueError, match=r"range from -0.25 to 1.5\. Use a linear decoder "
                                         r"\(--decoder linear.*--normalize ufldl"):
        check_training_data(wide, sigmoid)
    with pytest.raises(ValueError, match="range from 0 to 1.001"):
        check_training_data(np.where(x == 1.0, 1.001, x), sigmoid)
    # a linear decoder reconstructs any real values
    np.testing.assert_array_equal(check_training_data(wide, TrainConfig(decoder="linear")), wide)
