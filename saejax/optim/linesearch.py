"""A strong-Wolfe line search as a pure state machine, one evaluation per step.

This is minFunc's ``WolfeLineSearch`` (Mark Schmidt, minFunc 2012, ``LS_type = 1``,
``LS_interp = 2``: bracketing with cubic extrapolation, then zoom with cubic interpolation and
its "insufficient progress" safeguard), which the UFLDL exercise calls with c1 = 1e-4,
c2 = 0.9, maxLS = 25 (at most 26 evaluations) and progTol = 1e-9. It is written as a state machine so that
many searches can run side by side under ``jax.vmap``, each at its own pace: the caller
evaluates phi(t) = f(x + t d) and phi'(t) = <grad f(x + t d), d> at ``state.t`` and feeds both
to ``step``, which returns the next state. Nothing waits for anything else.

    state = init(f0, g0, t0, scale)         phi(0), phi'(0) < 0, the first trial t0, max|d|
    while not state.ended:
        state = step(state, phi(state.t), phi'(state.t))
    state.best_t, state.best_f               the step taken and phi there

Two choices differ from minFunc's code, both to keep a member's state a few scalars:
- The result is the lowest phi seen (``best_t``), or the trial that satisfied the Wolfe
  conditions, where minFunc returns the lower end of its final bracket. The two agree except
  after an extrapolation that raised phi in the first two trials, which minFunc's bracketing
  test ignores (its ``LSiter > 1``, kept here as is).
- A non-finite phi or phi' ends the bracketing phase like a too-long step (the bracket is
  [previous t, t]) and the zoom bisects it, where minFunc switches to Armijo backtracking.
  Both shrink the step toward the last finite point. Such a point is never the bracket's low
  end, even when its phi is the lower (a finite phi beside an infinite slope).
``improved`` says that the latest trial became ``best``; the caller keeps that trial's gradient.

One option goes beyond minFunc: ``init(..., approx_tol=eps)`` also accepts Hager and Zhang's
*approximate* Wolfe points (W. Hager, H. Zhang, "A new conjugate gradient method with
guaranteed descent and an efficient line search", SIAM J. Optim. 16 (2005), section 4): a trial
whose phi lies within eps |phi(0)| of phi(0) and whose slope meets the curvature condition is
accepted even when rounding hides its decrease. In float32 near a plateau of J, the decrease a
step earns is smaller than the rounding of J itself; the slopes still tell the truth, and this
lets the search follow them. ``approx_tol=0`` (the default) is minFunc's search exactly.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from saejax.pytree import pytree_dataclass

C1 = 1e-4  # sufficient decrease: phi(t) <= phi(0) + C1 t phi'(0)
C2 = 0.9  # curvature: |phi'(t)| <= C2 |phi'(0)|
MAX_LS = 25  # minFunc's maxLS: trials after the first one
MAX_EVALS = MAX_LS + 1  # so a search evaluates phi at most 26 times
PROG_TOL = 1e-9  # minFunc's progTol: a bracket narrower than this (times max|d|) ends the search


@pytree_dataclass
class LineSearchState:
    """Scalars of one search (shapes () each; a leading axis under vmap)."""

    t: jax.Array  # the trial to evaluate next
    f0: jax.Array  # phi(0)
    f_tol: jax.Array  # approx_tol |phi(0)|: phi within this of phi(0) counts as no increase
    g0: jax.Array  # phi'(0) (negative: d is a descent direction)
    scale: jax.Array  # max|d|, for the progTol test on the bracket width
    prev_t: jax.Array  # bracketing: the previous trial (starts at 0)
    prev_f: jax.Array
    prev_g: jax.Array
    a_t: jax.Array  # zoom: the bracket's two ends (a, b) and phi, phi' there
    a_f: jax.Array
    a_g: jax.Array
    b_t: jax.Array
    b_f: jax.Array
    b_g: jax.Array
    zoom: jax.Array  # bool: in the zoom phase
    insuf: jax.Array  # bool: the last zoom trial was close to an end of the bracket
    evals: jax.Array  # int32: evaluations fed so far
    ended: jax.Array  # bool: the search is over; best_t is the step
    wolfe: jax.Array  # bool: it ended on a point satisfying the strong Wolfe conditions
    best_t: jax.Array  # the trial with the lowest phi so far (0 until one beats phi(0))
    best_f: jax.Array
    improved: jax.Array  # bool: the latest evaluated trial became best


def init(f0, g0, t0, scale, approx_tol=0.0) -> LineSearchState:
    """A search along d from phi(0) = f0 with slope g0 < 0; the first trial is t0.

    ``scale`` is max|d| (for the bracket-width test); ``approx_tol`` > 0 also accepts
    approximate Wolfe points (see the module docstring).
    """
    f0 = jnp.asarray(f0)
    dt = f0.dtype
    zero, false = jnp.zeros((), dt), jnp.zeros((), bool)
    f0, g0 = f0.astype(dt), jnp.asarray(g0, dt)
    return LineSearchState(
        t=jnp.asarray(t0, dt), f0=f0, f_tol=jnp.asarray(approx_tol, dt) * jnp.abs(f0),
        g0=g0, scale=jnp.asarray(scale, dt),
        prev_t=zero, prev_f=f0, prev_g=g0,
        a_t=zero, a_f=f0, a_g=g0, b_t=zero, b_f=f0, b_g=g0,
        zoom=false, insuf=false, evals=jnp.zeros((), jnp.int32), ended=false, wolfe=false,
        best_t=zero, best_f=f0, improved=false,
    )


def cubic_minimizer(t1, f1, g1, t2, f2, g2, lo, hi):
    """The minimizer of the cubic through (t1, f1, g1) and (t2, f2, g2), clipped to [lo, hi].

    minFunc's ``polyinterp`` for two points with derivatives: with a the point of smaller t,
    d1 = g_a + g_b - 3 (f_a - f_b)/(t_a - t_b), d2 = sqrt(d1^2 - g_a g_b), and
    t = t_b - (t_b - t_a) (g_b + d2 - d1)/(g_b - g_a + 2 d2). With no real minimizer (d1^2 <
    g_a g_b) it returns the midpoint of [lo, hi]; an infinite minimizer is clipped to a bound.
    """
    swap = t2 < t1
    ta, fa, ga = (jnp.where(swap, u, v) for u, v in ((t2, t1), (f2, f1), (g2, g1)))
    tb, fb, gb = (jnp.where(swap, u, v) for u, v in ((t1, t2), (f1, f2), (g1, g2)))
    d1 = ga + gb - 3.0 * (fa - fb) / (ta - tb)
    disc = d1 * d1 - ga * gb
    d2 = jnp.sqrt(jnp.maximum(disc, 0.0))
    t = tb - (tb - ta) * ((gb + d2 - d1) / (gb - ga + 2.0 * d2))
    # As MATLAB's min(max(t, lo), hi): an infinite t goes to a bound, a NaN t to lo.
    clipped = jnp.where(jnp.isnan(t), lo, jnp.clip(t, lo, hi))
    return jnp.where(disc >= 0, clipped, 0.5 * (lo + hi))


def _zoom_trial(s: LineSearchState):
    """The next zoom trial from the bracket, with minFunc's insufficient-progress safeguard."""
    lo, hi = jnp.minimum(s.a_t, s.b_t), jnp.maximum(s.a_t, s.b_t)
    finite = jnp.isfinite(jnp.stack([s.a_f, s.a_g, s.b_f, s.b_g])).all()
    t = jnp.where(finite, cubic_minimizer(s.a_t, s.a_f, s.a_g, s.b_t, s.b_f, s.b_g, lo, hi),
                  0.5 * (lo + hi))
    width = hi - lo
    close = jnp.minimum(hi - t, t - lo) / width < 0.1
    move = close & (s.insuf | (t >= hi) | (t <= lo))
    # 0.1 of the width away from the nearer end
    moved = jnp.where(jnp.abs(t - hi) < jnp.abs(t - lo), hi - 0.1 * width, lo + 0.1 * width)
    return jnp.where(move, moved, t), close & ~move


def step(s: LineSearchState, f, g) -> LineSearchState:
    """Feeds phi(s.t) = f and phi'(s.t) = g; returns the next state (unchanged once ended)."""
    f, g = jnp.asarray(f, s.f0.dtype), jnp.asarray(g, s.f0.dtype)
    t = s.t
    evals = s.evals + 1
    finite = jnp.isfinite(f) & jnp.isfinite(g)
    armijo = f <= s.f0 + C1 * t * s.g0
    curvature = jnp.abs(g) <= -C2 * s.g0
    # Hager-Zhang's approximate Wolfe point: no visible increase, and the curvature condition
    approx = finite & (s.f_tol > 0) & (f <= s.f0 + s.f_tol) & curvature

    # --- bracketing: a step too long, a Wolfe point, an upward slope, or extrapolate ---
    too_long = ~finite | ~armijo | ((evals > 2) & (f >= s.prev_f))
    b_wolfe = (finite & ~too_long & curvature) | approx
    upward = finite & ~too_long & ~b_wolfe & (g >= 0)
    bracketed = too_long | upward
    extrapolate = ~bracketed & ~b_wolfe
    t_ext = cubic_minimizer(s.prev_t, s.prev_f, s.prev_g, t, f, g,
                            t + 0.01 * (t - s.prev_t), 10.0 * t)

    # --- zoom: the trial replaces the bracket's high end, or becomes its low end ---
    # minFunc's LOpos: the end with the lower phi (a on ties; MATLAB's min skips a NaN), but
    # never an end whose phi or phi' is not finite: a low phi with an infinite slope beside it
    # must not draw the zoom away from the legal points
    legal_a = jnp.isfinite(s.a_f) & jnp.isfinite(s.a_g)
    legal_b = jnp.isfinite(s.b_f) & jnp.isfinite(s.b_g)
    a_low = legal_a & (~legal_b | (s.a_f <= s.b_f))
    lo_f = jnp.where(a_low, s.a_f, s.b_f)
    lo_t, hi_t = jnp.where(a_low, s.a_t, s.b_t), jnp.where(a_low, s.b_t, s.a_t)
    replace_hi = ~finite | ~(f < s.f0 + C1 * t * s.g0) | (f >= lo_f)
    z_wolfe = (~replace_hi & curvature) | approx
    hi_to_lo = ~replace_hi & ~z_wolfe & (g * (hi_t - lo_t) >= 0)
    # New ends, as (is the new point at a?, is the old low end copied to the high end?)
    new_at_a = jnp.where(replace_hi, ~a_low, a_low)
    z_a = [jnp.where(new_at_a, v, jnp.where(hi_to_lo & ~a_low, lo, a))
           for v, a, lo in ((t, s.a_t, s.b_t), (f, s.a_f, s.b_f), (g, s.a_g, s.b_g))]
    z_b = [jnp.where(~new_at_a, v, jnp.where(hi_to_lo & a_low, lo, b))
           for v, b, lo in ((t, s.b_t, s.a_t), (f, s.b_f, s.a_f), (g, s.b_g, s.a_g))]

    zoom_now = s.zoom | bracketed  # in the zoom phase after this evaluation
    a = [jnp.where(s.zoom, z, jnp.where(bracketed, p, old))
         for z, p, old in zip(z_a, (s.prev_t, s.prev_f, s.prev_g), (s.a_t, s.a_f, s.a_g), strict=True)]
    b = [jnp.where(s.zoom, z, jnp.where(bracketed, v, old))
         for z, v, old in zip(z_b, (t, f, g), (s.b_t, s.b_f, s.b_g), strict=True)]
    wolfe = jnp.where(s.zoom, z_wolfe, b_wolfe)
    # the result: the lowest phi seen, or the trial that ends the search as a Wolfe point
    improved = (finite & (f < s.best_f)) | wolfe
    best_t, best_f = jnp.where(improved, t, s.best_t), jnp.where(improved, f, s.best_f)
    narrow = s.zoom & ~z_wolfe & (jnp.abs(a[0] - b[0]) * s.scale < PROG_TOL)
    ended = wolfe | narrow | (evals >= MAX_EVALS)

    new = s.replace(
        evals=evals, best_t=best_t, best_f=best_f, improved=improved, wolfe=wolfe,
        ended=ended, zoom=zoom_now,
        a_t=a[0], a_f=a[1], a_g=a[2], b_t=b[0], b_f=b[1], b_g=b[2],
        prev_t=jnp.where(extrapolate & ~s.zoom, t, s.prev_t),
        prev_f=jnp.where(extrapolate & ~s.zoom, f, s.prev_f),
        prev_g=jnp.where(extrapolate & ~s.zoom, g, s.prev_g),
        insuf=jnp.where(bracketed & ~s.zoom, False, s.insuf),
    )
    t_zoom, insuf = _zoom_trial(new)
    t_next = jnp.where(zoom_now, t_zoom, t_ext)
    new = new.replace(t=jnp.where(ended, best_t, t_next),
                      insuf=jnp.where(zoom_now & ~ended, insuf, new.insuf))
    # A search that had already ended ignores further evaluations.
    new = jax.tree.map(lambda old, nw: jnp.where(s.ended, old, nw), s, new)
    return new.replace(improved=improved & ~s.ended)
