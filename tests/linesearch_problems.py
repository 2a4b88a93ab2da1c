"""The line-search tests' drivers, problems and phis: saejax.optim.linesearch run one jitted step
per evaluation, its trials and step held against tests/minfunc.py's transcription of minFunc's
WolfeLineSearch, the quadratic and Rosenbrock problems along a direction, and the phis that
drive the search through each branch (random smooth ones, walls of non-finite values, phis
without decrease, endless descent)."""

import math

import jax
import numpy as np
import pytest
from minfunc import C1, C2, minfunc_wolfe

from saejax.optim import linesearch

jit_step = jax.jit(linesearch.step)


jit_vstep = jax.jit(jax.vmap(linesearch.step))


def run_ours(phi, f0, g0, t0, scale):
    """saejax.linesearch, one jitted step per evaluation; returns (trials, final state)."""
    state = linesearch.init(np.float64(f0), np.float64(g0), np.float64(t0), np.float64(scale))
    trials = []
    while not bool(state.ended):
        t = float(state.t)
        trials.append(t)
        f, g = phi(t)
        state = jit_step(state, np.float64(f), np.float64(g))
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


def start(problem):
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


def bump_in_the_way(t):
    """-t - t^3/100 with a bump at minFunc's third trial from t0 = 1, where phi rises."""
    c = 30.300025  # the trials are 1, 5.505 (the cubic has no minimizer: the midpoint), 30.3
    b = 305.0 * math.exp(-(((t - c) / 3.0) ** 2))
    return -t - 0.01 * t**3 + b, -1.0 - 0.03 * t * t - 2.0 * (t - c) / 9.0 * b


RANDOM_PHIS = [_bumps_phi(seed) for seed in range(40)] + [_wiggly_phi(seed) for seed in range(80)]


def walled(bad):
    """A quadratic with its minimum at t = 3, and phi = phi' = bad beyond t = 2."""

    def phi(t):
        if t > 2.0:
            return bad, bad
        return (t - 3.0) ** 2, 2.0 * (t - 3.0)

    return phi


def no_decrease_phis():
    noise = lambda t: 0.0 if t == 0 else 1e-13 * (1.5 + math.sin(1e3 * t))  # noqa: E731

    return {
        # the slope claims descent; phi only rises (a wrong gradient, or rounding)
        "rising": lambda t: (1.0 + 1e-3 * t, -1.0),
        "noise": lambda t: (1.0 + noise(t), -1e-6),
        # the true minimum, 2.5e-25 below f0 at t = 5e-13, is below rounding at f0 = 1
        "tiny-dip": lambda t: (1.0 + (t * t - 1e-12 * t), 2.0 * t - 1e-12),
    }


def endless_descent(t):
    """phi(t) = -t log(e + t): its slope only steepens, so the bracketing never ends."""
    return -t * math.log(math.e + t), -math.log(math.e + t) - t / (math.e + t)


def half_walled(f_bad, g_bad):
    """walled, but beyond t = 2 only phi (f_bad) or only phi' (g_bad) is non-finite."""
    def phi(t):
        if t > 2.0:
            return (f_bad if f_bad is not None else (t - 3.0) ** 2,
                    g_bad if g_bad is not None else 2.0 * (t - 3.0))
        return (t - 3.0) ** 2, 2.0 * (t - 3.0)

    return phi
