"""The sparsity penalties: each derivative against finite differences, and the float32 KL against
float64."""

import jax.numpy as jnp
import numpy as np
import pytest

import saejax


def test_penalty_derivatives_against_finite_differences():
    rho_hat = jnp.linspace(0.02, 0.98, 25)
    for name, f in (("kl", saejax.kl_divergence), ("squared", saejax.squared_penalty),
                    ("l1", saejax.l1_penalty)):
        h = 1e-6
        fd = (f(0.1, rho_hat + h) - f(0.1, rho_hat - h)) / (2 * h)
        np.testing.assert_allclose(saejax.penalty_derivative(name, 0.1, rho_hat), fd, rtol=1e-8,
                                   atol=1e-9)


def test_float32_kl_keeps_its_digits_near_its_minimum():
    """Near rho_hat = rho the two terms of KL cancel; evaluated as log1p of differences, the
    float32 penalty stays within 1e-9 of float64 (the textbook form errs by ~1e-7 there)."""
    rho = np.float32(0.03)
    r = (rho * (1 + np.linspace(-0.05, 0.05, 101))).astype(np.float32)
    rho64, r64 = np.float64(rho), r.astype(np.float64)
    kl64 = rho64 * np.log(rho64 / r64) + (1 - rho64) * np.log((1 - rho64) / (1 - r64))
    d64 = -rho64 / r64 + (1 - rho64) / (1 - r64)
    kl32 = np.asarray(saejax.penalties.kl_divergence(rho, jnp.asarray(r)), np.float64)
    d32 = np.asarray(saejax.penalties.kl_derivative(rho, jnp.asarray(r)), np.float64)
    assert np.max(np.abs(kl32 - kl64)) < 1e-9
    textbook = rho * np.log(rho / r) + (1 - rho) * np.log((1 - rho) / (1 - r))  # float32
    assert np.max(np.abs(textbook - kl64)) > 1e-8  # the cancellation this form avoids
    np.testing.assert_allclose(d32, d64, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("rho", [0.005, 0.01, 0.05, 0.3])
def test_float32_kl_is_never_negative(rho):
    """KL(rho || rho_hat) >= 0: in float32, at rho_hat within a few roundings of rho (where
    rounding alone decides the sign) and at saturated rho_hat, every unit stays >= 0 and
    within 1e-9 of the float64 divergence."""
    rho = np.float32(rho)
    eps = np.finfo(np.float32).eps
    near = rho * (1 + eps * np.arange(-300, 301))
    saturated = [0.0, 1e-9, saejax.RHO_HAT_EPS, 1 - saejax.RHO_HAT_EPS, 1 - 1e-9, 1.0]
    r = np.concatenate([near, saturated]).astype(np.float32)
    kl32 = np.asarray(saejax.penalties.kl_divergence(rho, jnp.asarray(r)))
    assert kl32.dtype == np.float32 and np.all(kl32 >= 0.0), kl32.min()
    lo, hi = float(np.float32(saejax.RHO_HAT_EPS)), float(np.float32(1 - saejax.RHO_HAT_EPS))
    r64, rho64 = np.clip(r.astype(np.float64), lo, hi), np.float64(rho)
    kl64 = rho64 * np.log(rho64 / r64) + (1 - rho64) * np.log((1 - rho64) / (1 - r64))
    np.testing.assert_allclose(kl32[:len(near)], kl64[:len(near)], rtol=0, atol=1e-9)
    np.testing.assert_allclose(kl32[len(near):], kl64[len(near):], rtol=1e-4)
    # a whole float32 hidden layer at rho_hat ~ rho: the sparsity term of J is >= 0 too
    hyper = saejax.Hyper(float(rho), 3.0, 1e-4)
    assert float(saejax.losses.sparsity_from(jnp.asarray(near, jnp.float32), hyper, "kl")) >= 0.0


def test_penalties_by_hand_and_the_kl_clip():
    rho_hat = jnp.asarray([0.5, 0.1, 0.0, 1.0])
    want_kl = [0.1 * np.log(0.2) + 0.9 * np.log(1.8), 0.0,  # KL(0.1 || 0.5); at its minimum
               0.1 * np.log(0.1 / 1e-6) + 0.9 * np.log(0.9 / (1 - 1e-6)),  # clipped to eps
               0.1 * np.log(0.1 / (1 - 1e-6)) + 0.9 * np.log(0.9 / 1e-6)]
    np.testing.assert_allclose(saejax.penalty_value("kl", 0.1, rho_hat), want_kl, rtol=1e-9)
    # flat outside the clip interval, so its derivative is 0 there
    np.testing.assert_allclose(saejax.penalty_derivative("kl", 0.1, rho_hat),
                               [-0.2 + 1.8, 0.0, 0.0, 0.0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(saejax.penalty_value("squared", 0.1, rho_hat),
                               [0.16, 0.0, 0.01, 0.81], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(saejax.penalty_value("l1", 0.1, rho_hat), rho_hat)
    np.testing.assert_array_equal(saejax.penalty_derivative("l1", 0.1, rho_hat), np.ones(4))


@pytest.mark.parametrize("name", ["l2", None, ["kl"]])
def test_an_unknown_penalty_names_the_choices(name):
    with pytest.raises(ValueError, match=r"unknown penalty .*choose one of \['kl', 'squared', "
                                         r"'l1'\]"):
        saejax.penalty_value(name, 0.1, jnp.ones(2))


def test_kl_derivative_on_both_sides_of_each_clip_bound_and_at_it():
    """Inside the open interval (1e-6, 1 - 1e-6) the derivative is the notes' formula, written
    here in NumPy; at each bound and beyond it the clipped KL is flat and the derivative 0."""
    eps = 1e-6  # the clip constant, written here rather than read from saejax
    assert saejax.RHO_HAT_EPS == eps
    rho = 0.2
    inside = np.array([np.nextafter(eps, 1.0), 2 * eps, 0.2, 0.5, 1 - 2 * eps,
                       np.nextafter(1 - eps, 0.0)])
    outside = np.array([0.0, np.nextafter(eps, 0.0), eps, 1 - eps, np.nextafter(1 - eps, 1.0),
                        1.0])
    want = -rho / inside + (1 - rho) / (1 - inside)
    got = saejax.penalty_derivative("kl", rho, jnp.asarray(np.concatenate([inside, outside])))
    np.testing.assert_allclose(got[:len(inside)], want, rtol=1e-9)
    np.testing.assert_array_equal(got[len(inside):], np.zeros(len(outside)))
    # and the value is flat there: the same at each bound as beyond it
    at = saejax.penalty_value("kl", rho, jnp.asarray([eps, 0.0, 1 - eps, 1.0]))
    assert at[0] == at[1] and at[2] == at[3]
    np.testing.assert_allclose(at[0], rho * np.log(rho / eps) + (1 - rho) * np.log((1 - rho)
                                                                                  / (1 - eps)),
                               rtol=1e-12)


@pytest.mark.parametrize("name", ["squared", "l1"])
def test_unclipped_penalties_have_their_derivative_everywhere(name):
    # squared and l1 are not clipped: their derivative holds at 0, 1 and beyond the KL clip
    r = np.array([0.0, 1e-9, 1e-6, 0.3, 1 - 1e-6, 1.0])
    want = {"squared": 2 * (r - 0.3), "l1": np.ones_like(r)}[name]
    np.testing.assert_allclose(saejax.penalty_derivative(name, 0.3, jnp.asarray(r)), want,
                               rtol=1e-15, atol=1e-18)
    value = {"squared": (r - 0.3) ** 2, "l1": r}[name]
    np.testing.assert_allclose(saejax.penalty_value(name, 0.3, jnp.asarray(r)), value,
                               rtol=1e-15, atol=1e-18)
