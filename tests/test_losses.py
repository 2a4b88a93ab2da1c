"""J and its terms against the NumPy reference (tests/reference.py) and hand-worked values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference
from helpers import make_problem

import saejax


@pytest.mark.parametrize("penalty", ["kl", "squared", "l1"])
def test_loss_matches_numpy(penalty):
    params, x = make_problem()
    hyper = saejax.Hyper(rho=0.05, beta=3.0, lam=1e-3)
    got = saejax.loss_terms(params, x, hyper, penalty)
    want = reference.terms(params, x, 0.05, 3.0, 1e-3, penalty)
    for key in ("loss", "reconstruction", "weight_decay", "sparsity"):
        np.testing.assert_allclose(got[key], want[key], rtol=1e-13, err_msg=key)
    np.testing.assert_allclose(got["rho_hat"], want["rho_hat"], rtol=1e-13)
    np.testing.assert_allclose(saejax.loss(params, x, hyper, penalty), want["loss"], rtol=1e-13)
    np.testing.assert_allclose(saejax.reconstruction(params, x), want["reconstruction"], rtol=1e-13)
    np.testing.assert_allclose(saejax.weight_decay(params, 1e-3), want["weight_decay"], rtol=1e-13)
    np.testing.assert_allclose(
        saejax.sparsity(params, x, hyper, penalty), want["sparsity"], rtol=1e-13
    )


def test_hand_worked_zero_network():
    # With all weights and biases zero, a2 = a3 = 1/2 for every input, so
    # J = (1/2m) sum (1/2 - x)^2 + beta * h * KL(rho || 1/2), and the decay term is zero.
    n, h = 2, 3
    params = {"W1": jnp.zeros((h, n)), "b1": jnp.zeros(h), "W2": jnp.zeros((n, h)),
              "b2": jnp.zeros(n)}
    x = jnp.array([[0.0, 1.0], [0.5, 0.25]])
    rho, beta = 0.1, 2.0
    recon = ((0.5**2 + 0.5**2) + (0.0**2 + 0.25**2)) / (2 * 2)  # = 0.140625
    kl = rho * np.log(rho / 0.5) + (1 - rho) * np.log((1 - rho) / 0.5)
    want = recon + beta * h * kl
    got = saejax.loss(params, x, saejax.Hyper(rho, beta, 0.7))
    np.testing.assert_allclose(got, want, rtol=1e-14)
    assert recon == 0.140625
    # The squared penalty at rho_hat = 1/2: h (1/2 - rho)^2 = 3 * 0.16.
    got_sq = saejax.sparsity(params, x, saejax.Hyper(rho, 1.0, 0.0), "squared")
    np.testing.assert_allclose(got_sq, 0.48, rtol=1e-14)


def test_weight_decay_skips_biases():
    params, _ = make_problem()
    moved = dict(params, b1=params["b1"] + 5.0, b2=params["b2"] - 5.0)
    assert saejax.weight_decay(params, 0.1) == saejax.weight_decay(moved, 0.1)


@pytest.mark.parametrize("penalty", ["kl", "squared", "l1"])
def test_jit_and_nojit_agree(penalty):
    params, x = make_problem()
    hyper = saejax.Hyper(0.05, 3.0, 1e-3)
    jitted = jax.jit(saejax.loss, static_argnames="penalty")(params, x, hyper, penalty)
    with jax.disable_jit():
        eager = saejax.loss(params, x, hyper, penalty)
        eager_grad = saejax.analytic_grad(params, x, hyper, penalty)
    np.testing.assert_allclose(jitted, eager, rtol=1e-14)
    jit_grad = jax.jit(saejax.analytic_grad, static_argnames="penalty")(params, x, hyper, penalty)
    for k in params:
        np.testing.assert_allclose(jit_grad[k], eager_grad[k], rtol=1e-12, atol=1e-15)


def test_hyper_values_do_not_recompile():
    # Hyperparameters are traced leaves: a new value of rho reuses the compiled loss.
    params, x = make_problem()
    traces = []

    @jax.jit
    def f(params, x, hyper):
        traces.append(None)
        return saejax.loss(params, x, hyper)

    for rho in (0.01, 0.02, 0.3):
        f(params, x, saejax.Hyper(rho, 3.0, 1e-4))
    assert len(traces) == 1


def test_hyper_is_a_pytree_for_vmap():
    params, x = make_problem()
    rhos = jnp.array([0.01, 0.1, 0.5])
    hyper = saejax.Hyper(rhos, jnp.full(3, 2.0), jnp.full(3, 1e-3))
    batched = jax.vmap(saejax.loss, in_axes=(None, None, 0))(params, x, hyper)
    for i, rho in enumerate(rhos):
        want = reference.terms(params, x, float(rho), 2.0, 1e-3)["loss"]
        np.testing.assert_allclose(batched[i], want, rtol=1e-13)


def test_float32_saturated_units_stay_finite():
    # Huge weights drive some hidden units to exactly 0 or 1 in float32: log(0) must not appear.
    n, h, m = 4, 3, 5
    params = saejax.init_params(jax.random.key(0), n, h, jnp.float32)
    params["b1"] = jnp.array([200.0, -200.0, 0.0], jnp.float32)
    x = jax.random.uniform(jax.random.key(1), (m, n), jnp.float32)
    hyper = saejax.Hyper(0.05, 3.0, 1e-4)
    rho_hat = saejax.loss_terms(params, x, hyper)["rho_hat"]
    assert rho_hat[0] == 1.0 and rho_hat[1] == 0.0  # truly saturated in float32
    value = saejax.loss(params, x, hyper)
    g = saejax.analytic_grad(params, x, hyper)
    auto = jax.grad(saejax.loss)(params, x, hyper)
    assert np.isfinite(value)
    for k in params:
        assert np.all(np.isfinite(g[k])) and np.all(np.isfinite(auto[k])), k
        np.testing.assert_allclose(g[k], auto[k], rtol=1e-4, atol=1e-6)
    # The clipped penalty equals KL(rho || eps) and KL(rho || 1 - eps) for the saturated units.
    eps, rho = saejax.RHO_HAT_EPS, 0.05
    # The clip bounds as float32 holds them (1 - 1e-6 rounds to 1 - 1.013e-6); the float64
    # reference clips float32(1e-6) = 1e-6 - 2.5e-15 back up to 1e-6, a 2.5e-9 relative change.
    lo, hi = float(np.float32(eps)), float(np.float32(1 - eps))
    want = np.sum(reference.penalty_value("kl", rho, np.array([hi, lo, float(rho_hat[2])])))
    np.testing.assert_allclose(saejax.sparsity(params, x, hyper) / 3.0, want, rtol=1e-4)


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("fn", ["weight_decay", "weight_decay_grad"])
def test_weight_decay_refuses_malformed_params_and_a_negative_lam(fn, tied):
    f = getattr(saejax, fn)
    params = saejax.init_params(jax.random.key(0), 4, 3, jnp.float64, tied=tied)
    with pytest.raises(ValueError, match="must have exactly the keys"):
        f({k: v for k, v in params.items() if k != "b1"}, 0.1, tied=tied)
    with pytest.raises(ValueError, match=r"params\['b2'\] has shape \(3,\)"):
        f({**params, "b2": jnp.zeros(3)}, 0.1, tied=tied)
    with pytest.raises(ValueError, match="must be a dict"):
        f([params["W1"]], 0.1, tied=tied)
    with pytest.raises(ValueError, match="lam"):
        f(params, -0.1, tied=tied)
    # the other variant's params: named as such
    other = saejax.init_params(jax.random.key(0), 4, 3, jnp.float64, tied=not tied)
    with pytest.raises(ValueError, match="tied"):
        f(other, 0.1, tied=tied)


@pytest.mark.parametrize("tied", [False, True])
def test_weight_decay_and_its_gradient_by_hand(tied):
    # W1 = [[1, -2], [0, 3]] (||W1||^2 = 14); untied W2 = [[0.5, 0], [0, -1]] (1.25);
    # tied, W2 = W1^T counts W1 twice. lam = 0.2: (0.2/2)(14 + 1.25) = 1.525, tied 2.8.
    w1 = jnp.array([[1.0, -2.0], [0.0, 3.0]])
    params = {"W1": w1, "b1": jnp.array([5.0, -5.0]), "b2": jnp.array([7.0, 1.0])}
    if not tied:
        params["W2"] = jnp.array([[0.5, 0.0], [0.0, -1.0]])
    np.testing.assert_allclose(saejax.weight_decay(params, 0.2, tied=tied),
                               2.8 if tied else 1.525, rtol=1e-15)
    g = saejax.weight_decay_grad(params, 0.2, tied=tied)
    np.testing.assert_allclose(g["W1"], (0.4 if tied else 0.2) * np.asarray(w1), rtol=1e-15)
    np.testing.assert_array_equal(g["b1"], np.zeros(2))
    np.testing.assert_array_equal(g["b2"], np.zeros(2))
    if not tied:
        np.testing.assert_allclose(g["W2"], [[0.1, 0.0], [0.0, -0.2]], rtol=1e-15)


def test_the_term_helpers_follow_decoder_and_tied_like_the_loss():
    # reconstruction() and sparsity() of tied params and of a linear decoder on data outside
    # [0, 1], against NumPy written here (a3 = W1^T-decoded when tied, z3 itself when linear)
    def sigmoid(z):
        return 1 / (1 + np.exp(-z))

    params, x01 = make_problem(n=5, h=3, m=6, seed=2)
    x = 3.0 * np.asarray(x01) - 1.0  # in [-1, 2): the linear decoder's data
    p = {k: np.asarray(v) for k, v in params.items()}
    a2 = sigmoid(x @ p["W1"].T + p["b1"])
    for tied in (False, True):
        w2 = p["W1"].T if tied else p["W2"]
        q = {k: v for k, v in params.items() if not (tied and k == "W2")}
        a3 = a2 @ w2.T + p["b2"]
        np.testing.assert_allclose(
            saejax.reconstruction(q, x, decoder="linear", tied=tied),
            0.5 * np.sum((a3 - x) ** 2) / 6, rtol=1e-13)
        a3s = sigmoid(sigmoid(np.asarray(x01) @ p["W1"].T + p["b1"]) @ w2.T + p["b2"])
        np.testing.assert_allclose(saejax.reconstruction(q, x01, tied=tied),
                                   0.5 * np.sum((a3s - np.asarray(x01)) ** 2) / 6, rtol=1e-13)
        rho_hat = sigmoid(np.asarray(x01) @ p["W1"].T + p["b1"]).mean(axis=0)
        np.testing.assert_allclose(
            saejax.sparsity(q, x01, saejax.Hyper(0.3, 2.0, 0.0), "squared", tied=tied),
            2.0 * np.sum((rho_hat - 0.3) ** 2), rtol=1e-13)


def test_the_term_helpers_refuse_what_the_loss_refuses():
    params, x = make_problem()
    with pytest.raises(ValueError, match=r"rho"):
        saejax.sparsity(params, x, saejax.Hyper(1.5, 3.0, 0.0))
    with pytest.raises(ValueError, match=r"^lam must be finite and >= 0"):
        saejax.weight_decay(params, -1.0)
    with pytest.raises(ValueError, match="decoder"):
        saejax.reconstruction(params, x, decoder="relu")


def test_compute_terms_defaults_are_the_kl_penalty_untied():
    # compute_terms (what a training step differentiates) with its defaults: KL, sigmoid, untied
    params, x = make_problem()
    hyper = saejax.Hyper(0.05, 3.0, 1e-3)
    got = saejax.losses.compute_terms(params, x, hyper)
    want = reference.terms(params, x, 0.05, 3.0, 1e-3, "kl")
    for key in ("loss", "reconstruction", "weight_decay", "sparsity", "rho_hat"):
        np.testing.assert_allclose(got[key], want[key], rtol=1e-13, err_msg=key)


@pytest.mark.parametrize("decoder", ["sigmoid", "linear"])
def test_tied_loss_and_terms_match_numpy(decoder):
    # tied params (no W2) through loss, loss_terms and compute_terms, against the reference
    params, x = make_problem(n=6, h=4, m=5, seed=3)
    tied = {k: v for k, v in params.items() if k != "W2"}
    hyper = saejax.Hyper(0.05, 3.0, 1e-2)
    want = reference.terms(tied, x, 0.05, 3.0, 1e-2, "kl", decoder)
    got = saejax.loss_terms(tied, x, hyper, decoder=decoder, tied=True)
    direct = saejax.losses.compute_terms(tied, x, hyper, "kl", decoder, True)
    for key in ("loss", "reconstruction", "weight_decay", "sparsity"):
        np.testing.assert_allclose(got[key], want[key], rtol=1e-13, err_msg=key)
        np.testing.assert_allclose(direct[key], want[key], rtol=1e-13, err_msg=key)
    np.testing.assert_allclose(saejax.loss(tied, x, hyper, decoder=decoder, tied=True),
                               want["loss"], rtol=1e-13)


def test_the_terms_report_l0_and_fvu_of_the_sigmoid_network():
    # every sigmoid unit is active (a2 > 0): L0 = H; FVU against NumPy written here
    params, x = make_problem(n=6, h=4, m=5, seed=4)
    got = saejax.loss_terms(params, x, saejax.Hyper(0.05, 3.0, 1e-3))
    want = reference.terms(params, x, 0.05, 3.0, 1e-3, "kl")
    xn = np.asarray(x)
    assert float(got["mean_l0"]) == 4.0
    np.testing.assert_allclose(got["fvu"], np.sum((want["a3"] - xn) ** 2)
                               / np.sum((xn - xn.mean(axis=0)) ** 2), rtol=1e-12)


def test_the_decoder_and_the_penalty_are_checked_first_by_name():
    # a bad name is reported before a bad shape, and an unhashable one as unknown (not as a
    # jit error about static arguments)
    params, x = make_problem()
    for fn in (saejax.reconstruction, saejax.reconstruction_grad):
        with pytest.raises(ValueError, match="unknown decoder 'linaer'"):
            fn(params, x[:, :3], decoder="linaer")
    hyper = saejax.Hyper(0.05, 3.0, 1e-3)
    for fn in (saejax.loss, saejax.loss_terms, saejax.analytic_grad):
        with pytest.raises(ValueError, match=r"unknown penalty \['kl'\]"):
            fn(params, x, hyper, ["kl"])
