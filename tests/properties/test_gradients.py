"""Laws of the gradients that hold everywhere, drawn by hypothesis on small random problems.

- The sigmoid network's hand-written gradient equals ``jax.grad`` of its loss for random widths,
  batch sizes, rho near 0 and near 1, beta = 0 and lam = 0, data of any range the decoder
  accepts, every penalty, both decoders, tied or not, and the blocked two-pass evaluation.
- Each family architecture's hand-written gradient equals ``jax.grad`` of its loss at random
  points off the kinks (``gradcheck.family_problem``), for random widths, k, L1 and L0
  coefficients, with and without dead latents.
- Each penalty's dP/drho_hat equals ``jax.grad`` of P wherever P is differentiable: inside
  the KL clip interval and outside it, on both sides of each bound.

A failing example is printed with its reproduction blob and its seed (tests/conftest.py), and
kept in hypothesis's database (.hypothesis/), which replays it first on the next run.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import property_settings
from hypothesis import assume, given
from hypothesis import strategies as st

import saejax
from saejax import architectures, grads, penalties
from saejax.architectures import Options
from saejax.architectures.gradcheck import family_dead, family_problem
from saejax.differences import relative_difference
from saejax.losses import Hyper
from saejax.schema import ARCHS, PENALTIES

PROPERTY = property_settings(max_examples=10)
FAMILY = ARCHS[1:]
# rho anywhere in (0, 1), its ends included in the draw
RHOS = st.one_of(st.sampled_from([1e-4, 0.01, 0.5, 0.99, 0.9999]), st.floats(1e-4, 0.9999))
# beta and lam of 0 included in every draw's reach
BETAS = st.one_of(st.just(0.0), st.floats(0.0, 10.0))
LAMS = st.one_of(st.just(0.0), st.floats(0.0, 0.1))


def sigmoid_problem(n, h, m, seed, tied, low, spread):
    k = jax.random.split(jax.random.key(seed), 5)
    params = saejax.init_params(k[0], n, h, jnp.float64, tied=tied)
    # every bias nonzero, so that no bias path can drop out unseen
    params["b1"] = 0.5 * jax.random.normal(k[1], (h,), jnp.float64)
    params["b2"] = 0.5 * jax.random.normal(k[2], (n,), jnp.float64)
    params["W1"] = params["W1"] * (1.0 + jax.random.uniform(k[3], (), jnp.float64))
    x = low + spread * jax.random.uniform(k[4], (m, n), jnp.float64)
    return params, x


# Widths and batch sizes from a few shapes (each new shape compiles anew); the values drawn
# within a shape (hyperparameters, data, parameters) are traced and cost nothing to vary.
SHAPES = st.sampled_from([(1, 1, 1), (2, 3, 1), (5, 2, 4), (3, 4, 6)])


@pytest.mark.slow
@PROPERTY
@given(shape=SHAPES, seed=st.integers(0, 2**16), rho=RHOS, beta=BETAS, lam=LAMS, penalty=st.sampled_from(PENALTIES),
       variant=st.sampled_from([("sigmoid", False), ("sigmoid", True), ("linear", False)]),
       low=st.floats(-3.0, 3.0), spread=st.floats(0.0, 4.0))
def test_sigmoid_analytic_grad_equals_autodiff(shape, seed, rho, beta, lam, penalty, variant,
                                               low, spread):
    (n, h, m), (decoder, tied) = shape, variant
    if decoder == "sigmoid":  # the sigmoid decoder's targets are in [0, 1]
        low, spread = min(max(low, 0.0), 1.0), min(spread, 1.0)
        spread = min(spread, 1.0 - low)
    params, x = sigmoid_problem(n, h, m, seed, tied, low, spread)
    hyper = Hyper(rho, beta, lam)
    got = saejax.analytic_grad(params, x, hyper, penalty, decoder=decoder, tied=tied)
    want = jax.grad(saejax.loss)(params, x, hyper, penalty, decoder=decoder, tied=tied)
    assert set(got) == set(want)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-9, atol=1e-12, err_msg=key)


@pytest.mark.slow
@PROPERTY
@given(mb=st.sampled_from([(7, 3), (8, 4), (5, 8)]), seed=st.integers(0, 2**16), rho=RHOS, beta=BETAS, lam=LAMS,
       penalty=st.sampled_from(PENALTIES),
       variant=st.sampled_from([("sigmoid", False), ("sigmoid", True), ("linear", False)]))
def test_blocked_terms_and_grad_equal_one_pass(mb, seed, rho, beta, lam, penalty, variant):
    # blocks: a padded last one, an exact fit, one larger than the batch
    (m, block), (decoder, tied) = mb, variant
    params, x = sigmoid_problem(4, 3, m, seed, tied, 0.0, 1.0)
    hyper = Hyper(rho, beta, lam)
    want_terms, want = grads.terms_and_grad(params, x, hyper, penalty, decoder, tied)
    got_terms, got = grads.terms_and_grad_blocked(params, x, hyper, penalty, decoder, tied,
                                                  block=block)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-10, atol=1e-13, err_msg=key)
    for key in ("loss", "reconstruction", "weight_decay", "sparsity", "rho_hat"):
        np.testing.assert_allclose(got_terms[key], want_terms[key], rtol=1e-10, atol=1e-14,
                                   err_msg=key)


_family_grad = jax.jit(architectures.terms_and_grad, static_argnums=(3, 4))
_family_autodiff = jax.jit(jax.grad(architectures.loss), static_argnums=(3, 4))


@pytest.mark.slow
@PROPERTY
@given(arch=st.sampled_from(FAMILY), shape=st.sampled_from([(3, 4, 5), (6, 5, 3)]),
       seed=st.integers(0, 2**10), k=st.integers(1, 3),
       l1=st.floats(0.0, 1.0), l0=st.floats(0.0, 1.0), lam=LAMS, with_dead=st.booleans(),
       aux_k=st.integers(1, 3), aux_coeff=st.floats(0.0, 1.0))
def test_family_analytic_grad_equals_autodiff(arch, shape, seed, k, l1, l0, lam, with_dead,
                                              aux_k, aux_coeff):
    n, h, m = shape
    hyper = Hyper(0.01, 0.0, lam, l1=l1, k=k, l0=l0)
    options = Options(aux_k=aux_k, aux_coeff=aux_coeff)
    dead = family_dead(h) if with_dead and arch in ("topk", "batchtopk") else None
    try:
        params, x, _ = family_problem(arch, n, h, m, hyper, options, dead, seed=seed, eps=1e-6)
    except ValueError:  # no point off every kink in this draw's budget: nothing to compare
        assume(False)
    _, got = _family_grad(params, x, hyper, arch, options, dead)
    want = _family_autodiff(params, x, hyper, arch, options, dead)
    assert set(got) == set(want) == set(architectures.param_keys(arch))
    for key in want:
        assert relative_difference(got[key], want[key]) < 1e-10, key


# rho_hat anywhere in [0, 1]: inside the clip interval, in the clipped margins, at 0 and 1
RHO_HATS = st.lists(st.one_of(
    st.floats(0.0, 1.0),
    st.floats(0.0, 0.9 * penalties.RHO_HAT_EPS),
    st.floats(1.0 - 0.9 * penalties.RHO_HAT_EPS, 1.0),
    st.floats(1.1 * penalties.RHO_HAT_EPS, 1e-4),
), min_size=1, max_size=6)


@PROPERTY
@given(penalty=st.sampled_from(PENALTIES), rho=RHOS, rho_hat=RHO_HATS)
def test_penalty_derivative_equals_autodiff_where_differentiable(penalty, rho, rho_hat):
    r = np.asarray(rho_hat, np.float64)
    eps = penalties.RHO_HAT_EPS
    # P is not differentiable at the clip bounds (a kink), nor, for the clamped KL, where the
    # divergence rounds to 0 (rho_hat within rounding of rho): keep away from both.
    assume(np.all(np.abs(r - eps) > 1e-3 * eps) and np.all(np.abs(r - (1 - eps)) > 1e-3 * eps))
    if penalty == "kl":
        assume(np.all(np.abs(r - rho) > 1e-4 * rho * (1 - rho)))
    r = jnp.asarray(r)
    got = penalties.penalty_derivative(penalty, rho, r)
    want = jax.grad(lambda v: jnp.sum(penalties.penalty_value(penalty, rho, v)))(r)
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-12)
