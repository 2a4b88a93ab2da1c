"""Summary statistics of a trained autoencoder: rho_hat, dead units, explained variance, the
results a run or sweep member reports, and how much of each colour feature is spatial
structure."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from saejax import losses
from saejax.model import forward, mean_activation
from saejax.schema import RESULTS

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


@partial(jax.jit, static_argnames=("penalty", "decoder", "tied"))
def final_stats(params, x, hyper, penalty, decoder="sigmoid", tied=False):
    """J's terms and the activation statistics of trained params on the data (jitted); vmap it
    over a sweep's members."""
    return (losses.compute_terms(params, x, hyper, penalty, decoder, tied),
            activation_stats(params, x, hyper.rho, decoder, tied))


def results(terms: dict, stats: dict) -> dict:
    """The ``schema.RESULTS`` of one run or member as floats, from ``final_stats``'s pair."""
    values = {"final_loss": terms["loss"], **terms, **stats}
    return {k: float(values[k]) for k in RESULTS}


def spatial_energy_share(features_HxN, channels: int = 3) -> np.ndarray:
    """Per feature, the share of its energy that is spatial structure (edges, blobs) rather
    than one constant value per channel (a flat colour square).

    Each feature (a row, flattened row-major over (rows, cols, channels), as ``viz.save_filters``
    reads it) splits into its per-channel means, broadcast over the patch, and the rest; the
    share is ||rest||^2 / ||feature||^2: 0 for a flat colour square, 1 for a pattern whose every
    channel averages to 0 (a grey edge). A feature of all zeros gets 0.

    Args:
      features_HxN: (H, N) features in pixel space, N = rows * cols * channels.
      channels: colour channels interleaved in each row (3 for RGB, 1 for grayscale).

    Returns:
      (H,) float64 shares in [0, 1].
    """
    f = np.asarray(features_HxN, dtype=np.float64)
    if f.ndim != 2 or f.shape[1] % channels:
        raise ValueError(f"features must be (H, N) with N a multiple of {channels} channels, "
                         f"got shape {f.shape}.")
    f = f.reshape(f.shape[0], -1, channels)
    flat = np.sum(f.mean(axis=1) ** 2, axis=1) * f.shape[1]  # energy of the per-channel means
    total = np.sum(f ** 2, axis=(1, 2))
    return np.where(total > 0, 1.0 - flat / np.where(total > 0, total, 1.0), 0.0).clip(0.0, 1.0)
