"""gradcheck: the three-way check on every term and penalty, UFLDL's sanity check, and finite and
relative differences against hand-worked values."""

import jax.numpy as jnp
import numpy as np
import pytest
from helpers import make_problem

import saejax
from saejax import gradcheck
from saejax.schema import PENALTIES


@pytest.mark.parametrize("penalty", PENALTIES)
@pytest.mark.parametrize("term", list(gradcheck.TERM_FUNCTIONS))
def test_three_way_agreement(penalty, term):
    params, x = make_problem()
    result = gradcheck.check(params, x, saejax.Hyper(0.05, 3.0, 1e-3), penalty, term)
    d = result["differences"]
    for block in (*params, "all"):
        assert d["analytic~autodiff"][block] < 1e-12, (block, d)
    assert d["analytic~numerical"]["all"] < 1e-9, d
    assert d["autodiff~numerical"]["all"] < 1e-9, d
    assert result["passed"]


def test_ufldl_sanity_check():
    result = gradcheck.ufldl_sanity_check()
    assert result["exact"] == [268.0, 6.0]
    assert 1e-13 < result["difference"] < 1e-11  # about 2e-12: rounding, not truncation
    np.testing.assert_allclose(result["numerical"], [268.0, 6.0], rtol=1e-8)


def test_numerical_grad_structural_zero_is_exact():
    # Weight decay does not depend on the biases: their finite differences are exactly zero.
    params, _ = make_problem()
    g = gradcheck.numerical_grad(lambda p: saejax.weight_decay(p, 0.1), params)
    assert not np.any(g["b1"]) and not np.any(g["b2"])
    np.testing.assert_allclose(g["W1"], 0.1 * np.asarray(params["W1"]), rtol=1e-8)


def test_relative_difference_hand_worked():
    a = {"u": jnp.array([3.0, 0.0])}
    b = {"u": jnp.array([1.0, 0.0])}
    assert gradcheck.relative_difference(a, b) == pytest.approx(0.5)  # |2| / |4|
    assert gradcheck.relative_difference(b, b) == 0.0
    zero = {"u": jnp.zeros(2)}
    assert gradcheck.relative_difference(zero, zero) == 0.0
