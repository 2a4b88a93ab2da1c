"""minFunc (Mark Schmidt, minFunc 2012, https://www.cs.ubc.ca/~schmidtm/Software/minFunc.html),
transcribed to NumPy float64 with plain Python loops: the reference of saejax.optim's line search
and L-BFGS.

``minfunc_wolfe`` is ``WolfeLineSearch.m`` with ``polyinterp.m`` for ``LS_interp = 2``, and
``minfunc_lbfgs`` the L-BFGS iterations of ``minFunc.m`` with ``lbfgsUpdate.m`` and ``lbfgs.m``,
both with the UFLDL settings c1 = 1e-4, c2 = 0.9, maxLS = 25, progTol = 1e-9.
"""

import math

import numpy as np

C1, C2, MAX_LS, PROG_TOL = 1e-4, 0.9, 25, 1e-9




def _mat_clip(t, lo, hi):
    """MATLAB's ``min(max(t, lo), hi)``: its max and min ignore NaN (so NaN gives lo)."""
    return float(np.fmin(np.fmax(t, lo), hi))


def polyinterp2(x1, f1, g1, x2, f2, g2, lo=None, hi=None):
    """minFunc's ``polyinterp`` for two points with function values and derivatives.

    The points are ordered by x (the first on ties, like MATLAB's ``min``); the minimizer of the
    interpolating cubic is clipped to [lo, hi] (default: the two points' x range), and where it
    is complex (d1^2 < g_min g_max) the midpoint of [lo, hi] is returned.
    """
    with np.errstate(all="ignore"):
        x1, f1, g1, x2, f2, g2 = map(np.float64, (x1, f1, g1, x2, f2, g2))
        if x2 < x1:
            (x1, f1, g1), (x2, f2, g2) = (x2, f2, g2), (x1, f1, g1)
        lo = x1 if lo is None else np.float64(lo)
        hi = x2 if hi is None else np.float64(hi)
        d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
        disc = d1 * d1 - g1 * g2
        if disc >= 0 or np.isnan(disc):  # MATLAB: isreal(sqrt(NaN)) is true
            d2 = np.sqrt(disc)
            t = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
            return _mat_clip(t, lo, hi)
        return float((hi + lo) / 2)


def _mat_argmin(values):
    """MATLAB's ``[m, pos] = min(v)``: the first minimum, NaN ignored (unless all NaN)."""
    finite = [i for i, v in enumerate(values) if not math.isnan(v)]
    return min(finite, key=lambda i: values[i]) if finite else 0


def minfunc_wolfe(phi, t, f, gtd, nrm_d, max_ls=MAX_LS, events=None):
    """minFunc's WolfeLineSearch, LS_interp = 2, along phi(t) = (f, phi'(t)) from (f, gtd).

    Returns (trials, t, f_t, done): every t evaluated, in order; minFunc's result (the bracket's
    lower end); phi there; whether it ended on a Wolfe point. ``events`` (a set) collects the
    branches taken. The one change is saejax's documented deviation for a non-finite phi in the
    bracketing phase: where minFunc switches to Armijo backtracking, this brackets [t_prev, t]
    and lets the zoom, which bisects brackets with non-finite ends (as minFunc's does), go on.
    """
    events = set() if events is None else events
    legal = lambda *v: all(math.isfinite(x) for x in v)  # noqa: E731
    trials = [t]
    f_new, gtd_new = phi(t)
    ls_iter, t_prev, f_prev, gtd_prev, done = 0, 0.0, f, gtd, False
    # --- bracketing phase ---
    while ls_iter < max_ls:
        if not legal(f_new, gtd_new):  # the deviation (minFunc: ArmijoBacktrack)
            events.add("bracket: not finite")
            bracket, b_f, b_g = [t_prev, t], [f_prev, f_new], [gtd_prev, gtd_new]
            break
        if f_new > f + C1 * t * gtd or (ls_iter > 1 and f_new >= f_prev):
            events.add("bracket: too long" if f_new > f + C1 * t * gtd else "bracket: f rose")
            bracket, b_f, b_g = [t_prev, t], [f_prev, f_new], [gtd_prev, gtd_new]
            break
        elif abs(gtd_new) <= -C2 * gtd:
            events.add("bracket: wolfe")
            bracket, b_f, b_g = [t], [f_new], [gtd_new]
            done = True
            break
        elif gtd_new >= 0:
            events.add("bracket: upward slope")
            bracket, b_f, b_g = [t_prev, t], [f_prev, f_new], [gtd_prev, gtd_new]
            break
        events.add("extrapolate")
        temp, t_prev = t_prev, t
        min_step, max_step = t + 0.01 * (t - temp), t * 10
        t = polyinterp2(temp, f_prev, gtd_prev, t, f_new, gtd_new, min_step, max_step)
        f_prev, gtd_prev = f_new, gtd_new
        f_new, gtd_new = phi(t)
        trials.append(t)
        ls_iter += 1
    if ls_iter == max_ls:
        events.add("maxLS in bracketing")
        bracket, b_f, b_g = [0.0, t], [f, f_new], [gtd, gtd_new]
    # --- zoom phase ---
    insuf_progress = False
    while not done and ls_iter < max_ls:
        lo_pos = _mat_argmin(b_f)
        hi_pos = 1 - lo_pos
        f_lo = b_f[lo_pos]
        t, insuf_progress = _zoom_trial(bracket, b_f, b_g, insuf_progress, events)
        f_new, gtd_new = phi(t)
        trials.append(t)
        ls_iter += 1
        armijo = f_new < f + C1 * t * gtd
        if not armijo or f_new >= f_lo:
            events.add("zoom: replace HI")
            bracket[hi_pos], b_f[hi_pos], b_g[hi_pos] = t, f_new, gtd_new
        else:
            if abs(gtd_new) <= -C2 * gtd:
                events.add("zoom: wolfe")
                done = True
            elif gtd_new * (bracket[hi_pos] - bracket[lo_pos]) >= 0:
                events.add("zoom: LO to HI")
                bracket[hi_pos], b_f[hi_pos], b_g[hi_pos] = bracket[lo_pos], f_lo, b_g[lo_pos]
            events.add("zoom: new LO")
            bracket[lo_pos], b_f[lo_pos], b_g[lo_pos] = t, f_new, gtd_new
        if not done and abs(bracket[0] - bracket[1]) * nrm_d < PROG_TOL:
            events.add("zoom: progTol")
            break
    if not done and ls_iter == max_ls:
        events.add("maxLS")
    lo_pos = _mat_argmin(b_f)
    return trials, bracket[lo_pos], b_f[lo_pos], done


def _zoom_trial(bracket, b_f, b_g, insuf_progress, events):
    """The zoom phase's next t inside the bracket, and its insufficient-progress flag: the
    cubic's minimum (bisection when an end is not finite), moved 0.1 of the bracket in from an
    end when it lies that close twice running or outside."""
    if not all(math.isfinite(v) for v in (*b_f, *b_g)):
        events.add("zoom: bisect")
        t = (bracket[0] + bracket[1]) / 2
    else:
        t = polyinterp2(bracket[0], b_f[0], b_g[0], bracket[1], b_f[1], b_g[1])
    lo, hi = min(bracket), max(bracket)
    if not min(hi - t, t - lo) / (hi - lo) < 0.1:  # (NaN included, as minFunc's test)
        return t, False
    if insuf_progress or t >= hi or t <= lo:
        events.add("zoom: 0.1 from the end")
        return (hi - 0.1 * (hi - lo) if abs(t - hi) < abs(t - lo) else lo + 0.1 * (hi - lo),
                False)
    events.add("zoom: close to an end")
    return t, True


def lbfgs_direction(g, pairs, h_diag):
    """minFunc's ``lbfgs.m``: -H g by the two-loop recursion over ``pairs`` (s, y), oldest
    first, with H0 = h_diag I."""
    q, alphas = -g.copy(), []
    for s, y in reversed(pairs):
        a = (s @ q) / (y @ s)
        alphas.append(a)
        q = q - a * y
    r = h_diag * q
    for (s, y), a in zip(pairs, reversed(alphas)):
        r = r + (a - (y @ r) / (y @ s)) * s
    return r


def minfunc_lbfgs(fg, x0, iterations: int, memory: int):
    """The L-BFGS iterations of ``minFunc.m`` (``Method = 'lbfgs'``, Wolfe line search).

    ``fg(x) -> (f, g)``. Returns one dict per iteration: the point ``x`` after it, ``f`` there,
    the step ``t`` and the line search's ``evals``. As minFunc: d = -g first, then -H g with
    the pairs of ``lbfgsUpdate.m`` (a pair with y.s <= 1e-10 is skipped; the oldest dropped
    beyond ``memory``; Hdiag = y.s / y.y of the newest); t0 = min(1, 1/sum|g|) on the first
    iteration, 1 after; the search returns the lower end of its final bracket.
    """
    x = np.asarray(x0, np.float64)
    f, g = fg(x)
    pairs, h_diag, out, t, d, g_old = [], 1.0, [], None, None, None
    for i in range(iterations):
        if i == 0:
            d = -g
        else:
            y, s = g - g_old, t * d
            if y @ s > 1e-10:
                pairs = (pairs + [(s, y)])[-memory:]
                h_diag = (y @ s) / (y @ y)
            d = lbfgs_direction(g, pairs, h_diag)
        g_old = g
        gtd = g @ d
        if gtd > -PROG_TOL:
            break
        t0 = min(1.0, 1.0 / np.sum(np.abs(g))) if i == 0 else 1.0

        def phi(step, x=x, d=d):
            value, grad = fg(x + step * d)
            return float(value), float(grad @ d)

        trials, t, f, _ = minfunc_wolfe(phi, t0, float(f), float(gtd), float(np.max(np.abs(d))))
        x = x + t * d
        f, g = fg(x)
        out.append({"x": x, "f": float(f), "t": t, "evals": len(trials)})
    return out
