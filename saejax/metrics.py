"""Summary statistics of a trained autoencoder, each defined once: rho_hat, dead units, L0, the
fraction of variance unexplained, shrinkage, the results a run or sweep member reports, and how
much of each colour feature is spatial structure.

    mean_l0    (1/m) sum_k #{j : f_kj > 0}                    mean active latents per example
    fvu        sum ||x_hat - x||^2 / sum ||x - mean(x)||^2     (the mean over examples, per input)
    shrinkage  (1/m') sum_k ||x_hat_k|| / ||x_k||              over the m' examples with x_k != 0
    dead       sigmoid: rho_hat_j < 0.1 rho; the family: f_kj = 0 for every example k of the
               window (the data the statistics are computed on)
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from saejax.model import forward, mean_activation
from saejax.schema import RESULTS

# A hidden unit is dead when its mean activation falls below this fraction of the target rho.
DEAD_FRACTION_OF_RHO = 0.1


def is_dead(rho_hat_H, rho):
    """The sigmoid network's dead units, (H,) booleans: rho_hat_j < 0.1 * rho."""
    return rho_hat_H < DEAD_FRACTION_OF_RHO * rho


def dead_fraction(rho_hat_H, rho):
    """Fraction of hidden units with rho_hat_j < 0.1 * rho (a scalar)."""
    return jnp.mean(is_dead(rho_hat_H, rho))


def total_variance(x_MxN):
    """sum ||x_k - mean(x)||^2 over the examples: FVU's denominator."""
    return jnp.sum((x_MxN - jnp.mean(x_MxN, axis=0, keepdims=True)) ** 2)


def fvu(x_MxN, x_hat_MxN):
    """The fraction of variance unexplained: sum ||x_hat - x||^2 / sum ||x - mean(x)||^2, the mean
    taken over the examples for each input (0: perfect; 1: no better than the mean)."""
    return jnp.sum((x_hat_MxN - x_MxN) ** 2) / total_variance(x_MxN)


def explained_variance(x_MxN, x_hat_MxN):
    """1 - FVU (1 is a perfect reconstruction)."""
    return 1.0 - fvu(x_MxN, x_hat_MxN)


def mean_l0(f_MxH):
    """The mean number of active (nonzero) latents per example. Every sigmoid unit is active:
    for UFLDL's network it is H."""
    return jnp.sum((f_MxH > 0).astype(f_MxH.dtype)) / f_MxH.shape[0]


def shrinkage(x_MxN, x_hat_MxN):
    """The mean ratio ||x_hat_k|| / ||x_k|| over the examples with x_k != 0 (below 1: the codes
    shrink the reconstruction, the L1 penalty's known bias)."""
    norm_x = jnp.linalg.norm(x_MxN, axis=1)
    nonzero = norm_x > 0
    # an example with x_k = 0 is left out, and divides by 1 rather than 0 (no NaN to trip
    # jax_debug_nans, even where it is discarded)
    ratio = jnp.linalg.norm(x_hat_MxN, axis=1) / jnp.where(nonzero, norm_x, 1.0)
    return jnp.sum(jnp.where(nonzero, ratio, 0.0)) / jnp.maximum(jnp.sum(nonzero), 1)


def code_stats(x_MxN, f_MxH, x_hat_MxN, rho_hat_H, dead_H) -> dict:
    """The statistics of codes f and reconstructions x_hat of x (``schema.STATS``, and rho_hat)."""
    return {
        "rho_hat": rho_hat_H,
        "rho_hat_mean": jnp.mean(rho_hat_H),
        "rho_hat_min": jnp.min(rho_hat_H),
        "rho_hat_max": jnp.max(rho_hat_H),
        "dead_fraction": jnp.mean(dead_H),
        "explained_variance": explained_variance(x_MxN, x_hat_MxN),
        "mean_l0": mean_l0(f_MxH),
        "fvu": fvu(x_MxN, x_hat_MxN),
        "shrinkage": shrinkage(x_MxN, x_hat_MxN),
    }


def activation_stats(params, x_MxN, rho, decoder: str = "sigmoid", tied: bool = False) -> dict:
    """The sigmoid network's statistics: rho_hat (H,), its mean, min and max, the dead fraction
    (rho_hat_j < 0.1 rho), explained variance, L0, FVU and shrinkage."""
    a2_MxH, a3_MxN = forward(params, x_MxN, decoder, tied)
    rho_hat_H = mean_activation(a2_MxH)
    return code_stats(x_MxN, a2_MxH, a3_MxN, rho_hat_H, is_dead(rho_hat_H, rho))


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
    f = f.reshape(f.shape[0], f.shape[1] // channels, channels)
    flat = np.sum(f.mean(axis=1) ** 2, axis=1) * f.shape[1]  # energy of the per-channel means
    total = np.sum(f ** 2, axis=(1, 2))
    # flat <= total; a flat feature's rounding can leave 1 - flat/total at -2e-16, hence the 0
    # floor. An all-zero feature is never divided: its share is 1 - 1 = 0.
    share = 1.0 - np.divide(flat, total, out=np.ones_like(total), where=total > 0)
    return np.maximum(share, 0.0)
