"""saejax.linesearch against a NumPy transcription of minFunc's WolfeLineSearch.

The reference (tests/minfunc.py) is written from minFunc's ``WolfeLineSearch.m`` and ``polyinterp.m``
(Mark Schmidt, minFunc 2012, https://www.cs.ubc.ca/~schmidtm/Software/minFunc.html) for
``LS_interp = 2``, with the UFLDL settings c1 = 1e-4, c2 = 0.9, maxLS = 25, progTol = 1e-9.
The state machine must evaluate the same trials, in the same order, and end on the same step
(up to its two documented deviations, which the tests name where they apply). Its steps are
also checked to satisfy the strong Wolfe conditions independently, and beside SciPy's.
"""

import math

import jax
import numpy as np
import pytest
import scipy.optimize
from linesearch_problems import (
    CASES,
    QUADRATICS,
    RANDOM_PHIS,
    ROSENBROCKS,
    assert_matches_reference,
    assert_strong_wolfe,
    bump_in_the_way,
    endless_descent,
    jit_step,
    no_decrease_phis,
    run_ours,
    start,
    walled,
)
from minfunc import C1, C2, minfunc_wolfe, polyinterp2

from saejax.optim import linesearch


@pytest.mark.parametrize(("problem", "t0"), CASES)
def test_trials_and_step_match_minfunc(problem, t0):
    phi, f0, g0, scale = start(problem)
    state = assert_matches_reference(phi, f0, g0, t0, scale)
    assert bool(state.ended)
    assert float(state.best_f) < f0
    if bool(state.wolfe):
        assert_strong_wolfe(phi, float(state.best_t), f0, g0)
    assert float(state.t) == float(state.best_t)  # an ended search points at its step


def test_random_smooth_phis_match_minfunc():
    """Seeded random phis with several local minima, from t0 in [1e-3, 1e3]."""
    compared = 0
    for phi, t0 in RANDOM_PHIS:
        f0, g0 = phi(0.0)
        if g0 < 0:
            assert_matches_reference(phi, f0, g0, t0, 1.0)
            compared += 1
    assert compared >= 80


def test_phi_rising_during_extrapolation_matches_minfunc():
    events = set()
    state = assert_matches_reference(bump_in_the_way, 0.0, -1.0, 1.0, 1.0, events=events)
    assert "bracket: f rose" in events and bool(state.wolfe)


@pytest.mark.filterwarnings("ignore:The line search algorithm did not converge")
@pytest.mark.parametrize("problem", [pytest.param(p, id=p[0]) for p in QUADRATICS + ROSENBROCKS])
def test_strong_wolfe_where_scipy_finds_one(problem):
    """Where SciPy's strong-Wolfe search (c1 = 1e-4, c2 = 0.9) finds a step, so do we."""
    name, fun, grad, x0, d = problem
    phi, f0, g0, scale = start(problem)
    alpha = scipy.optimize.line_search(fun, grad, x0, d, c1=C1, c2=C2)[0]
    _, state = run_ours(phi, f0, g0, 1.0, scale)
    if alpha is not None:
        assert_strong_wolfe(phi, alpha, f0, g0)
        assert bool(state.wolfe), f"{name}: SciPy found a strong-Wolfe step ({alpha}), we did not"
    if bool(state.wolfe):
        assert_strong_wolfe(phi, float(state.best_t), f0, g0)
    assert float(state.best_f) < f0


def _cubic(a, p, q, c):
    """phi(t) = a (t^3/3 - (p+q) t^2/2 + p q t) + c: phi' = a (t-p)(t-q); for a > 0, p < q,
    the local minimum is at q."""
    return (lambda t: a * (t**3 / 3 - (p + q) * t**2 / 2 + p * q * t) + c,
            lambda t: a * (t - p) * (t - q))


def _cm(t1, f1, g1, t2, f2, g2, lo, hi):
    return float(linesearch.cubic_minimizer(*map(np.float64, (t1, f1, g1, t2, f2, g2, lo, hi))))


@pytest.mark.parametrize(("a", "p", "q", "t1", "t2"), [
    (1.0, -1.0, 1.0, 0.0, 2.0),    # phi = t^3/3 - t, from 0 and 2
    (3.0, 0.5, 2.0, 1.0, 5.0),
    (0.1, -4.0, 7.5, 0.0, 8.0),
    (2.0, 1.0, 3.0, 2.9, 3.2),     # both points near the minimum
    (5.0, -2.0, 0.25, 1.0, -1.0),  # the points given in decreasing order
])
def test_cubic_minimizer_finds_the_local_minimum(a, p, q, t1, t2):
    f, g = _cubic(a, p, q, 0.7)
    args = (t1, f(t1), g(t1), t2, f(t2), g(t2))
    lo, hi = min(t1, t2), max(t1, t2)
    np.testing.assert_allclose(_cm(*args, lo, hi), q, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_cm(*args[3:], *args[:3], lo, hi), q, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_cm(*args, lo - 50.0, hi + 50.0), q, rtol=1e-12, atol=1e-12)
    # clipped to the bounds when they exclude it
    assert _cm(*args, q + 0.5, q + 3.0) == q + 0.5
    assert _cm(*args, q - 3.0, q - 0.25) == q - 0.25
    np.testing.assert_allclose(polyinterp2(*args), q, rtol=1e-12, atol=1e-12)


def test_cubic_minimizer_quadratic_and_no_minimum():
    # a quadratic (t - 1.5)^2: exact
    assert _cm(0.0, 2.25, -3.0, 4.0, 6.25, 5.0, 0.0, 4.0) == pytest.approx(1.5, rel=1e-14)
    # phi = t^3 + t rises everywhere: no real minimizer, the midpoint of the bounds
    f, g = (lambda t: t**3 + t), (lambda t: 3 * t**2 + 1)
    assert _cm(0.0, f(0.0), g(0.0), 1.0, f(1.0), g(1.0), 0.2, 3.0) == pytest.approx(1.6)
    assert polyinterp2(0.0, f(0.0), g(0.0), 1.0, f(1.0), g(1.0), 0.2, 3.0) == pytest.approx(1.6)


def test_cubic_minimizer_matches_polyinterp_on_random_input():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(500, 6)) * np.array([3.0, 10.0, 10.0, 3.0, 10.0, 10.0])
    lo = np.minimum(x[:, 0], x[:, 3]) - rng.uniform(0, 2, 500)
    hi = np.maximum(x[:, 0], x[:, 3]) + rng.uniform(0, 2, 500)
    got = jax.jit(jax.vmap(linesearch.cubic_minimizer))(*x.T, lo, hi)
    want = [polyinterp2(*row, lo[i], hi[i]) for i, row in enumerate(x)]
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-10, atol=1e-12)


def test_the_problems_exercise_every_branch():
    """Together the problems above drive minFunc's search through each of its branches."""
    events = set()
    for problem, t0 in (c.values for c in CASES):
        phi, f0, g0, scale = start(problem)
        minfunc_wolfe(phi, t0, f0, g0, scale, events=events)
    for phi, t0 in [*RANDOM_PHIS, (bump_in_the_way, 1.0), (endless_descent, 1.0),
                    (walled(math.inf), 10.0), *((phi, 1.0) for phi in no_decrease_phis().values())]:
        f0, g0 = phi(0.0)
        if g0 < 0:
            minfunc_wolfe(phi, t0, f0, g0, 1.0, events=events)
    wanted = {"extrapolate", "bracket: too long", "bracket: f rose", "bracket: wolfe",
              "bracket: upward slope", "bracket: not finite", "maxLS in bracketing",
              "zoom: bisect", "zoom: replace HI", "zoom: wolfe", "zoom: LO to HI", "zoom: new LO",
              "zoom: close to an end", "zoom: 0.1 from the end", "zoom: progTol", "maxLS"}
    assert wanted == events, wanted ^ events


def test_approximate_wolfe_point_accepted_only_when_asked():
    # phi rises by 2e-12 (relative 2e-12) at every trial: rounding hides the decrease its slope
    # promises. The slope at t = 1 meets the curvature condition (|-0.5| <= 0.9 |-1|).
    # minFunc's search (approx_tol = 0) finds no Wolfe point and ends at t = 0; with
    # approx_tol = 1e-11 (Hager-Zhang) the first trial is accepted on its slope.
    def phi(t):
        return (1.0 + 2e-12 * (t > 0), -1.0 + 0.5 * min(t, 1.0))

    trials, state = run_ours(phi, 1.0, -1.0, 1.0, 1.0)
    assert float(state.best_t) == 0.0 and not bool(state.wolfe)
    state = linesearch.init(np.float64(1.0), np.float64(-1.0), np.float64(1.0), np.float64(1.0),
                            approx_tol=1e-11)
    state = jit_step(state, *map(np.float64, phi(1.0)))
    assert bool(state.ended) and bool(state.wolfe) and bool(state.improved)
    assert float(state.best_t) == 1.0 and float(state.best_f) == 1.0 + 2e-12
    # beyond the tolerance it is refused: 2e-12 > 1e-12 |phi(0)|
    state = linesearch.init(np.float64(1.0), np.float64(-1.0), np.float64(1.0), np.float64(1.0),
                            approx_tol=1e-12)
    state = jit_step(state, *map(np.float64, phi(1.0)))
    assert not bool(state.ended)


def test_the_constants_are_minfuncs_as_ufldl_sets_them():
    # written in tests/minfunc.py, not read from saejax: c1, c2, maxLS and progTol of the
    # exercise's minFunc call; a search evaluates phi at most maxLS + 1 times
    from minfunc import MAX_LS, PROG_TOL

    assert (linesearch.C1, linesearch.C2) == (C1, C2) == (1e-4, 0.9)
    assert (linesearch.MAX_LS, linesearch.PROG_TOL) == (MAX_LS, PROG_TOL) == (25, 1e-9)
    assert linesearch.MAX_EVALS == 26
