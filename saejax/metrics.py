"""Summary statistics of a trained autoencoder, each defined once: rho_hat, dead units, L0, the
fraction of variance unexplained, shrinkage, the results a run or sweep member reports, and how
much of each colour feature is spatial structure.

    mean_l0    (1/m) sum_k #{j : f_kj > 0}                    mean active latents per example
    fvu        sum ||x_hat - x||^2 / sum ||x - mean(x)||^2     (the mean over examples, per input)
    shrinkage  (1/m') sum_k ||x_hat_k|| / ||x_k||              over the m' examples with x_k != 0
    dead       sigmoid: rho_hat_j < 0.1 rho; the family: f_kj = 0 for every example k of the
               window (the data the statistics are computed on)

and, on data made from a known dictionary (``saejax.data.synthetic``), how well a model found
its features (``recovery``):

    matching   one-to-one (Hungarian) pairs of true features i and latents j that maximize the
               summed |cos(D_i, W2[:, j])|, over min(F, H) pairs
    mcc        the mean |cos| of the matched pairs (SAELens's mean_correlation_coefficient)
    recovered  the fraction of the F true features whose matched |cos| exceeds 0.9
    f1         per true feature, the F1 of its matched latent's firing (f_kj > 0) against its
               own (c_ki > 0) over held-out examples; the mean over the F true features (an
               unmatched feature scores 0)
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


def loss_recovered(clean: float, spliced: float, zero: float) -> float:
    """The share of the loss that zero-ablating a site costs which splicing the autoencoder's
    reconstruction in wins back: (zero - spliced) / (zero - clean), SAELens's ce_loss_score. 1
    is as good as the clean model, 0 as bad as zeros; NaN when zeroing the site costs nothing."""
    return (zero - spliced) / (zero - clean) if zero != clean else np.nan


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


# A true feature counts as recovered when its matched latent's decoder column is this close.
RECOVERED_COSINE = 0.9


def match_features(decoder_NxH, dictionary_FxN):
    """The one-to-one matching of true features to latents that maximizes the summed absolute
    cosine between each feature's direction D_i and its latent's decoder column W2[:, j]
    (``scipy.optimize.linear_sum_assignment``, the Hungarian method).

    Returns:
      ``(feature_P, latent_P, cos_P)``: the min(F, H) matched pairs, by feature index, and
      their |cos|. A zero column has cosine 0 with every feature.
    """
    from scipy.optimize import linear_sum_assignment

    d = np.asarray(dictionary_FxN, dtype=np.float64)
    w = np.asarray(decoder_NxH, dtype=np.float64)
    d = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-300)
    w = w / np.where((n := np.linalg.norm(w, axis=0)) > 0, n, 1.0)  # n: (H,), per column
    cos_FxH = np.abs(d @ w)
    feature_P, latent_P = linear_sum_assignment(cos_FxH, maximize=True)
    return feature_P, latent_P, cos_FxH[feature_P, latent_P]


def firing_f1(fires_MxP, true_MxP):
    """Per column, the F1 score of predicted firing against true firing (booleans over the
    same examples): 2 TP / (2 TP + FP + FN), 0 when neither ever fires."""
    fires, true = np.asarray(fires_MxP, bool), np.asarray(true_MxP, bool)
    tp = np.sum(fires & true, axis=0)
    wrong = np.sum(fires ^ true, axis=0)
    return np.divide(2.0 * tp, 2.0 * tp + wrong, out=np.zeros(tp.shape), where=tp + wrong > 0)


def recovery(decoder_NxH, dictionary_FxN, codes_MxH=None, true_codes_MxF=None) -> dict:
    """How well a model recovered a known dictionary (``schema.RECOVERY``).

    Args:
      decoder_NxH: the model's decoder columns W2 (N, H) (the sigmoid network's, too).
      dictionary_FxN: the true feature directions, one per row.
      codes_MxH, true_codes_MxF: the model's codes and the true codes of the same held-out
        examples; without them ``f1`` is NaN.

    Returns:
      ``{"mcc", "recovered_fraction", "f1"}`` as floats (see the module docstring).
    """
    n_features = np.shape(dictionary_FxN)[0]
    feature_P, latent_P, cos_P = match_features(decoder_NxH, dictionary_FxN)
    out = {"mcc": float(np.mean(cos_P)),
           "recovered_fraction": float(np.sum(cos_P > RECOVERED_COSINE) / n_features),
           "f1": float("nan")}
    if codes_MxH is not None and true_codes_MxF is not None:
        codes, true = np.asarray(codes_MxH), np.asarray(true_codes_MxF)
        f1_P = firing_f1(codes[:, latent_P] > 0, true[:, feature_P] > 0)
        out["f1"] = float(np.sum(f1_P) / n_features)
    return out


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


def localization(W, side: int, channels: int = 1, window: int = 4) -> np.ndarray:
    """Per filter (a row, flattened row-major over (side, side, channels)), the share of its
    energy inside its strongest window x window block of pixels, all channels together: near 1
    for a localized edge, about (window / side)^2 and a little more for a spread-out one."""
    f = (np.asarray(W, np.float64) ** 2).reshape(len(W), side, side, channels).sum(axis=3)
    blocks = [f[:, r:r + window, c:c + window].sum(axis=(1, 2))
              for r in range(side - window + 1) for c in range(side - window + 1)]
    return np.max(blocks, axis=0) / f.sum(axis=(1, 2))


def kurtosis(W, x_MxN) -> np.ndarray:
    """Per filter, the excess kurtosis E[a^4] / E[a^2]^2 - 3 of its responses a = W x over the
    patches (each response centred): 0 for a Gaussian, large for a sparse response."""
    a = np.asarray(x_MxN, np.float64) @ np.asarray(W, np.float64).T
    a = a - a.mean(axis=0)
    return np.mean(a**4, axis=0) / np.mean(a**2, axis=0) ** 2 - 3.0
