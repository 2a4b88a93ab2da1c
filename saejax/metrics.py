"""Summary statistics of a trained autoencoder: rho_hat, dead units, explained variance."""

from __future__ import annotations

import jax.numpy as jnp

from saejax.model import forward, mean_activation

# A hidden unit is dead when its mean activation falls below this fraction of the target rho.
DEAD_FRACTION_OF_RHO = 0.1


def dead_fraction(rho_hat_H, rho):
    """Fraction of hidden units with rho_hat_j < 0.1 * rho (a scalar)."""
    return jnp.mean(rho_hat_H < DEAD_FRACTION_OF_RHO * rho)


def explained_variance(x_MxN, a3_MxN):
    """1 - ||a3 - x||^2 / ||x - mean(x)||^2 over all entries (1 is a perfect reconstruction)."""
    residual = jnp.sum((a3_MxN - x_MxN) ** 2)
    total = jnp.sum((x_MxN - jnp.mean(x_MxN, axis=0, keepdims=True)) ** 2)
    return 1.0 - residual / total


def activation_stats(params, x_MxN, rho, decoder: str = "sigmoid", tied: bool = False) -> dict:
    """rho_hat (H,), its mean, min and max, the dead fraction and the explained variance."""
    a2_MxH, a3_MxN = forward(params, x_MxN, decoder, tied)
    rho_hat_H = mean_activation(a2_MxH)
    return {
        "rho_hat": rho_hat_H,
        "rho_hat_mean": jnp.mean(rho_hat_H),
        "rho_hat_min": jnp.min(rho_hat_H),
        "rho_hat_max": jnp.max(rho_hat_H),
        "dead_fraction": dead_fraction(rho_hat_H, rho),
        "explained_variance": explained_variance(x_MxN, a3_MxN),
    }
