"""The sparsity penalties: each one's P(rho_hat) beside its hand-written dP/drho_hat.

J's sparsity term is beta * sum_j P(rho_hat_j), rho_hat_j = (1/m) sum_k a2_j(x_k) (CS294A
notes, section 3). Backpropagation needs only dP/drho_hat_j; ``grads.py`` chains it through
rho_hat into W1 and b1. Each entry of ``REGISTRY`` pairs the two:

    kl       P = rho log(rho/rho_hat) + (1-rho) log((1-rho)/(1-rho_hat))
             dP/drho_hat = -rho/rho_hat + (1-rho)/(1-rho_hat)
    squared  P = (rho_hat - rho)^2                 dP/drho_hat = 2 (rho_hat - rho)
    l1       P = rho_hat  (mean L1 of a2 > 0)       dP/drho_hat = 1

Adding a penalty means adding one ``Penalty`` entry here, and its name to ``schema.PENALTIES``
(the list the config and the command line offer; this module refuses to import if they differ).
Every gradient check and test then covers it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax.numpy as jnp

from saejax import schema

# rho_hat is clipped to [RHO_HAT_EPS, 1 - RHO_HAT_EPS] inside the KL penalty. A float32 sigmoid
# saturates to exactly 0 or 1, and log(0) would turn J and its gradient into -inf/NaN. Inside the
# interval the clip is the identity, so J and its gradient are exact there; outside it the penalty
# is constant and its gradient is zero (the exact derivative of the clipped function).
# 1e-6 is representable on both sides in float32 (1 - 1e-6 != 1).
RHO_HAT_EPS = 1e-6


@dataclass(frozen=True)
class Penalty:
    """One sparsity penalty: P(rho, rho_hat_H) and dP/drho_hat, both per unit, shape (H,)."""

    name: str
    equation: str  # P, as printed in docs and figures
    value: Callable  # (rho, rho_hat_H) -> P per unit
    derivative: Callable  # (rho, rho_hat_H) -> dP/drho_hat per unit


def kl_divergence(rho, rho_hat_H):
    """KL(rho || rho_hat_j) between Bernoulli(rho) and Bernoulli(rho_hat_j), per unit, shape (H,).

    rho_hat is clipped to [RHO_HAT_EPS, 1 - RHO_HAT_EPS] (see the module constant). Evaluated
    as rho log1p(-u/rho_hat) + (1-rho) log1p(u/(1-rho_hat)) with u = rho_hat - rho, which is
    the same function: near its minimum the two terms nearly cancel, and the quotients'
    rounding in log(rho/rho_hat) would otherwise leave an error of about one float epsilon per
    unit (in float32, 1e-6 of J at beta = 10: more than the decrease of a late L-BFGS step).
    The two terms' rounding can still leave a unit at about -1e-9 where the divergence is
    about +1e-12; each unit is clamped at 0, which only moves it toward the true value (a KL
    divergence is never negative), so the sparsity term is never negative in float32.
    """
    r_H = jnp.clip(rho_hat_H, RHO_HAT_EPS, 1.0 - RHO_HAT_EPS)
    u_H = r_H - rho
    kl_H = rho * jnp.log1p(-u_H / r_H) + (1.0 - rho) * jnp.log1p(u_H / (1.0 - r_H))
    return jnp.maximum(kl_H, 0.0)


def kl_derivative(rho, rho_hat_H):
    """-rho/rho_hat + (1-rho)/(1-rho_hat) inside [RHO_HAT_EPS, 1 - RHO_HAT_EPS], zero outside.

    Evaluated as (rho_hat - rho) / (rho_hat (1 - rho_hat)), the same quotient over one
    denominator, which does not cancel near rho_hat = rho. Zero outside the interval is the
    exact derivative of ``kl_divergence``, which is constant there. The quotient is taken of the
    clipped rho_hat, so that no unit divides by zero (a saturated float32 unit has rho_hat 0 or
    1): ``where`` discards it outside, but an inf there would still trip ``jax_debug_infs``.
    """
    inside_H = (rho_hat_H > RHO_HAT_EPS) & (rho_hat_H < 1.0 - RHO_HAT_EPS)
    r_H = jnp.clip(rho_hat_H, RHO_HAT_EPS, 1.0 - RHO_HAT_EPS)
    return jnp.where(inside_H, (r_H - rho) / (r_H * (1.0 - r_H)), 0.0)


def squared_penalty(rho, rho_hat_H):
    """(rho_hat_j - rho)^2 per unit, shape (H,)."""
    return (rho_hat_H - rho) ** 2


def squared_derivative(rho, rho_hat_H):
    """2 (rho_hat_j - rho) per unit."""
    return 2.0 * (rho_hat_H - rho)


def l1_penalty(rho, rho_hat_H):
    """rho_hat_j per unit, shape (H,): the mean L1 norm of the code (rho is unused)."""
    del rho
    return rho_hat_H


def l1_derivative(rho, rho_hat_H):
    """1 per unit."""
    del rho
    return jnp.ones_like(rho_hat_H)


REGISTRY = {
    p.name: p
    for p in (
        Penalty("kl", "rho log(rho/rho_hat) + (1-rho) log((1-rho)/(1-rho_hat))",
                kl_divergence, kl_derivative),
        Penalty("squared", "(rho_hat - rho)^2", squared_penalty, squared_derivative),
        Penalty("l1", "rho_hat", l1_penalty, l1_derivative),
    )
}
if tuple(REGISTRY) != schema.PENALTIES:
    raise ImportError(f"penalties.REGISTRY {tuple(REGISTRY)} and schema.PENALTIES "
                      f"{schema.PENALTIES} must list the same penalties in the same order.")


def get(penalty: str) -> Penalty:
    """The registry entry of a penalty name; ValueError naming the choices for an unknown one."""
    try:
        return REGISTRY[penalty]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown penalty {penalty!r}; choose one of {list(schema.PENALTIES)}."
        ) from None


def penalty_value(penalty: str, rho, rho_hat_H):
    """P(rho_hat_j) for each unit, shape (H,), of the named penalty."""
    return get(penalty).value(rho, rho_hat_H)


def penalty_derivative(penalty: str, rho, rho_hat_H):
    """dP/drho_hat_j for each unit, shape (H,), of the named penalty.

    For ``kl`` this is -rho/rho_hat + (1-rho)/(1-rho_hat), evaluated inside the clip interval
    [RHO_HAT_EPS, 1 - RHO_HAT_EPS] and zero outside it, matching ``kl_divergence``.
    """
    return get(penalty).derivative(rho, rho_hat_H)
