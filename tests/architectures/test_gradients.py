"""The family's hand-written gradients against jax.grad and central finite differences, and
jumprelu's custom VJPs against the paper's pseudo-derivative written in NumPy, in float64.

Finite differences only converge to the gradient where J is smooth, so they are taken at points
off the kinks of each loss: ``gradcheck.family_problem`` redraws the point (seeded, NumPy's
``default_rng([seed, draw])``) until ``gradcheck.kink_margin`` -- the distance of every
pre-activation from 0, topk's gap between each example's k-th and (k+1)-th largest, batchtopk's
gap at the batch's (k m)-th, the aux loss's gap at each example's aux_k-th dead latent, jumprelu's
|pre - theta| - bandwidth/2 -- exceeds a margin well above what one step of eps can move a
pre-activation; each test asserts that margin again. Off jumprelu's kernel the pseudo-derivative
for log_threshold is 0, and finite differences must give 0 as well.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from saejax import architectures, gradcheck
from saejax.architectures import Options, common, jumprelu
from saejax.losses import Hyper

HYPER = Hyper(0.01, 3.0, 1e-3, l1=0.3, k=2, l0=0.1)  # lam > 0: weight decay in every check
AUX = Options(aux_k=2, aux_coeff=0.25)
DEAD = jnp.array([True, False, True, False, True])
CASES = [("relu-l1", Options(), None), ("topk", Options(), None), ("topk", AUX, DEAD),
         ("batchtopk", Options(), None), ("batchtopk", AUX, DEAD), ("jumprelu", Options(), None)]
IDS = [a + ("+aux" if d is not None else "") for a, _, d in CASES]
EPS = 2e-5  # central differences: ~2e-11 of rounding here, the J being polynomial between kinks


def point(arch, options, dead, **kw):
    params, x, margin = gradcheck.family_problem(arch, 6, 5, 7, HYPER, options, dead, eps=EPS,
                                                 **kw)
    # Ten times what one step of EPS can move a pre-activation, and at least 1e-3.
    assert margin > max(1e-3, 10 * EPS * 3), margin
    return params, x


# Compiled once per architecture: eagerly, every small op compiles on its own (seconds).
terms_and_grad = jax.jit(architectures.terms_and_grad, static_argnums=(3, 4))
grad_of_loss = jax.jit(jax.grad(architectures.loss), static_argnums=(3, 4))


def autodiff(params, x, arch, options, dead):
    return grad_of_loss(params, x, HYPER, arch, options, dead)


@pytest.mark.parametrize("arch, options, dead", CASES, ids=IDS)
def test_analytic_matches_autodiff(arch, options, dead):
    params, x = point(arch, options, dead)
    terms, analytic = terms_and_grad(params, x, HYPER, arch, options, dead)
    want = autodiff(params, x, arch, options, dead)
    assert set(analytic) == set(architectures.param_keys(arch)) == set(want)
    for key in want:
        assert gradcheck.relative_difference(analytic[key], want[key]) < 1e-10, key
    np.testing.assert_allclose(terms["loss"], architectures.loss(params, x, HYPER, arch, options,
                                                                 dead), rtol=1e-14)
    # the terms are the training form's, every one (batchtopk's threshold update reads
    # smallest_kept from them)
    plain_terms = architectures.terms(params, x, HYPER, arch, options, dead)
    assert set(terms) == set(plain_terms)
    for key in plain_terms:
        np.testing.assert_allclose(terms[key], plain_terms[key], rtol=1e-12, err_msg=key)
    if dead is not None:  # the aux loss is on, and changes the gradient
        plain = terms_and_grad(params, x, HYPER, arch, options, None)[1]
        assert terms["sparsity"] > 0
        assert gradcheck.relative_difference(plain["W2"], analytic["W2"]) > 1e-4


@pytest.mark.parametrize("arch, options, dead", CASES, ids=IDS)
def test_analytic_matches_finite_differences(arch, options, dead):
    params, x = point(arch, options, dead)
    analytic = terms_and_grad(params, x, HYPER, arch, options, dead)[1]
    numerical = gradcheck.numerical_grad(
        lambda p: architectures.loss(p, x, HYPER, arch, options, dead), params, EPS)
    for key in ("W1", "b1", "W2", "b2"):
        assert gradcheck.relative_difference(analytic[key], numerical[key]) < 1e-7, key
    if arch == "jumprelu":  # off the kernel: the pseudo-derivative and the true one are both 0
        assert not np.any(analytic["log_threshold"])
        assert not np.any(numerical["log_threshold"])
    if arch == "batchtopk":  # the inference threshold is no function of J's
        assert not np.any(analytic["threshold"]) and not np.any(numerical["threshold"])


# --- jumprelu's pseudo-derivative, inside the kernel ---------------------------------------------

BANDWIDTH = 0.5


def kernel_point(seed=0):
    """pre (6, 4), theta (4,) and a cotangent g, with a good share of pre within bandwidth/2 of
    their thresholds."""
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    pre = jax.random.normal(k1, (6, 4), jnp.float64)
    theta = jax.random.uniform(k2, (4,), jnp.float64, 0.1, 0.6)
    g = jax.random.normal(k3, (6, 4), jnp.float64)
    return pre, theta, g


def paper_kernel(pre, theta):
    """K((pre - theta) / eps), the rectangle kernel: 1 where |pre - theta| < eps / 2."""
    return (np.abs(pre - theta[None, :]) < BANDWIDTH / 2).astype(np.float64)


def test_jumprelu_vjp_is_the_papers_pseudo_derivative():
    pre, theta, g = kernel_point()
    out, vjp = jax.vjp(lambda p, t: jumprelu.jumprelu(p, t, BANDWIDTH), pre, theta)
    d_pre, d_theta = vjp(g)
    P, T, G = np.asarray(pre), np.asarray(theta), np.asarray(g)
    K = paper_kernel(P, T)
    assert 0 < K.sum() < K.size  # some pre inside the kernel, some outside
    np.testing.assert_allclose(out, np.where(P > T[None, :], P, 0.0), rtol=0)
    # dJumpReLU/dpre = H(pre - theta); dJumpReLU/dtheta = -(theta / eps) K((pre - theta) / eps)
    np.testing.assert_allclose(d_pre, G * (P > T[None, :]), rtol=0)
    want = np.sum(G * -(T[None, :] / BANDWIDTH) * K, axis=0)
    assert np.all(want[K.any(axis=0)] != 0)
    np.testing.assert_allclose(d_theta, want, rtol=1e-14)


def test_step_vjp_is_the_papers_pseudo_derivative():
    pre, theta, g = kernel_point(1)
    out, vjp = jax.vjp(lambda p, t: jumprelu.step(p, t, BANDWIDTH), pre, theta)
    d_pre, d_theta = vjp(g)
    P, T, G = np.asarray(pre), np.asarray(theta), np.asarray(g)
    K = paper_kernel(P, T)
    assert 0 < K.sum() < K.size
    np.testing.assert_array_equal(out, (P > T[None, :]).astype(np.float64))
    # dH/dpre = 0; dH/dtheta = -(1 / eps) K((pre - theta) / eps)
    assert not np.any(d_pre)
    want = np.sum(G * -(1.0 / BANDWIDTH) * K, axis=0)
    assert np.all(want[K.any(axis=0)] != 0)
    np.testing.assert_allclose(d_theta, want, rtol=1e-14)


def test_jumprelu_log_threshold_gradient_inside_the_kernel():
    # Thresholds a quarter bandwidth below a pre-activation: the pseudo-derivative is nonzero,
    # and the hand-written one equals jax.grad's (through the custom VJPs), every block too.
    options = Options(bandwidth=0.01)
    params, x, margin = gradcheck.family_problem("jumprelu", 6, 5, 7, HYPER, options, eps=EPS,
                                                 inside_kernel=True)
    pre = np.asarray(common.pre_activation(params, x))
    theta = np.exp(np.asarray(params["log_threshold"]))
    assert np.any(np.abs(pre - theta[None, :]) < 0.005)  # inside the kernel
    assert margin > 1e-3  # and off the jump itself
    analytic = terms_and_grad(params, x, HYPER, "jumprelu", options, None)[1]
    want = autodiff(params, x, "jumprelu", options, None)
    assert np.count_nonzero(np.asarray(analytic["log_threshold"])) > 0
    for key in want:
        assert gradcheck.relative_difference(analytic[key], want[key]) < 1e-10, key
    # The hand-worked formula: dJ/dlog_theta_j = theta_j dJ/dtheta_j, with
    # dJ/dtheta_j = -(theta_j / eps) sum_k df_kj K_kj - (l0 / (m eps)) sum_k K_kj.
    p = {k: np.asarray(v) for k, v in params.items()}
    m, eps, active = x.shape[0], 0.01, pre > theta[None, :]
    g = 2.0 * ((pre * active) @ p["W2"].T + p["b2"] - np.asarray(x)) / m
    K = (np.abs(pre - theta[None, :]) < eps / 2).astype(np.float64)
    d_theta = -(theta / eps) * np.sum((g @ p["W2"]) * K, axis=0) - 0.1 / (m * eps) * K.sum(0)
    np.testing.assert_allclose(analytic["log_threshold"], theta * d_theta, rtol=1e-12)


@pytest.mark.parametrize("arch, options, dead", [  # one dtype path; every case in the whole suite
    CASES[0], *(pytest.param(*c, marks=pytest.mark.slow) for c in CASES[1:])], ids=IDS)
def test_float32_params_give_float32_terms_and_gradients(arch, options, dead):
    # nothing in a float32 evaluation may quietly promote to float64 (x64 is on in the tests)
    params, x = point(arch, options, dead)
    p32 = {k: v.astype(jnp.float32) for k, v in params.items()}
    terms, grads = terms_and_grad(p32, x.astype(jnp.float32), HYPER, arch, options, dead)
    for key, value in grads.items():
        assert value.dtype == jnp.float32, key
    for key in ("loss", "reconstruction", "weight_decay", "sparsity", "rho_hat", "mean_l0",
                "fvu"):
        assert terms[key].dtype == jnp.float32, key
    # the loss jax.grad differentiates (jumprelu's through its custom VJPs) stays float32 too
    loss = architectures.loss(p32, x.astype(jnp.float32), HYPER, arch, options, dead)
    assert loss.dtype == jnp.float32
    for x_mean in (np.zeros(6), None):  # b2 at the data mean, or at zero
        init = architectures.init_params(jax.random.key(0), 6, 5, arch, x_mean, jnp.float32)
        assert {v.dtype for v in init.values()} == {jnp.dtype(jnp.float32)}
