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


# --- The family's points off the kinks ------------------------------------------------------------

# W1 = I, b1 = b2 = 0, so pre = x:
#   example 1: pre = [3.0, 2.98, -0.5]    example 2: pre = [2.0, 2.5, -1.0]
KINK_X = jnp.array([[3.0, 2.98, -0.5], [2.0, 2.5, -1.0]])
KINK_PARAMS = {"W1": jnp.eye(3), "b1": jnp.zeros(3), "W2": jnp.eye(3), "b2": jnp.zeros(3)}


@pytest.mark.parametrize("arch, k, dead, aux_k, want", [
    ("relu-l1", 1, None, 2, 0.5),     # min |pre| = |-0.5|
    ("topk", 1, None, 2, 0.02),       # 1st - 2nd largest: 3 - 2.98 = 0.02 and 2.5 - 2 = 0.5
    ("topk", 2, None, 2, 0.5),        # 2nd - 3rd: 2.98 + 0.5 and 2 + 1 = 3; |pre| binds
    ("batchtopk", 1, None, 2, 0.48),  # k m = 2 of [3, 2.98, 2.5, 2, -0.5, -1]: 2.98 - 2.5
    ("topk", 2, [True, True, False], 1, 0.02),  # aux: top 1 of the dead [3, 2.98] and [2, 2.5]
    ("topk", 2, [True, True, False], 2, 0.5),   # aux_k covers every dead latent: no aux kink
])
def test_kink_margin_by_hand(arch, k, dead, aux_k, want):
    from saejax.architectures import Options

    hyper = saejax.Hyper(0.01, 3.0, 0.0, k=k)
    dead = None if dead is None else jnp.array(dead)
    got = gradcheck.kink_margin(KINK_PARAMS, KINK_X, hyper, arch, Options(aux_k=aux_k), dead)
    assert got == pytest.approx(want, rel=1e-12)


def test_kink_margin_jumprelu_by_hand():
    from saejax.architectures import Options

    # theta = [2.9, 1, 1]: |pre - theta| is smallest at 3 - 2.9 = 0.1; less bandwidth / 2 = 0.01.
    params = {**KINK_PARAMS, "log_threshold": jnp.log(jnp.array([2.9, 1.0, 1.0]))}
    hyper, options = saejax.Hyper(0.01, 3.0, 0.0), Options(bandwidth=0.02)
    assert gradcheck.kink_margin(params, KINK_X, hyper, "jumprelu", options) == pytest.approx(
        0.09, rel=1e-12)
    assert gradcheck.kink_margin(params, KINK_X, hyper, "jumprelu", options,
                                 kernel=False) == pytest.approx(0.1, rel=1e-12)


def test_family_problem_redraws_until_the_margin_holds():
    hyper = saejax.Hyper(0.01, 3.0, 0.0, k=2)
    first, x0, m0 = gradcheck.family_problem("topk", 6, 5, 7, hyper, margin=0.0)
    # Asking for more than the first draw's margin forces a redraw, seeded: the same point twice.
    params, x, margin = gradcheck.family_problem("topk", 6, 5, 7, hyper, margin=m0)
    again, _, _ = gradcheck.family_problem("topk", 6, 5, 7, hyper, margin=m0)
    assert margin > m0 and not np.array_equal(x, x0)
    assert gradcheck.kink_margin(params, x, hyper, "topk") == margin
    np.testing.assert_array_equal(params["W1"], again["W1"])
    with pytest.raises(ValueError, match="kink margin"):
        gradcheck.family_problem("topk", 6, 5, 7, hyper, margin=10.0)
