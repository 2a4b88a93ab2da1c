"""The L-BFGS of saejax.optim: its two-loop recursion, its iterations, and why it stops.

The two-loop recursion is checked against a NumPy transcription of Nocedal & Wright's
Algorithm 7.4; whole runs against known minimizers (a quadratic's solves a linear system,
Rosenbrock's is (1, 1)) and against minFunc's rules for the first step.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from lbfgs_reference import np_two_loop, rosen4, run, terms_of

from saejax import optim


@pytest.mark.parametrize("stored", [1, 3, 4, 6, 11])
def test_two_loop_matches_numpy_across_the_ring(stored):
    rng = np.random.default_rng(stored)
    n, m = 7, 4
    A = rng.normal(size=(n, n))
    A = A @ A.T + n * np.eye(n)
    S, Y, rho, pairs = np.zeros((m, n)), np.zeros((m, n)), np.zeros(m), []
    for i in range(stored):  # pair i lives in row i % m; the oldest are overwritten
        s = rng.normal(size=n)
        y = A @ s
        pairs.append((s, y))
        S[i % m], Y[i % m], rho[i % m] = s, y, 1.0 / (y @ s)
    pairs = pairs[-m:]
    g = rng.normal(size=n)
    s, y = pairs[-1]
    # the compact form reads the recursion's scalars from the Gram matrices of the ring's rows
    got = optim.two_loop(jnp.asarray(g), jnp.asarray(S), jnp.asarray(Y), jnp.asarray(rho),
                         jnp.asarray(stored), (s @ y) / (y @ y), jnp.asarray(S @ Y.T),
                         jnp.asarray(Y @ Y.T))
    np.testing.assert_allclose(got, np_two_loop(g, pairs), rtol=1e-12, atol=1e-14)



def test_quadratic_reaches_the_solution_of_its_linear_system():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(6, 6))
    A = jnp.asarray(A @ A.T + 0.5 * np.eye(6))
    b = jnp.asarray(rng.normal(size=6))
    params, step, opt, rows = run(lambda x: 0.5 * x @ A @ x - b @ x, np.zeros(6), 60)
    # J is flat to rounding within ~sqrt(eps) of the minimizer: x is known to about 1e-8.
    np.testing.assert_allclose(params["x"], np.linalg.solve(A, b), rtol=1e-6, atol=1e-8)
    losses = [float(r["loss"]) for r in rows]
    # No iteration raises J by more than the approximate-Wolfe allowance of a few roundings.
    tol = optim.APPROX_WOLFE_ULPS * np.finfo(np.float64).eps
    assert all(b <= a + tol * abs(a) for a, b in zip(losses, losses[1:]))
    x_star = np.linalg.solve(A, b)
    np.testing.assert_allclose(float(opt.value), -0.5 * float(b @ x_star), rtol=1e-12)
    assert optim.STOP_REASONS[int(opt.stop)] == "no_decrease"  # converged: rounding ran out
    assert int(step) < 60


@pytest.mark.slow  # the fast tier keeps the quadratic's solution
def test_rosenbrock_reaches_its_minimum():
    def rosen(x):
        return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2

    params, step, opt, _ = run(rosen, [-1.2, 1.0], 200)
    np.testing.assert_allclose(params["x"], [1.0, 1.0], atol=1e-6)
    assert int(opt.evaluations) < 2 * int(step) + 10  # about one evaluation per iteration


def test_the_state_keeps_the_gram_matrices_of_its_ring():
    # The compact two-loop trusts SY = S Y^T and YY = Y Y^T; after the ring has wrapped (memory
    # 3, tens of pairs), they must still equal the Gram matrices computed from S and Y here.
    def rosen(x):
        return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2 + 0.1 * jnp.sum(x[2:] ** 4)

    _, step, opt, _ = run(rosen, [-1.2, 1.0, 0.5, -2.0], 40, memory=3)
    assert int(opt.stored) > 3 and int(step) > 3
    S, Y = np.asarray(opt.S), np.asarray(opt.Y)
    np.testing.assert_allclose(np.asarray(opt.SY), S @ Y.T, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(np.asarray(opt.YY), Y @ Y.T, rtol=1e-12, atol=1e-300)


def test_first_iteration_follows_minfunc():
    # Empty memory: d = -g and the first trial t0 = min(1, 1/sum|g|). On f = 0.5 |x|^2 from
    # x0 = (3, -4): g = x0, sum|g| = 7, so t0 = 1/7. phi(t) = 12.5 (1 - t)^2 and
    # phi'(t0) = -25 (6/7) = -21.4: sufficient decrease holds and |phi'| <= 0.9 * 25 = 22.5,
    # so the first trial is accepted and x1 = x0 (1 - 1/7).
    def half_square(x):
        return 0.5 * x @ x

    params, step, opt, rows = run(half_square, [3.0, -4.0], 1)
    assert rows[0]["linesearch_steps"] == 1
    np.testing.assert_allclose(params["x"], np.array([3.0, -4.0]) * 6 / 7, rtol=1e-14)
    assert optim.STOP_REASONS[int(opt.stop)] == "budget" and int(step) == 1
    assert int(opt.evaluations) == 2  # the start, and the one trial


def test_stops_at_once_where_the_gradient_vanishes():
    params, step, opt, rows = run(lambda x: jnp.sum((x - 1.0) ** 2), [1.0, 1.0], 50)
    assert optim.STOP_REASONS[int(opt.stop)] == "no_decrease"
    assert int(step) == 0 and rows == [] and int(opt.evaluations) == 1


def test_nonfinite_trials_shrink_the_step():
    # J is +inf beyond x = 2; the minimum of the finite part is at 3, so the first trials
    # overshoot into inf. The search must back off into the finite region, never accept inf.
    def walled(x):
        return jnp.where(x[0] > 2.0, jnp.inf, (x[0] - 3.0) ** 2)

    params, step, opt, rows = run(walled, [0.0], 30)
    assert np.isfinite(float(opt.value)) and float(params["x"][0]) <= 2.0
    assert float(opt.value) < 9.0  # lower than J at the start
    assert all(np.isfinite(float(r["loss"])) for r in rows)


@pytest.mark.slow
def test_state_is_a_pytree_that_vmaps():
    # Two members with different problems tick together; each equals its own run.
    def f(x, c):
        return jnp.sum((x - c) ** 2) + 0.1 * jnp.sum(x**4)

    def member_run(c, ticks):
        def evaluate(params, batch, hyper):
            value, g = jax.value_and_grad(f)(params["x"], c)
            return (terms_of(value), {"x": g})
        return optim.make_lbfgs_tick(evaluate, 20)

    cs = jnp.asarray([[1.0, 2.0], [-3.0, 0.5]])

    def batched_tick(params, step, opt, c):
        return member_run(c, 0)(params, step, opt, None, None)

    params = {"x": jnp.zeros((2, 2))}
    opt = jax.vmap(lambda p: optim.init_lbfgs(p, 5))(params)
    step = jnp.zeros((2,), jnp.int32)
    tick = jax.jit(jax.vmap(batched_tick))
    for _ in range(40):
        params, step, opt, _, _ = tick(params, step, opt, cs)
    for i in range(2):
        alone, _, opt_i, _ = run(lambda x, c=cs[i]: f(x, c), [0.0, 0.0], 20, memory=5, ticks=40)
        np.testing.assert_allclose(params["x"][i], alone["x"], rtol=1e-12)


@pytest.mark.parametrize("memory", [pytest.param(10, marks=pytest.mark.slow), 2])
def test_the_first_iterations_follow_minfunc(memory):
    """Five iterations on a 4-D Rosenbrock against tests/minfunc.py: the first along -g, then
    memories of one, two, three and four pairs, which memory 2 holds only by wrapping its ring
    (the fourth and fifth iterations overwrite its oldest rows)."""
    from minfunc import minfunc_lbfgs

    def fg(x):
        value, g = jax.value_and_grad(rosen4)(jnp.asarray(x))
        return float(value), np.asarray(g)

    x0 = [-1.2, 1.0, 2.0, -1.0]
    want = minfunc_lbfgs(fg, x0, 5, memory)
    assert len(want) == 5 and [r["evals"] for r in want] != [1] * 5  # more than accepting t0
    params, step, opt, rows = run(rosen4, x0, 5, memory=memory)
    assert int(step) == 5 and len(rows) == 5
    # row i: J where iteration i started, and the evaluations of its line search
    starts = [fg(np.asarray(x0))[0]] + [r["f"] for r in want[:-1]]
    np.testing.assert_allclose([float(r["loss"]) for r in rows], starts, rtol=1e-12)
    assert [int(r["linesearch_steps"]) for r in rows] == [r["evals"] for r in want]
    np.testing.assert_allclose(params["x"], want[-1]["x"], rtol=1e-12)
    np.testing.assert_allclose(float(opt.value), want[-1]["f"], rtol=1e-12)


def _fake_evaluate(value_and_grad):
    """An ``evaluate`` from x -> (J, g) on a 1-D x; g may be any vector, true gradient or not."""
    def evaluate(params, batch, hyper):
        value, g = value_and_grad(params["x"][0])
        return (terms_of(value), {"x": jnp.reshape(g, (1,))})
    return evaluate


def _ticks(evaluate, x0, memory=5, max_iterations=50, ticks=200):
    """Every tick's (x, finished iterations, pairs stored, stop reason, accepted, state)."""
    tick = jax.jit(optim.make_lbfgs_tick(evaluate, max_iterations))
    params, opt = {"x": jnp.asarray([x0])}, optim.init_lbfgs({"x": jnp.asarray([x0])}, memory)
    step, out = jnp.zeros((), jnp.int32), []
    for _ in range(ticks):
        params, step, opt, _, accepted = tick(params, step, opt, None, None)
        out.append((float(params["x"][0]), int(step), int(opt.stored),
                    optim.STOP_REASONS[int(opt.stop)], bool(accepted), opt))
        if int(opt.stop):
            break
    return out


def test_a_failed_search_restarts_once_from_steepest_descent_then_stops():
    # J = x^2/2 for x >= 1 and 1/2 below, while the gradient reported below 1 is 1 (a plateau
    # whose slope says "go left" but whose J never falls: float32's rounding at small scale).
    # By hand: from x = 4, d = -4 and t0 = 1/4 give x = 3 (a Wolfe point at the first trial:
    # phi' = -12, |-12| <= 0.9 * 16); the pair s = y = -1 gives H0 = 1, d = -3, t = 1: x = 0,
    # J = 1/2 (phi' = -3, a Wolfe point). From 0 no trial is below 1/2: the memory (2 pairs)
    # is emptied and the search restarts from d = -g; when that fails too, the run stops,
    # at x = 0, "no_decrease" (its bracket narrows below progTol before 26 evaluations).
    evaluate = _fake_evaluate(lambda x: (jnp.where(x >= 1.0, 0.5 * x * x, 0.5),
                                         jnp.where(x >= 1.0, x, 1.0)))
    ticks = _ticks(evaluate, 4.0)
    accepted = [(x, step, stored) for x, step, stored, _, acc, _ in ticks if acc]
    assert accepted[:2] == [(3.0, 1, 1), (0.0, 2, 2)]
    assert accepted[2] == (0.0, 3, 0)  # the restart: an empty memory, still running
    assert ticks[-1][:4] == (0.0, 4, 0, "no_decrease")
    restart = next(i for i, t in enumerate(ticks) if t[4] and t[2] == 0)
    assert ticks[restart][3] == "running"
    # the restarted search starts from -g with minFunc's first trial min(1, 1/sum|g|) = 1
    opt = ticks[restart][5]
    np.testing.assert_allclose(opt.direction, [-1.0])
    assert float(opt.search.t) == 1.0
    assert int(ticks[-1][5].search.evals) < 26  # it narrowed; it did not run out


def test_a_search_that_uses_every_evaluation_stops_with_linesearch():
    # J is finite only at the start: every trial is inf, the zoom bisects [0, t] and 2^-25 of
    # the first trial stays above progTol, so the search spends its 26 evaluations (minFunc's
    # maxLS = 25 after the first) and, with an empty memory, the run stops: "linesearch".
    evaluate = _fake_evaluate(lambda x: (jnp.where(x == 3.0, 4.5, jnp.inf), x))
    ticks = _ticks(evaluate, 3.0)
    x, step, stored, reason, accepted, opt = ticks[-1]
    assert reason == "linesearch" and x == 3.0 and stored == 0 and accepted
    assert int(opt.search.evals) == 26 and int(opt.evaluations) == 27  # the start, 26 trials


@pytest.mark.parametrize("dtype", [jnp.float64, pytest.param(jnp.float32, marks=pytest.mark.slow)])
def test_the_approximate_wolfe_tolerance_is_ten_roundings_of_j(dtype):
    # After the first tick the search along -g accepts a trial whose J is within
    # 10 eps |J(x0)| of J(x0): eps of the dtype, written here.
    eps = {jnp.float64: 2.220446049250313e-16, jnp.float32: 1.1920929e-07}[dtype]
    assert optim.lbfgs.APPROX_WOLFE_ULPS == 10

    def evaluate(params, batch, hyper):
        x = params["x"]
        value = 0.5 * jnp.sum(x * x) + 7.0
        return (terms_of(value), {"x": x})

    params = {"x": jnp.asarray([3.0, -4.0], dtype)}
    tick = jax.jit(optim.make_lbfgs_tick(evaluate, 5))
    _, _, opt, _, _ = tick(params, jnp.zeros((), jnp.int32), optim.init_lbfgs(params, 3), None,
                           None)
    np.testing.assert_allclose(float(opt.search.f_tol), 10 * eps * 19.5, rtol=1e-6)
    assert float(opt.search.f0) == 19.5


@pytest.mark.parametrize("stored", [1, 3])
def test_two_loop_ignores_the_stale_rows_a_restart_leaves(stored):
    # After a restart the ring's rows beyond `stored` still hold old pairs: H g must read
    # only the stored ones (the rows 0 .. stored-1), whatever the others hold.
    rng = np.random.default_rng(stored)
    n, m = 5, 4
    A = rng.normal(size=(n, n))
    A = A @ A.T + n * np.eye(n)
    S = rng.normal(size=(m, n))  # every row nonzero: the stale ones too
    Y = S @ A.T
    rho = 1.0 / np.sum(S * Y, axis=1)
    pairs = [(S[i], Y[i]) for i in range(stored)]
    g = rng.normal(size=n)
    s, y = pairs[-1]
    got = optim.two_loop(jnp.asarray(g), jnp.asarray(S), jnp.asarray(Y), jnp.asarray(rho),
                         jnp.asarray(stored), (s @ y) / (y @ y), jnp.asarray(S @ Y.T),
                         jnp.asarray(Y @ Y.T))
    np.testing.assert_allclose(got, np_two_loop(g, pairs), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_the_state_keeps_the_params_dtype(dtype):
    state = optim.init_lbfgs({"x": jnp.zeros(3, dtype), "b": jnp.zeros((2, 2), dtype)}, 4)
    for name in ("S", "Y", "rho", "SY", "YY", "h_diag", "value", "grad", "direction",
                 "best_grad"):
        assert getattr(state, name).dtype == dtype, name
    assert state.S.shape == (4, 7) and state.SY.shape == (4, 4)
