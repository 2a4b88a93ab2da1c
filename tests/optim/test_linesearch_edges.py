"""saejax.optim.linesearch at its edges, against tests/minfunc.py's minFunc where it is defined:
walls of infinite or NaN phi, phis that never decrease or never stop descending, a linear and a
flat phi, steps after the end, a batch of searches under vmap, and float32 kept float32."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from linesearch_problems import (
    QUADRATICS,
    ROSENBROCKS,
    assert_matches_reference,
    assert_same_trials,
    assert_strong_wolfe,
    endless_descent,
    half_walled,
    jit_step,
    jit_vstep,
    no_decrease_phis,
    run_ours,
    start,
    walled,
)
from minfunc import minfunc_wolfe

from saejax.optim import linesearch


@pytest.mark.parametrize(("bad", "t0"), [(math.inf, t0) for t0 in (1.0, 2.5, 10.0, 1e3)] + [
    (math.nan, 1.0), (math.nan, 2.5), (math.nan, 10.0), (math.nan, 1e3)])
def test_non_finite_beyond_two_ends_below_it(bad, t0):
    phi = walled(bad)
    f0, g0 = phi(0.0)
    trials, state = run_ours(phi, f0, g0, t0, 1.0)
    assert bool(state.ended)
    assert math.isfinite(float(state.best_f)) and float(state.best_f) < f0
    assert 0.0 < float(state.best_t) < 2.0
    assert phi(float(state.best_t))[0] == float(state.best_f)
    if bool(state.wolfe):
        assert_strong_wolfe(phi, float(state.best_t), f0, g0)


@pytest.mark.parametrize("t0", [1.0, 2.5, 10.0, 1e3])
def test_infinite_phi_follows_minfunc_with_the_bisecting_deviation(t0):
    phi = walled(math.inf)
    f0, g0 = phi(0.0)
    assert_matches_reference(phi, f0, g0, t0, 1.0)


@pytest.mark.parametrize("t0", [1.0, 2.5, 10.0])
def test_nan_phi_follows_minfunc_with_the_bisecting_deviation(t0):
    """A NaN phi ends the bracketing like +inf; the zoom's LO end is then the finite one
    (MATLAB's ``min`` skips NaN). From t0 = 10: 10 (NaN), 5 (NaN), 2.5 (NaN), 1.25 (Wolfe)."""
    phi = walled(math.nan)
    assert_matches_reference(phi, 9.0, -6.0, t0, 1.0)


@pytest.mark.parametrize("name", list(no_decrease_phis()))
@pytest.mark.parametrize("t0", [1e-3, 1.0, 1e3])
def test_no_decrease_ends_at_zero(name, t0):
    phi = no_decrease_phis()[name]
    f0, g0 = phi(0.0)
    trials, state = run_ours(phi, f0, g0, t0, 1.0)
    assert bool(state.ended) and not bool(state.wolfe)
    assert float(state.best_t) == 0.0 and float(state.best_f) == f0
    assert int(state.evals) <= linesearch.MAX_EVALS and len(trials) == int(state.evals)
    assert not bool(state.improved)


@pytest.mark.parametrize("name", list(no_decrease_phis()))
@pytest.mark.parametrize("t0", [1e-3, 1.0, 1e3])
def test_no_decrease_follows_minfunc(name, t0):
    phi = no_decrease_phis()[name]
    f0, g0 = phi(0.0)
    events = set()
    assert_matches_reference(phi, f0, g0, t0, 1.0, events=events)
    assert events & {"zoom: progTol", "maxLS"}


def test_endless_descent_stops_after_max_evals():
    f0, g0 = endless_descent(0.0)
    trials, state = run_ours(endless_descent, f0, g0, 1.0, 1.0)
    assert int(state.evals) == linesearch.MAX_EVALS and not bool(state.wolfe)
    assert float(state.best_f) < f0 and float(state.best_t) == max(trials)


def test_endless_descent_evaluates_as_often_as_minfunc():
    f0, g0 = endless_descent(0.0)
    events = set()
    ref_trials, *_ = minfunc_wolfe(endless_descent, 1.0, f0, g0, 1.0, events=events)
    assert "maxLS in bracketing" in events
    trials, _ = run_ours(endless_descent, f0, g0, 1.0, 1.0)
    assert_same_trials(trials, ref_trials)


def test_linear_phi_extrapolates_like_minfunc():
    """On phi(t) = -t the cubic has its minimizer at +inf: minFunc clips it to maxStep = 10 t."""
    phi = lambda t: (-t, -1.0)  # noqa: E731
    ref_trials, *_ = minfunc_wolfe(phi, 1.0, 0.0, -1.0, 1.0, max_ls=3)
    assert ref_trials[:3] == [1.0, 10.0, 100.0]
    trials, _ = run_ours(phi, 0.0, -1.0, 1.0, 1.0)
    assert_same_trials(trials[:3], ref_trials[:3])


def test_step_after_the_end_changes_nothing():
    phi, f0, g0, scale = start(ROSENBROCKS[0])
    _, state = run_ours(phi, f0, g0, 1.0, scale)
    assert bool(state.ended)
    for f, g in ((f0 - 100.0, 0.0), (math.nan, math.nan), (-math.inf, 1.0), (f0, g0)):
        after = jit_step(state, np.float64(f), np.float64(g))
        assert not bool(after.improved)
        for name in state.__dataclass_fields__:
            if name != "improved":
                np.testing.assert_array_equal(getattr(after, name), getattr(state, name),
                                              err_msg=name)


def test_vmap_members_run_at_their_own_pace():
    """A batch of searches under vmap: each member's trials are those it has alone."""
    members = [(start(p), t0) for p, t0 in ((QUADRATICS[0], 1e3), (QUADRATICS[3], 1e-3),
                                              (ROSENBROCKS[0], 1.0), (ROSENBROCKS[3], 1.0),
                                              (QUADRATICS[5], 10.0))]
    members.append(((walled(math.inf), 9.0, -6.0, 1.0), 10.0))
    alone = [run_ours(phi, f0, g0, t0, scale) for (phi, f0, g0, scale), t0 in members]
    assert len({len(trials) for trials, _ in alone}) > 2  # they do need different paces

    states = [linesearch.init(np.float64(f0), np.float64(g0), np.float64(t0), np.float64(scale))
              for (phi, f0, g0, scale), t0 in members]
    batch = jax.tree.map(lambda *v: jnp.stack(v), *states)
    trials = [[] for _ in members]
    for _ in range(30):
        ended = np.asarray(batch.ended)
        if ended.all():
            break
        ts = np.asarray(batch.t)
        fg = []
        for i, ((phi, *_), _) in enumerate(members):
            if not ended[i]:
                trials[i].append(float(ts[i]))
            fg.append(phi(float(ts[i])))  # an ended member is fed anyway, and ignores it
        f, g = (jnp.asarray(np.array(v, dtype=np.float64)) for v in zip(*fg))
        batch = jit_vstep(batch, f, g)
    assert np.asarray(batch.ended).all()
    for i, (alone_trials, alone_state) in enumerate(alone):
        np.testing.assert_array_equal(trials[i], alone_trials)
        member = jax.tree.map(lambda v, i=i: v[i], batch)
        for name in alone_state.__dataclass_fields__:
            if name != "improved":
                np.testing.assert_array_equal(getattr(member, name), getattr(alone_state, name),
                                              err_msg=name)


def test_a_flat_phi_ends_when_its_bracket_narrows_below_prog_tol():
    # phi = 1 everywhere with a slope of -1: no trial satisfies Armijo, and the zoom cuts the
    # bracket [0, t] to r t each trial, r = (3 - sqrt 3)/6 = 0.2113 (the minimizer of the cubic
    # through two points of equal phi and slope -1). Trial n leaves the width r^(n-1); the
    # search ends at the first with r^(n-1) max|d| < 1e-9 (minFunc's progTol): n = 15 for
    # max|d| = 1 and 19 for 1e3, before the 26 evaluations it may use.
    def phi(t):
        return 1.0, -1.0

    r = (3 - math.sqrt(3)) / 6
    for scale, n in ((1.0, 15), (1e3, 19)):
        events = set()
        state = assert_matches_reference(phi, 1.0, -1.0, 1.0, scale, events=events)
        assert "zoom: progTol" in events and int(state.evals) == n
        assert float(state.best_t) == 0.0 and not bool(state.wolfe)
        assert r ** (n - 1) * scale < 1e-9 <= r ** (n - 2) * scale


@pytest.mark.parametrize(("q", "a", "b", "c", "t0"), [
    (0.25, -0.9403747811199694, -0.7855965612277305, -0.7530194064727058, 2.0),
    (0.25, -2.998127788973978, -1.7004092132230983, -0.7918242180590083, 1.0),
    (1.0, 0.4333769728325034, -0.7371866762311798, -1.0623889207611459, 1.0),
    (1.0, 0.2360124372389314, -2.184754788268269, -1.161680589470046, 2.0)])
def test_a_staircase_phi_whose_trials_tie_the_low_end_follows_minfunc(q, a, b, c, t0):
    # phi = a cubic rounded down to steps of q (its slope the cubic's): zoom trials land on the
    # low end's step, phi equal to it, and minFunc then replaces the high end (f_new >= f_lo)
    def phi(t):
        return math.floor((a * t**3 / 3 + b * t**2 + c * t) / q) * q, a * t * t + 2 * b * t + c

    f0, g0 = phi(0.0)
    state = assert_matches_reference(phi, f0, g0, t0, 1.0)
    fs = [phi(t)[0] for t in run_ours(phi, f0, g0, t0, 1.0)[0]]
    assert len(set(fs)) < len(fs) and int(state.evals) >= 10  # ties, and a long zoom


@pytest.mark.parametrize("f_bad", [math.inf, math.nan])
@pytest.mark.parametrize("t0", [2.5, 10.0])
def test_a_non_finite_phi_with_a_finite_slope_follows_minfunc(f_bad, t0):
    # (inf, finite), (NaN, finite): the trial is illegal, in the bracketing and in the zoom
    # (which bisects), and the trials are minFunc's; the step is the lowest legal phi.
    phi = half_walled(f_bad, None)
    events = set()
    ref_trials, *_ = minfunc_wolfe(phi, t0, 9.0, -6.0, 1.0, events=events)
    trials, state = run_ours(phi, 9.0, -6.0, t0, 1.0)
    assert_same_trials(trials, ref_trials)
    assert "bracket: not finite" in events and int(state.evals) == len(ref_trials)
    legal = [(phi(t)[0], t) for t in trials if all(map(math.isfinite, phi(t)))]
    assert (float(state.best_f), float(state.best_t)) == min(legal)
    assert 0.0 < min(legal)[1] <= 2.0


@pytest.mark.parametrize("f_bad, g_bad", [(None, math.inf), (None, -math.inf),
                                          (None, math.nan), (-math.inf, None)])
@pytest.mark.parametrize("t0", [2.5, 10.0])
def test_an_illegal_low_point_is_never_taken_nor_zoomed_to(f_bad, g_bad, t0):
    # (finite, inf), (finite, NaN), (-inf, finite): phi beyond t = 2 is low, but its slope or
    # phi itself is not finite. saejax's step is the lowest phi among the trials with both
    # finite, and its zoom stays on the legal side (such a point is never the bracket's low
    # end), where minFunc would pick the low illegal end as LO, zoom toward it and return it
    # (an L-BFGS step with an infinite gradient).
    phi = half_walled(f_bad, g_bad)
    trials, state = run_ours(phi, 9.0, -6.0, t0, 1.0)
    legal = [(phi(t)[0], t) for t in trials if all(map(math.isfinite, phi(t)))]
    assert legal and (float(state.best_f), float(state.best_t)) == min(legal)
    assert 0.0 < float(state.best_t) <= 2.0 and bool(state.ended)
    assert any(t > 2.0 for t in trials)  # it did meet the illegal region


def test_a_float32_search_stays_float32():
    # phi(0) in float32: every float of the state stays float32 through the steps (a float64
    # phi fed in is cast), evals is an int32, and the flags are booleans
    state = linesearch.init(np.float32(1.0), np.float32(-1.0), np.float32(1.0), np.float32(1.0))
    for t in (1.0, 2.0, 3.0):
        state = jit_step(state, np.float64((t - 2.0) ** 2), np.float64(2.0 * (t - 2.0)))
    for name, value in vars(state).items():
        want = {"evals": jnp.int32, "zoom": jnp.bool_, "insuf": jnp.bool_, "ended": jnp.bool_,
                "wolfe": jnp.bool_, "improved": jnp.bool_}.get(name, jnp.float32)
        assert value.dtype == want, name
