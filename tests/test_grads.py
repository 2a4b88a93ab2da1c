"""The hand-written gradient against autodiff, finite differences and the reference's NumPy loop."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference
from helpers import make_problem
from hypothesis import given, settings
from hypothesis import strategies as st

import saejax
from saejax import gradcheck
from saejax.schema import PENALTIES


@pytest.mark.parametrize("penalty", PENALTIES)
def test_analytic_matches_numpy_loop(penalty):
    params, x = make_problem()
    got = saejax.analytic_grad(params, x, saejax.Hyper(0.05, 3.0, 1e-3), penalty)
    want = reference.grad(params, x, 0.05, 3.0, 1e-3, penalty)
    for k in params:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-12, atol=1e-15, err_msg=k)


def test_benchmark_numpy_peer_matches_the_loop():
    # experiments/peers/numpy_sae.py takes J from the reference but times a vectorized backprop of
    # its own: it must stay the gradient of the reference's per-example loop, and keep float32.
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "experiments" / "peers" / "numpy_sae.py"
    spec = importlib.util.spec_from_file_location("numpy_sae", path)
    numpy_sae = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(numpy_sae)
    params, x = make_problem()
    np_params = {k: np.asarray(v) for k, v in params.items()}
    _, g = numpy_sae.value_and_grad(np_params, np.asarray(x), 0.05, 3.0, 1e-3)
    want = reference.grad(params, x, 0.05, 3.0, 1e-3)
    for k in want:
        np.testing.assert_allclose(g[k], want[k], rtol=1e-12, atol=1e-15, err_msg=k)
    J32, g32 = numpy_sae.value_and_grad({k: v.astype(np.float32) for k, v in np_params.items()},
                                        np.asarray(x, np.float32), 0.05, 3.0, 1e-3)
    assert J32.dtype == np.float32 and all(v.dtype == np.float32 for v in g32.values())


def test_sparsity_grad_is_the_notes_formula():
    # d/dW1_ij [beta sum_l KL(rho||rho_hat_l)]
    #   = beta (-rho/rho_hat_i + (1-rho)/(1-rho_hat_i)) (1/m) sum_k s'(z2_i(x_k)) x_k,j
    params, x = make_problem()
    rho, beta = 0.05, 3.0
    W1, xs = np.asarray(params["W1"]), np.asarray(x)
    a2, _ = reference.forward(params, x)
    dkl = reference.penalty_derivative("kl", rho, a2.mean(0))
    want_W1 = np.empty_like(W1)
    for i in range(W1.shape[0]):
        for j in range(W1.shape[1]):
            want_W1[i, j] = beta * dkl[i] * np.mean(a2[:, i] * (1 - a2[:, i]) * xs[:, j])
    got = saejax.sparsity_grad(params, x, saejax.Hyper(rho, beta, 0.0))
    np.testing.assert_allclose(got["W1"], want_W1, rtol=1e-12)
    np.testing.assert_allclose(got["b1"], beta * dkl * np.mean(a2 * (1 - a2), 0), rtol=1e-12)
    assert not np.any(got["W2"]) and not np.any(got["b2"])


def test_value_and_analytic_grad_agrees_with_loss():
    params, x = make_problem()
    hyper = saejax.Hyper(0.05, 3.0, 1e-3)
    value, g = saejax.value_and_analytic_grad(params, x, hyper)
    np.testing.assert_allclose(value, saejax.loss(params, x, hyper), rtol=1e-14)
    assert gradcheck.relative_difference(g, saejax.analytic_grad(params, x, hyper)) == 0.0


def test_terms_sum_to_total_gradient():
    params, x = make_problem()
    hyper = saejax.Hyper(0.05, 3.0, 1e-3)
    parts = [saejax.reconstruction_grad(params, x), saejax.weight_decay_grad(params, 1e-3),
             saejax.sparsity_grad(params, x, hyper)]
    total = saejax.analytic_grad(params, x, hyper)
    for k in params:
        np.testing.assert_allclose(sum(p[k] for p in parts), total[k], rtol=1e-12, atol=1e-16)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(
    n=st.integers(1, 6), h=st.integers(1, 5), m=st.integers(1, 7),
    rho=st.floats(0.005, 0.995), beta=st.floats(0.0, 5.0), lam=st.floats(0.0, 0.1),
    penalty=st.sampled_from(PENALTIES), seed=st.integers(0, 2**16),
)
@pytest.mark.slow
def test_property_three_way(n, h, m, rho, beta, lam, penalty, seed):
    params, x = make_problem(n, h, m, seed)
    hyper = saejax.Hyper(rho, beta, lam)
    g = gradcheck.gradients(params, x, hyper, penalty)
    for k in params:
        assert gradcheck.relative_difference(g["analytic"][k], g["autodiff"][k]) < 1e-12, k
    assert gradcheck.relative_difference(g["analytic"], g["numerical"]) < 1e-9
    want = reference.grad(params, x, rho, beta, lam, penalty)
    assert gradcheck.relative_difference(g["analytic"], want) < 1e-12


def test_analytic_grad_uses_no_autodiff(monkeypatch):
    # The hand-written gradient must not call jax.grad, vjp or jvp.
    def forbidden(*a, **k):
        raise AssertionError("autodiff called inside analytic_grad")

    for name in ("grad", "vjp", "jvp", "value_and_grad", "linearize"):
        monkeypatch.setattr(jax, name, forbidden)
    params, x = make_problem(seed=5)
    with jax.disable_jit():
        g = saejax.analytic_grad(params, x, saejax.Hyper(0.05, 3.0, 1e-3))
    assert np.all(np.isfinite(g["W1"]))


# Each penalty with each variant; each variant meets every kind of last block (padded, an exact
# fit, one block larger than m) once, a Latin square. The first penalty's row (every variant,
# every kind of block) is in the fast tier, the others in the slow one. The property test in
# tests/properties/ draws further combinations.
VARIANTS = [("sigmoid", False), ("linear", False), ("sigmoid", True)]
BLOCKS = [(37, 8), (40, 8), (9, 16)]
BLOCKED = [pytest.param(penalty, *variant, *BLOCKS[(i + j) % 3],
                        marks=[pytest.mark.slow] if i else [])
           for i, penalty in enumerate(PENALTIES) for j, variant in enumerate(VARIANTS)]


@pytest.mark.parametrize("penalty, decoder, tied, m, block", BLOCKED)
def test_blocked_evaluation_equals_the_whole_batch(penalty, decoder, tied, m, block):
    # Two passes over blocks (a padded last block, an exact fit, one block larger than m) give
    # the one-pass terms and gradient to rounding.
    from saejax import grads

    k1, k2, k3, k4 = jax.random.split(jax.random.key(m), 4)
    params = saejax.init_params(k1, 6, 4, jnp.float64, tied=tied)
    # every bias nonzero: a path that dropped one would go unseen at zero
    params["b1"] = 0.3 * jax.random.normal(k2, (4,), jnp.float64)
    params["b2"] = 0.3 * jax.random.normal(k4, (6,), jnp.float64)
    x = jax.random.uniform(k3, (m, 6), jnp.float64)
    hyper = saejax.Hyper(0.05, 3.0, 1e-3)
    want_terms, want = grads.terms_and_grad(params, x, hyper, penalty, decoder, tied)
    got_terms, got = grads.terms_and_grad_blocked(params, x, hyper, penalty, decoder, tied,
                                                  block=block)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-12, atol=1e-15, err_msg=k)
    for k in ("loss", "reconstruction", "weight_decay", "sparsity", "rho_hat"):
        np.testing.assert_allclose(got_terms[k], want_terms[k], rtol=1e-12, err_msg=k)


def test_the_terms_gradients_sum_to_the_total_when_tied():
    params, x = make_problem()
    tied = {k: v for k, v in params.items() if k != "W2"}
    hyper = saejax.Hyper(0.05, 3.0, 1e-3)
    parts = [saejax.reconstruction_grad(tied, x, tied=True),
             saejax.weight_decay_grad(tied, 1e-3, tied=True),
             saejax.sparsity_grad(tied, x, hyper, tied=True)]
    total = saejax.analytic_grad(tied, x, hyper, tied=True)
    want = reference.grad(tied, x, 0.05, 3.0, 1e-3)
    for k in tied:
        np.testing.assert_allclose(sum(p[k] for p in parts), total[k], rtol=1e-12, atol=1e-16)
        np.testing.assert_allclose(total[k], want[k], rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="unknown decoder"):
        saejax.reconstruction_grad(params, x, decoder="linaer")


@pytest.mark.slow
def test_blocked_evaluation_keeps_float32_and_reports_l0_and_fvu():
    from saejax import grads

    params, x = make_problem(n=6, h=4, m=11, seed=7, dtype=jnp.float32)
    hyper = saejax.Hyper(0.05, 3.0, 1e-3)
    want_terms, want = grads.terms_and_grad(params, x, hyper, "kl", "sigmoid", False)
    for block in (4, 11):  # a padded last block, and one block of all 11 (no padding mask)
        got_terms, got = grads.terms_and_grad_blocked(params, x, hyper, "kl", "sigmoid", False,
                                                      block=block)
        for k in want:
            assert got[k].dtype == jnp.float32, k
            np.testing.assert_allclose(got[k], want[k], rtol=2e-5, atol=1e-6, err_msg=k)
        for k in ("loss", "mean_l0", "fvu"):
            assert got_terms[k].dtype == jnp.float32, k
            np.testing.assert_allclose(got_terms[k], want_terms[k], rtol=2e-5, err_msg=k)
        assert float(got_terms["mean_l0"]) == 4.0


@pytest.mark.slow
def test_blocked_evaluation_defaults_are_the_sigmoid_untied_network_in_one_block():
    from saejax import grads

    params, x = make_problem(n=5, h=3, m=7, seed=8)
    hyper = saejax.Hyper(0.05, 3.0, 1e-3)
    want_terms, want = grads.terms_and_grad(params, x, hyper)
    got_terms, got = grads.terms_and_grad_blocked(params, x, hyper)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-12, atol=1e-15, err_msg=k)
    np.testing.assert_allclose(got_terms["loss"], want_terms["loss"], rtol=1e-13)
