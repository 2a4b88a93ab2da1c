"""The L-BFGS tests' references: Nocedal & Wright's two-loop recursion in NumPy, and saejax's
L-BFGS ticked by hand on a plain function until it stops."""

import jax
import jax.numpy as jnp

from saejax import optim


def np_two_loop(g, pairs):
    """H g for pairs (s, y), oldest first, H0 = (s.y / y.y) I of the newest pair."""
    q, alphas = g.copy(), []
    for s, y in reversed(pairs):
        a = (s @ q) / (y @ s)
        alphas.append(a)
        q = q - a * y
    s, y = pairs[-1]
    r = (s @ y) / (y @ y) * q
    for (s, y), a in zip(pairs, reversed(alphas)):
        r = r + (a - (y @ r) / (y @ s)) * s
    return r



def terms_of(value):
    """The terms an evaluate returns, for a J that is all reconstruction (rho_hat: one zero)."""
    z = jnp.zeros_like(value)
    return {"loss": value, "reconstruction": value, "weight_decay": z, "sparsity": z,
            "rho_hat": jnp.zeros(1, value.dtype), "mean_l0": z, "fvu": z}


def run(f, x0, max_iterations, memory=10, ticks=2000, dtype=jnp.float64, memory_dtype=None):
    """Ticks of optim's L-BFGS on f(params["x"]) until it stops; returns params and state."""

    def evaluate(params, batch, hyper):
        value, g = jax.value_and_grad(f)(params["x"])
        terms = terms_of(value)
        return terms, {"x": g}

    tick = jax.jit(optim.make_lbfgs_tick(evaluate, max_iterations))
    params = {"x": jnp.asarray(x0, dtype)}
    opt = optim.init_lbfgs(params, memory, memory_dtype)
    step = jnp.zeros((), jnp.int32)
    rows = []
    for _ in range(ticks):
        params, step, opt, row, accepted = tick(params, step, opt, None, None)
        if accepted:
            rows.append(jax.device_get(row))
        if int(opt.stop):
            break
    return params, step, opt, rows


def rosen4(x):
    """A four-variable Rosenbrock valley with a quartic tail: curved, not quadratic."""
    return ((1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2 + (x[2] - 0.5) ** 2
            + 0.1 * (x[3] + x[2]) ** 4)
