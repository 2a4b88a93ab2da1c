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
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
from minfunc import C1, C2, minfunc_wolfe, polyinterp2

from saejax.optim import linesearch

_step = jax.jit(linesearch.step)
_vstep = jax.jit(jax.vmap(linesearch.step))


# ----------------------------------------------------------------------------------------------
# Drivers and problems
# ----------------------------------------------------------------------------------------------


def run_ours(phi, f0, g0, t0, scale):
    """saejax.linesearch, one jitted step per evaluation; returns (trials, final state)."""
    state = linesearch.init(np.float64(f0), np.float64(g0), np.float64(t0), np.float64(scale))
    trials = []
    while not bool(state.ended):
        t = float(state.t)
        trials.append(t)
        f, g = phi(t)
        state = _step(state, np.float64(f), np.float64(g))
        assert len(trials) <= 30, "the search did not end"
    return trials, state


def along(fun, grad, x0, d):
    """phi(t) = (f(x0 + t d), <grad f(x0 + t d), d>)."""
    x0, d = np.asarray(x0, float), np.asarray(d, float)

    def phi(t):
        x = x0 + t * d
        return float(fun(x)), float(grad(x) @ d)

    return phi


def quadratic(A, b):
    return (lambda x: 0.5 * x @ A @ x - b @ x), (lambda x: A @ x - b)


def rosenbrock(x):
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


def rosenbrock_grad(x):
    g = np.zeros_like(x)
    g[:-1] = -400.0 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2.0 * (1.0 - x[:-1])
    g[1:] += 200.0 * (x[1:] - x[:-1] ** 2)
    return g


def _spd(n, cond, seed):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    return (q * np.geomspace(1.0, cond, n)) @ q.T, rng.normal(size=n), rng.normal(size=n)


def _quadratic_problems():
    """(name, fun, grad, x0, d): 1-D and n-D quadratics, well and badly conditioned."""
    out = [("1d", *quadratic(np.array([[2.0]]), np.array([6.0])), np.zeros(1), np.ones(1)),
           ("1d-flat", *quadratic(np.array([[1e-4]]), np.array([1.0])), np.zeros(1), np.ones(1))]
    for n, cond, seed in ((5, 10.0, 0), (20, 1e4, 1), (50, 1e8, 2)):
        A, b, x0 = _spd(n, cond, seed)
        fun, grad = quadratic(A, b)
        out.append((f"{n}d-cond{cond:g}-sd", fun, grad, x0, -grad(x0)))
        rng = np.random.default_rng(seed + 10)  # a poor direction: barely downhill
        g = grad(x0)
        d = rng.normal(size=n)
        d = d - (d @ g) / (g @ g) * g - 0.05 * np.linalg.norm(d) * g / np.linalg.norm(g)
        out.append((f"{n}d-cond{cond:g}-poor", fun, grad, x0, d))
    return out


def _rosenbrock_problems():
    """(name, fun, grad, x0, d): Rosenbrock from several points, steepest descent and poor d."""
    out = []
    starts = {"classic": [-1.2, 1.0], "origin": [0.0, 0.0], "far": [2.0, 2.0],
              "valley": [-1.5, 2.0], "near": [0.9, 0.8], "5d": [-1.0, 1.2, 0.5, -0.3, 1.1]}
    for name, x0 in starts.items():
        x0 = np.array(x0)
        g = rosenbrock_grad(x0)
        out.append((f"{name}-sd", rosenbrock, rosenbrock_grad, x0, -g))
        perp = np.roll(g, 1) * np.where(np.arange(len(g)) % 2, 1.0, -1.0)  # not along g
        perp = perp - (perp @ g) / (g @ g) * g
        d = perp / np.linalg.norm(perp) - 0.02 * g / np.linalg.norm(g)
        out.append((f"{name}-poor", rosenbrock, rosenbrock_grad, x0, d))
    return out


QUADRATICS = _quadratic_problems()
ROSENBROCKS = _rosenbrock_problems()
T0S = (1e-3, 1.0, 10.0, 1e3)

CASES = ([pytest.param(p, t0, id=f"quad-{p[0]}-t0={t0:g}") for p in QUADRATICS for t0 in T0S]
         + [pytest.param(p, 1.0, id=f"rosen-{p[0]}") for p in ROSENBROCKS]
         + [pytest.param(p, t0, id=f"rosen-{p[0]}-t0={t0:g}") for p in ROSENBROCKS[:2]
            for t0 in (1e-3, 1e-2)])


def _start(problem):
    name, fun, grad, x0, d = problem
    phi = along(fun, grad, x0, d)
    f0, g0 = phi(0.0)
    assert g0 < 0, f"{name}: d is not a descent direction"
    return phi, f0, g0, float(np.max(np.abs(d)))


def assert_strong_wolfe(phi, t, f0, g0):
    f, g = phi(t)
    assert f <= f0 + C1 * t * g0, f"sufficient decrease fails at t={t}"
    assert abs(g) <= C2 * abs(g0), f"curvature fails at t={t}"


def assert_matches_reference(phi, f0, g0, t0, scale, events=None):
    """Our trials are minFunc's; our step is its step, and the lowest phi we saw."""
    ref_trials, ref_t, ref_f, ref_done = minfunc_wolfe(phi, t0, f0, g0, scale, events=events)
    trials, state = run_ours(phi, f0, g0, t0, scale)
    assert_same_trials(trials, ref_trials)
    assert int(state.evals) == len(ref_trials)
    assert bool(state.wolfe) == ref_done
    best_t, best_f = float(state.best_t), float(state.best_f)
    assert_same_trials([best_t], [ref_t], np.max(np.abs(ref_trials)))
    # independently: the Wolfe point it ended on, else the first trial of lowest phi (or 0)
    fs = [phi(t)[0] for t in trials]
    i = len(trials) - 1 if ref_done else int(np.argmin(fs))
    want_t, want_f = (trials[i], fs[i]) if ref_done or fs[i] < f0 else (0.0, f0)
    assert (best_t, best_f) == (want_t, want_f)
    if ref_done:
        assert_strong_wolfe(phi, best_t, f0, g0)
    return state


def assert_same_trials(got, want, scale=0.0):
    """Equal to rtol 1e-10, relative also to the largest trial so far (and ``scale``).

    Jitted XLA rounds the cubic's minimizer a little differently from NumPy, and that minimizer,
    t_b - (t_b - t_a) r, loses digits to cancellation when it lies far below the bracket's ends.
    """
    assert len(got) == len(want), (got, want)
    reach = np.maximum.accumulate(np.abs(want)) if len(want) else []
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        tol = 1e-10 * (abs(w) + max(reach[i], scale))
        assert abs(g - w) <= tol, f"trial {i}: got {g!r}, minFunc {w!r}\n{got}\n{want}"


# ----------------------------------------------------------------------------------------------
# Trajectories against the reference, Wolfe conditions, SciPy
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("problem", "t0"), CASES)
def test_trials_and_step_match_minfunc(problem, t0):
    phi, f0, g0, scale = _start(problem)
    state = assert_matches_reference(phi, f0, g0, t0, scale)
    assert bool(state.ended)
    assert float(state.best_f) < f0
    if bool(state.wolfe):
        assert_strong_wolfe(phi, float(state.best_t), f0, g0)
    assert float(state.t) == float(state.best_t)  # an ended search points at its step


def _bumps_phi(seed):
    """A smooth phi with several dips: a quadratic plus Gaussian bumps, and a t0."""
    rng = np.random.default_rng(seed)
    m, s = rng.uniform(0.5, 20.0), rng.uniform(0.01, 3.0)
    amp, cen, wid = rng.normal(size=4), rng.uniform(0.0, 2.0 * m, 4), rng.uniform(0.05, 2.0, 4)

    def phi(t):
        e = amp * np.exp(-0.5 * ((t - cen) / wid) ** 2)
        f = s * (t - m) ** 2 + e.sum()
        g = 2 * s * (t - m) - (e * (t - cen) / wid**2).sum()
        return float(f), float(g)

    return phi, 10.0 ** rng.uniform(-3, 3)


def _wiggly_phi(seed):
    """phi(t) = A (1 - cos w t) - eps t + s t^2: a gentle slope at 0, steep ones beyond."""
    rng = np.random.default_rng(seed)
    eps, amp, w, s = 10.0 ** rng.uniform([-3, -2, -1, -4], [0, 1, 1.5, 0])

    def phi(t):
        return (float(amp * (1 - np.cos(w * t)) - eps * t + s * t * t),
                float(amp * w * np.sin(w * t) - eps + 2 * s * t))

    return phi, 10.0 ** rng.uniform(-3, 3)


def _bump_in_the_way(t):
    """-t - t^3/100 with a bump at minFunc's third trial from t0 = 1, where phi rises."""
    c = 30.300025  # the trials are 1, 5.505 (the cubic has no minimizer: the midpoint), 30.3
    b = 305.0 * math.exp(-(((t - c) / 3.0) ** 2))
    return -t - 0.01 * t**3 + b, -1.0 - 0.03 * t * t - 2.0 * (t - c) / 9.0 * b


RANDOM_PHIS = [_bumps_phi(seed) for seed in range(40)] + [_wiggly_phi(seed) for seed in range(80)]


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
    state = assert_matches_reference(_bump_in_the_way, 0.0, -1.0, 1.0, 1.0, events=events)
    assert "bracket: f rose" in events and bool(state.wolfe)


@pytest.mark.filterwarnings("ignore:The line search algorithm did not converge")
@pytest.mark.parametrize("problem", [pytest.param(p, id=p[0]) for p in QUADRATICS + ROSENBROCKS])
def test_strong_wolfe_where_scipy_finds_one(problem):
    """Where SciPy's strong-Wolfe search (c1 = 1e-4, c2 = 0.9) finds a step, so do we."""
    name, fun, grad, x0, d = problem
    phi, f0, g0, scale = _start(problem)
    alpha = scipy.optimize.line_search(fun, grad, x0, d, c1=C1, c2=C2)[0]
    _, state = run_ours(phi, f0, g0, 1.0, scale)
    if alpha is not None:
        assert_strong_wolfe(phi, alpha, f0, g0)
        assert bool(state.wolfe), f"{name}: SciPy found a strong-Wolfe step ({alpha}), we did not"
    if bool(state.wolfe):
        assert_strong_wolfe(phi, float(state.best_t), f0, g0)
    assert float(state.best_f) < f0


# ----------------------------------------------------------------------------------------------
# Edge cases
# ----------------------------------------------------------------------------------------------


def _walled(bad):
    """A quadratic with its minimum at t = 3, and phi = phi' = bad beyond t = 2."""

    def phi(t):
        if t > 2.0:
            return bad, bad
        return (t - 3.0) ** 2, 2.0 * (t - 3.0)

    return phi


@pytest.mark.parametrize(("bad", "t0"), [(math.inf, t0) for t0 in (1.0, 2.5, 10.0, 1e3)] + [
    (math.nan, 1.0), (math.nan, 2.5), (math.nan, 10.0), (math.nan, 1e3)])
def test_non_finite_beyond_two_ends_below_it(bad, t0):
    phi = _walled(bad)
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
    phi = _walled(math.inf)
    f0, g0 = phi(0.0)
    assert_matches_reference(phi, f0, g0, t0, 1.0)


@pytest.mark.parametrize("t0", [1.0, 2.5, 10.0])
def test_nan_phi_follows_minfunc_with_the_bisecting_deviation(t0):
    """A NaN phi ends the bracketing like +inf; the zoom's LO end is then the finite one
    (MATLAB's ``min`` skips NaN). From t0 = 10: 10 (NaN), 5 (NaN), 2.5 (NaN), 1.25 (Wolfe)."""
    phi = _walled(math.nan)
    assert_matches_reference(phi, 9.0, -6.0, t0, 1.0)


def _no_decrease_phis():
    noise = lambda t: 0.0 if t == 0 else 1e-13 * (1.5 + math.sin(1e3 * t))  # noqa: E731

    return {
        # the slope claims descent; phi only rises (a wrong gradient, or rounding)
        "rising": lambda t: (1.0 + 1e-3 * t, -1.0),
        "noise": lambda t: (1.0 + noise(t), -1e-6),
        # the true minimum, 2.5e-25 below f0 at t = 5e-13, is below rounding at f0 = 1
        "tiny-dip": lambda t: (1.0 + (t * t - 1e-12 * t), 2.0 * t - 1e-12),
    }


@pytest.mark.parametrize("name", list(_no_decrease_phis()))
@pytest.mark.parametrize("t0", [1e-3, 1.0, 1e3])
def test_no_decrease_ends_at_zero(name, t0):
    phi = _no_decrease_phis()[name]
    f0, g0 = phi(0.0)
    trials, state = run_ours(phi, f0, g0, t0, 1.0)
    assert bool(state.ended) and not bool(state.wolfe)
    assert float(state.best_t) == 0.0 and float(state.best_f) == f0
    assert int(state.evals) <= linesearch.MAX_EVALS and len(trials) == int(state.evals)
    assert not bool(state.improved)


@pytest.mark.parametrize("name", list(_no_decrease_phis()))
@pytest.mark.parametrize("t0", [1e-3, 1.0, 1e3])
def test_no_decrease_follows_minfunc(name, t0):
    phi = _no_decrease_phis()[name]
    f0, g0 = phi(0.0)
    events = set()
    assert_matches_reference(phi, f0, g0, t0, 1.0, events=events)
    assert events & {"zoom: progTol", "maxLS"}


def _endless_descent(t):
    """phi(t) = -t log(e + t): its slope only steepens, so the bracketing never ends."""
    return -t * math.log(math.e + t), -math.log(math.e + t) - t / (math.e + t)


def test_endless_descent_stops_after_max_evals():
    f0, g0 = _endless_descent(0.0)
    trials, state = run_ours(_endless_descent, f0, g0, 1.0, 1.0)
    assert int(state.evals) == linesearch.MAX_EVALS and not bool(state.wolfe)
    assert float(state.best_f) < f0 and float(state.best_t) == max(trials)


def test_endless_descent_evaluates_as_often_as_minfunc():
    f0, g0 = _endless_descent(0.0)
    events = set()
    ref_trials, *_ = minfunc_wolfe(_endless_descent, 1.0, f0, g0, 1.0, events=events)
    assert "maxLS in bracketing" in events
    trials, _ = run_ours(_endless_descent, f0, g0, 1.0, 1.0)
    assert_same_trials(trials, ref_trials)


def test_linear_phi_extrapolates_like_minfunc():
    """On phi(t) = -t the cubic has its minimizer at +inf: minFunc clips it to maxStep = 10 t."""
    phi = lambda t: (-t, -1.0)  # noqa: E731
    ref_trials, *_ = minfunc_wolfe(phi, 1.0, 0.0, -1.0, 1.0, max_ls=3)
    assert ref_trials[:3] == [1.0, 10.0, 100.0]
    trials, _ = run_ours(phi, 0.0, -1.0, 1.0, 1.0)
    assert_same_trials(trials[:3], ref_trials[:3])


def test_step_after_the_end_changes_nothing():
    phi, f0, g0, scale = _start(ROSENBROCKS[0])
    _, state = run_ours(phi, f0, g0, 1.0, scale)
    assert bool(state.ended)
    for f, g in ((f0 - 100.0, 0.0), (math.nan, math.nan), (-math.inf, 1.0), (f0, g0)):
        after = _step(state, np.float64(f), np.float64(g))
        assert not bool(after.improved)
        for name in state.__dataclass_fields__:
            if name != "improved":
                np.testing.assert_array_equal(getattr(after, name), getattr(state, name),
                                              err_msg=name)


def test_vmap_members_run_at_their_own_pace():
    """A batch of searches under vmap: each member's trials are those it has alone."""
    members = [(_start(p), t0) for p, t0 in ((QUADRATICS[0], 1e3), (QUADRATICS[3], 1e-3),
                                              (ROSENBROCKS[0], 1.0), (ROSENBROCKS[3], 1.0),
                                              (QUADRATICS[5], 10.0))]
    members.append(((_walled(math.inf), 9.0, -6.0, 1.0), 10.0))
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
        batch = _vstep(batch, f, g)
    assert np.asarray(batch.ended).all()
    for i, (alone_trials, alone_state) in enumerate(alone):
        np.testing.assert_array_equal(trials[i], alone_trials)
        member = jax.tree.map(lambda v, i=i: v[i], batch)
        for name in alone_state.__dataclass_fields__:
            if name != "improved":
                np.testing.assert_array_equal(getattr(member, name), getattr(alone_state, name),
                                              err_msg=name)


# ----------------------------------------------------------------------------------------------
# cubic_minimizer
# ----------------------------------------------------------------------------------------------


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
        phi, f0, g0, scale = _start(problem)
        minfunc_wolfe(phi, t0, f0, g0, scale, events=events)
    for phi, t0 in [*RANDOM_PHIS, (_bump_in_the_way, 1.0), (_endless_descent, 1.0),
                    (_walled(math.inf), 10.0), *((phi, 1.0) for phi in _no_decrease_phis().values())]:
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
    state = _step(state, *map(np.float64, phi(1.0)))
    assert bool(state.ended) and bool(state.wolfe) and bool(state.improved)
    assert float(state.best_t) == 1.0 and float(state.best_f) == 1.0 + 2e-12
    # beyond the tolerance it is refused: 2e-12 > 1e-12 |phi(0)|
    state = linesearch.init(np.float64(1.0), np.float64(-1.0), np.float64(1.0), np.float64(1.0),
                            approx_tol=1e-12)
    state = _step(state, *map(np.float64, phi(1.0)))
    assert not bool(state.ended)


def test_the_constants_are_minfuncs_as_ufldl_sets_them():
    # written in tests/minfunc.py, not read from saejax: c1, c2, maxLS and progTol of the
    # exercise's minFunc call; a search evaluates phi at most maxLS + 1 times
    from minfunc import MAX_LS, PROG_TOL

    assert (linesearch.C1, linesearch.C2) == (C1, C2) == (1e-4, 0.9)
    assert (linesearch.MAX_LS, linesearch.PROG_TOL) == (MAX_LS, PROG_TOL) == (25, 1e-9)
    assert linesearch.MAX_EVALS == 26


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


def _half_walled(f_bad, g_bad):
    """_walled, but beyond t = 2 only phi (f_bad) or only phi' (g_bad) is non-finite."""
    def phi(t):
        if t > 2.0:
            return (f_bad if f_bad is not None else (t - 3.0) ** 2,
                    g_bad if g_bad is not None else 2.0 * (t - 3.0))
        return (t - 3.0) ** 2, 2.0 * (t - 3.0)

    return phi


@pytest.mark.parametrize("f_bad", [math.inf, math.nan])
@pytest.mark.parametrize("t0", [2.5, 10.0])
def test_a_non_finite_phi_with_a_finite_slope_follows_minfunc(f_bad, t0):
    # (inf, finite), (NaN, finite): the trial is illegal, in the bracketing and in the zoom
    # (which bisects), and the trials are minFunc's; the step is the lowest legal phi.
    phi = _half_walled(f_bad, None)
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
    phi = _half_walled(f_bad, g_bad)
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
        state = _step(state, np.float64((t - 2.0) ** 2), np.float64(2.0 * (t - 2.0)))
    for name, value in vars(state).items():
        want = {"evals": jnp.int32, "zoom": jnp.bool_, "insuf": jnp.bool_, "ended": jnp.bool_,
                "wolfe": jnp.bool_, "improved": jnp.bool_}.get(name, jnp.float32)
        assert value.dtype == want, name
