"""Full-batch L-BFGS that ticks: its state, the compact two-loop recursion, the tick, the driver.

L-BFGS advances by *ticks*. Each tick evaluates J and its gradient exactly once, at the point
the member's own state asks for, and moves its state machine on:

    start       evaluate at params: J, g; first direction d = -g (the memory is empty)
    search      evaluate at params + t d; feed phi(t), phi'(t) = <g(t), d> to the line search
                (saejax.optim.linesearch, minFunc's strong-Wolfe bracketing and zoom)
    accept      when the search ends: params += best_t d; update the L-BFGS memory with
                s = best_t d, y = g(best) - g and take the next direction, d = -H g by the
                compact two-loop recursion (``two_loop``); one iteration done

Under ``jax.vmap`` every member ticks at once, each at its own point and in its own phase, so no
member waits for another's line search: a block costs the largest number of evaluations any one
member needs, not the sum over iterations of the slowest search. A standalone run is the same
code with one member.

A run stops (``stop_reason``) when its iterations reach ``config.steps`` ("budget"), when a
line search finds no point below J or the next direction does not descend ("no_decrease":
float rounding has run out), or when a search uses all its evaluations without lowering J
("linesearch").
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jax.scipy.linalg import solve_triangular

from saejax.losses import scalar_terms
from saejax.optim import linesearch
from saejax.pytree import pytree_dataclass
from saejax.schema import SCALAR_TERMS

STOP_REASONS = ("running", "budget", "no_decrease", "linesearch")
RUNNING, BUDGET, NO_DECREASE, LINESEARCH = range(4)
# A trial whose J exceeds J(0) by at most this many float epsilons (relative) may still be
# accepted on its slope; see linesearch's approximate Wolfe points.
APPROX_WOLFE_ULPS = 10


@pytree_dataclass
class LbfgsState:
    """One member's L-BFGS, on the params flattened to one vector of length P.

    The memory is a ring of the last ``m`` pairs s = x_new - x, y = g_new - g, rows of ``S``
    and ``Y``; pair i is row i % m. Vectors are flat so that each tick's two-loop recursion and
    memory write touch one contiguous array per member.
    """

    S: jax.Array  # (m, P) past steps s (the params' dtype, or bfloat16: ``init_lbfgs``)
    Y: jax.Array  # (m, P) past gradient changes y, as S
    rho: jax.Array  # (m,) 1 / (y.s)
    SY: jax.Array  # (m, m) s_i . y_j of the stored rows (for the compact two-loop)
    YY: jax.Array  # (m, m) y_i . y_j
    stored: jax.Array  # int32: pairs stored so far (the newest is row (stored - 1) % m)
    h_diag: jax.Array  # the initial inverse Hessian scale y.s / y.y of the newest pair
    value: jax.Array  # J at params (valid once started)
    grad: jax.Array  # (P,) dJ/dparams at params
    terms: dict  # J's terms at params (SCALAR_TERMS), from the evaluation that gave J
    direction: jax.Array  # (P,) the search direction d
    search: linesearch.LineSearchState  # the line search along d
    best_grad: jax.Array  # (P,) the gradient at the search's best trial so far
    best_terms: dict  # the terms there
    started: jax.Array  # bool: value and grad hold J and g at params
    evaluations: jax.Array  # int32: evaluations of J and g so far
    stop: jax.Array  # int32: index into STOP_REASONS (0 = running)


# How a tick's passes over the memory S, Y are computed, by platform: as matrix products
# ("dot") or as elementwise products summed ("reduce", which XLA fuses into reductions, in full
# float32 where a GPU's matrix units round products to TF32). Measured (docs/gpu.md): on 2 CPU
# cores "reduce" took 5x as long (64 members at 64-25, 100 pairs: 68 ms against 13 ms). On one
# H200 the passes alone ran faster at 784-196 (64 members, 100 pairs: 10.3 ms against 16.2)
# but whole sweeps ran slower (the 1,024-member exercise 7.8 s against 5.6, 64 members at
# 784-196 3.3 s against 2.1), so "dot" everywhere until a platform measures otherwise.
MEMORY_PASSES = {"cpu": "dot", "gpu": "dot", "tpu": "dot"}


def _reduce() -> bool:
    return MEMORY_PASSES.get(jax.default_backend(), "dot") == "reduce"


def _dots(A, *vectors):
    """(m, k): the rows of A (m, P) dotted with each of the k vectors (P,), in the vectors'
    dtype (a bfloat16 memory is widened as it is read)."""
    A = A.astype(vectors[0].dtype)
    if _reduce():
        return jnp.stack([jnp.sum(A * v[None, :], axis=1) for v in vectors], axis=1)
    return A @ jnp.stack(vectors, axis=1)


def _combination(coef, A):
    """(P,): sum_i coef_i A_i over the rows of A (m, P), in coef's dtype."""
    A = A.astype(coef.dtype)
    return jnp.sum(coef[:, None] * A, axis=0) if _reduce() else coef @ A


def as_stored(v, memory_dtype):
    """``v`` as a memory of ``memory_dtype`` keeps it, back in v's dtype: a bfloat16 memory
    keeps each pair rounded, and every sum over the pairs (their Gram matrices, 1 / (y.s)) is
    taken of the rounded pair, so the two-loop recursion is exact for the pairs it keeps."""
    return v.astype(memory_dtype).astype(v.dtype)


def init_lbfgs(params, memory_size: int, memory_dtype=None) -> LbfgsState:
    """A fresh L-BFGS state; its first tick evaluates J and g at ``params``. The memory S, Y
    holds ``memory_size`` pairs in ``memory_dtype`` (default: the params' dtype, minFunc's
    algorithm; bfloat16 halves the bytes a float32 tick reads from it, see ``as_stored``)."""
    flat, _ = ravel_pytree(params)
    zero = jnp.zeros((), flat.dtype)
    terms = {k: zero for k in SCALAR_TERMS}
    vec = jnp.zeros_like(flat)
    memory_dtype = flat.dtype if memory_dtype is None else memory_dtype
    return LbfgsState(
        S=jnp.zeros((memory_size, flat.size), memory_dtype),
        Y=jnp.zeros((memory_size, flat.size), memory_dtype),
        rho=jnp.zeros((memory_size,), flat.dtype),
        SY=jnp.zeros((memory_size, memory_size), flat.dtype),
        YY=jnp.zeros((memory_size, memory_size), flat.dtype), stored=jnp.zeros((), jnp.int32),
        h_diag=jnp.ones((), flat.dtype), value=zero, grad=vec, terms=terms, direction=vec,
        search=linesearch.init(zero, -1.0, 0.0, 0.0).replace(ended=jnp.ones((), bool)),
        best_grad=vec, best_terms=terms, started=jnp.zeros((), bool),
        evaluations=jnp.zeros((), jnp.int32), stop=jnp.zeros((), jnp.int32),
    )


def two_loop(g, S, Y, rho, stored, h_diag, SY, YY, Sg=None, Yg=None):
    """H g by the L-BFGS two-loop recursion (Nocedal & Wright, Algorithm 7.4), in compact form.

    Pairs are visited newest first, then oldest first; rows not yet stored are skipped. H0 is
    h_diag I (minFunc's Hdiag = y.s / y.y of the newest pair).

    The recursion's 2m dot products and 2m vector updates each walk a whole row of S or Y.
    Here its scalars come from the small matrices ``SY[i, j] = s_i . y_j`` and
    ``YY[i, j] = y_i . y_j``, which the L-BFGS state keeps up to date as pairs are stored:
    the first loop's alphas solve one lower-triangular system, the second loop's betas one
    upper-triangular system (Byrd, Nocedal & Schnabel's compact representation, Math. Prog.
    63 (1994)), and the long vectors are touched by two matrix-vector products, S g and Y g
    (``Sg``, ``Yg`` when the caller already has them), and one combination
    H g = h g + S^T (alpha - beta) - h Y^T alpha. Same result, to rounding.
    """
    m = S.shape[0]
    order = (stored - 1 - jnp.arange(m)) % m  # newest first
    used = jnp.arange(m) < jnp.minimum(stored, m)
    both = used[:, None] & used[None, :]
    Sg = _dots(S, g)[:, 0] if Sg is None else Sg
    Yg = _dots(Y, g)[:, 0] if Yg is None else Yg
    # in newest-first order: M[i, j] = s_i . y_j, Q[i, j] = y_i . y_j, D = diag(1 / rho)
    M = jnp.where(both, SY[order][:, order], 0.0)
    Q = jnp.where(both, YY[order][:, order], 0.0)
    diag = jnp.where(used, 1.0 / jnp.where(used, rho[order], 1.0), 1.0)
    # first loop: alpha_i = rho_i s_i . (g - sum_{j newer} alpha_j y_j)
    lower = jnp.tril(M, -1) + jnp.diag(diag)
    alpha = solve_triangular(lower, jnp.where(used, Sg[order], 0.0), lower=True)
    # second loop: beta_i = rho_i y_i . (h q + sum_{j older} (alpha_j - beta_j) s_j),
    # with q = g - sum_j alpha_j y_j, so y_i . h q = h (y_i . g - sum_j alpha_j y_i . y_j)
    upper_off = jnp.triu(M.T, 1)
    b = h_diag * (jnp.where(used, Yg[order], 0.0) - Q @ alpha)
    beta = solve_triangular(upper_off + jnp.diag(diag), b + upper_off @ alpha, lower=False)
    ring = jnp.zeros_like(alpha)
    coef_s = ring.at[order].set(jnp.where(used, alpha - beta, 0.0))
    coef_y = ring.at[order].set(jnp.where(used, h_diag * alpha, 0.0))
    return h_diag * g + _combination(coef_s, S) - _combination(coef_y, Y)


def _where(cond, a, b):
    return jax.tree.map(lambda u, v: jnp.where(cond, u, v), a, b)


def _remember(opt: LbfgsState, s, y, ys, store, restart, g):
    """The memory with the pair (s, y) written to its ring slot when ``store`` (emptied on a
    ``restart``), and one pass over it: S g, Y g and the new pair's row and column of SY, YY.

    Returns ``(S, Y, rho, stored, h_diag, SY, YY, Sgy, Ygsy)`` with ``Sgy = S [g y]`` and
    ``Ygsy = Y [g s y]``.
    """
    k = opt.stored % opt.S.shape[0]
    S = opt.S.at[k].set(jnp.where(store, s.astype(opt.S.dtype), opt.S[k]))
    Y = opt.Y.at[k].set(jnp.where(store, y.astype(opt.Y.dtype), opt.Y[k]))
    rho = opt.rho.at[k].set(jnp.where(store, 1.0 / jnp.where(store, ys, 1.0), opt.rho[k]))
    stored = jnp.where(restart, 0, opt.stored + store).astype(opt.stored.dtype)
    h_diag = jnp.where(store, ys / jnp.dot(y, y), jnp.where(restart, 1.0, opt.h_diag))
    # One pass over the memory gives the direction's S g, Y g and the new pair's row and
    # column of SY and YY.
    Sgy = _dots(S, g, y)
    Ygsy = _dots(Y, g, s, y)
    SY = opt.SY.at[k, :].set(jnp.where(store, Ygsy[:, 1], opt.SY[k, :]))
    SY = SY.at[:, k].set(jnp.where(store, Sgy[:, 1], SY[:, k]))
    YY = opt.YY.at[k, :].set(jnp.where(store, Ygsy[:, 2], opt.YY[k, :]))
    YY = YY.at[:, k].set(jnp.where(store, Ygsy[:, 2], YY[:, k]))
    return S, Y, rho, stored, h_diag, SY, YY, Sgy, Ygsy


def make_lbfgs_tick(evaluate, max_iterations: int):
    """Returns ``tick(params, step, opt, batch, hyper) -> (params, step, opt, row, accepted)``.

    ``evaluate(params, batch, hyper) -> (terms, grads)`` is one evaluation of J (with its terms
    and rho_hat) and its gradient. ``step`` counts finished iterations. When ``accepted``, ``row`` holds the finished
    iteration's metrics: J, its terms and the gradient norm at the point the iteration started
    from, and the evaluations its line search used.

    As minFunc's lbfgs: with an empty memory the direction is -g with t0 = min(1, 1/sum|g|),
    later ones -H g with t0 = 1; a pair with y.s <= 1e-10 is not stored. Unlike minFunc, a
    search that finds no point below J empties the memory and restarts from -g once before the
    run stops: in float32 a plateau's decrease can hide below J's rounding.
    """
    def tick(params, step, opt: LbfgsState, batch, hyper, active=True):
        # active=False (a sweep member that is held): the memory S, Y is left untouched, so
        # the caller need only hold the small fields
        x, unravel = ravel_pytree(params)
        t = jnp.where(opt.started, opt.search.t, 0.0)
        terms, g = evaluate(unravel(x + t * opt.direction), batch, hyper)
        terms, g = scalar_terms(terms), ravel_pytree(g)[0]
        value = terms["loss"]

        # search: feed this trial; keep the gradient and terms of the best trial
        search = linesearch.step(opt.search, value, jnp.dot(g, opt.direction))
        best_grad = jnp.where(search.improved, g, opt.best_grad)
        best_terms = _where(search.improved, terms, opt.best_terms)
        moved = search.best_t > 0
        accepted = opt.started & search.ended
        s = search.best_t * opt.direction
        # A search that found no point below J restarts once from steepest descent with an
        # empty memory; if that search fails too, the run stops (float32 has run out of digits).
        restart = accepted & ~moved & (opt.stored > 0)
        # start (the first tick), accept or restart: the point the next iteration starts from
        begin = ~opt.started | (accepted & moved) | restart
        new_value = jnp.where(opt.started, search.best_f, value)
        new_grad = jnp.where(opt.started, best_grad, g)
        new_terms = _where(opt.started, best_terms, terms)

        # store the pair (s, y) when accepted and y.s > 1e-10 (of the pair as the memory
        # keeps it: rounded, in a bfloat16 memory)
        pair_s, pair_y = as_stored(s, opt.S.dtype), as_stored(new_grad - opt.grad, opt.S.dtype)
        ys = jnp.dot(pair_y, pair_s)
        store = accepted & moved & (ys > 1e-10) & active
        S, Y, rho, stored, h_diag, SY, YY, Sgy, Ygsy = _remember(opt, pair_s, pair_y, ys, store,
                                                                  restart, new_grad)
        hg = two_loop(new_grad, S, Y, rho, stored, h_diag, SY, YY, Sgy[:, 0], Ygsy[:, 0])
        d = -jnp.where(stored > 0, hg, new_grad)
        gtd = jnp.dot(new_grad, d)
        t0 = jnp.where(stored == 0, jnp.minimum(1.0, 1.0 / jnp.sum(jnp.abs(new_grad))), 1.0)
        # Points within a few roundings of J count as no increase (Hager-Zhang's approximate
        # Wolfe conditions): in float32, a plateau's true decrease hides below J's rounding.
        approx_tol = APPROX_WOLFE_ULPS * jnp.finfo(new_value.dtype).eps
        fresh = linesearch.init(new_value, gtd, t0, jnp.max(jnp.abs(d)), approx_tol)

        row = {**opt.terms, "grad_norm": jnp.linalg.norm(opt.grad),
               "linesearch_steps": search.evals}
        step = jnp.where(accepted, step + 1, step)
        stop = jnp.where(accepted & ~moved & ~restart,
                         jnp.where(search.evals >= linesearch.MAX_EVALS, LINESEARCH, NO_DECREASE),
                         RUNNING)
        stop = jnp.where(begin & ~(gtd < 0), NO_DECREASE, stop)
        stop = jnp.where((stop == RUNNING) & (step >= max_iterations), BUDGET, stop)
        stop = stop.astype(opt.stop.dtype)
        opt = opt.replace(
            S=S, Y=Y, rho=rho, SY=SY, YY=YY, stored=stored, h_diag=h_diag,
            value=jnp.where(begin, new_value, opt.value),
            grad=jnp.where(begin, new_grad, opt.grad),
            terms=_where(begin, new_terms, opt.terms),
            direction=jnp.where(begin, d, opt.direction),
            search=_where(begin, fresh, search),
            best_grad=best_grad, best_terms=best_terms,
            started=jnp.ones((), bool),
            evaluations=opt.evaluations + 1,
            stop=stop,
        )
        params = _where(accepted & moved, unravel(x + s), params)
        return params, step, opt, row, accepted

    return tick


class LbfgsDriver(NamedTuple):
    """One member's L-BFGS loop, named as optax names its line search's: ``init``, ``step``,
    ``cond``. The state is any training state with ``params``, ``step`` (finished iterations)
    and ``opt_state`` (an ``LbfgsState``) fields and a ``replace`` method.

    ``init(params, num_steps)``: empty metric rows, one per iteration of a chunk.
    ``step(state, rows, batch, hyper, end, num_steps, active=True)``: one tick (one evaluation
    of J and its gradient); when an iteration finishes, its metrics go to row
    ``step - (end - num_steps)``. With ``active`` False the L-BFGS memory is left as it was.
    ``cond(state, end)``: the member has not stopped and its iterations are below ``end``.

    A standalone run loops ``step`` while ``cond``; a sweep steps all its members at once.
    """

    init: callable
    step: callable
    cond: callable


def empty_row(params) -> dict:
    """A metric row of zeros: J's scalar terms, the gradient norm and the line search's
    evaluations, at the params' dtype."""
    zero = jnp.zeros((), jax.tree.leaves(params)[0].dtype)
    return {**{k: zero for k in SCALAR_TERMS}, "grad_norm": zero,
            "linesearch_steps": jnp.zeros((), jnp.int32)}


def make_driver(evaluate, max_iterations: int) -> LbfgsDriver:
    """The ``LbfgsDriver`` of ``make_lbfgs_tick(evaluate, max_iterations)``."""
    tick = make_lbfgs_tick(evaluate, max_iterations)

    def init(params, num_steps: int):
        rows = {k: jnp.zeros((num_steps,), v.dtype) for k, v in empty_row(params).items()}
        return {**rows, "valid": jnp.zeros((num_steps,), bool)}

    def step(state, rows, batch, hyper, end, num_steps: int, active=True):
        params, count, opt, row, accepted = tick(state.params, state.step, state.opt_state,
                                                 batch, hyper, active)
        i = jnp.clip(state.step - (end - num_steps), 0, num_steps - 1)
        row = {**row, "valid": jnp.ones((), bool)}
        rows = {k: v.at[i].set(jnp.where(accepted, row[k], v[i])) for k, v in rows.items()}
        return state.replace(params=params, step=count, opt_state=opt), rows

    def cond(state, end):
        return (state.opt_state.stop == RUNNING) & (state.step < end)

    return LbfgsDriver(init=init, step=step, cond=cond)
