"""The family's shared network: initialization, the pre-activation, the linear decoder, the
terms every member reports, and the backpropagation through the decoder and the encoder.

Shapes: M examples, N inputs (d_in), H latents. ``params`` reuses the sigmoid network's names,
so filters, export and load treat every architecture alike:

    W1 (H, N) encoder    b1 (H,) encoder bias    W2 (N, H) decoder    b2 (N,) decoder bias

    pre_MxH = (x - b2) W1^T + b1           the decoder bias is subtracted before encoding
    f_MxH   = sigma(pre)                   each architecture's activation (its own module)
    x_hat   = f W2^T + b2                  the linear decoder

    reconstruction = (1/m) sum_k ||x_hat_k - x_k||^2       (summed over N, mean over examples,
                                                             the family's convention)
    weight_decay   = (lam/2) (||W1||_F^2 + ||W2||_F^2)     (lam = 0 in the usual recipes)

Conventions, each from the papers that introduced them:
- decoder columns of unit norm at initialization (Bricken et al. 2023, "Towards
  Monosemanticity", and Gao et al. 2024, "Scaling and evaluating sparse autoencoders", A.1),
  and kept there after every update for topk, batchtopk and jumprelu (``project``);
- the encoder initialized as the decoder's transpose (Gao et al. 2024, A.1);
- the decoder bias initialized at the data mean (Bricken et al. 2023 use the geometric median;
  SAELens's ``b_dec_init_method="mean"``), and subtracted from the input before encoding.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from saejax.metrics import fvu, mean_l0


def init_params(key, n_visible: int, n_hidden: int, x_mean_N, dtype=jnp.float32) -> dict:
    """Unit-norm random decoder columns, the encoder as their transpose, b2 at the data mean.

    Args:
      key: a ``jax.random`` key.
      n_visible, n_hidden: N and H.
      x_mean_N: the training data's mean (N,), or None for zeros.
      dtype: floating dtype of every leaf.
    """
    w = jax.random.normal(key, (n_visible, n_hidden), dtype)
    W2_NxH = w / jnp.linalg.norm(w, axis=0, keepdims=True)
    b2 = jnp.zeros((n_visible,), dtype) if x_mean_N is None else jnp.asarray(x_mean_N, dtype)
    return {"W1": W2_NxH.T, "b1": jnp.zeros((n_hidden,), dtype), "W2": W2_NxH, "b2": b2}


def pre_activation(params, x_MxN):
    """pre = (x - b2) W1^T + b1, (M, H), computed as x W1^T + (b1 - W1 b2): the examples x then
    enter a matmul unchanged, so when a sweep's members share a batch, vmap makes x W1^T one
    wide product for all of them instead of a product per member."""
    return x_MxN @ params["W1"].T + (params["b1"] - params["W1"] @ params["b2"])[None, :]


def decode(params, f_MxH):
    """x_hat = f W2^T + b2, (M, N)."""
    return f_MxH @ params["W2"].T + params["b2"][None, :]


def weight_decay_from(params, lam):
    """(lam/2) (||W1||_F^2 + ||W2||_F^2); biases and thresholds are not decayed."""
    return 0.5 * lam * (jnp.sum(params["W1"] ** 2) + jnp.sum(params["W2"] ** 2))


def terms_of(params, x_MxN, f_MxH, x_hat_MxN, lam, sparsity) -> dict:
    """J's terms, J, and the activity of the codes: ``rho_hat`` is each latent's firing
    frequency (the fraction of examples where f > 0), ``mean_l0`` the mean number of active
    latents per example, ``fvu`` the fraction of variance unexplained."""
    m = x_MxN.shape[0]
    terms = {"reconstruction": jnp.sum((x_hat_MxN - x_MxN) ** 2) / m,
             "weight_decay": weight_decay_from(params, lam),
             "sparsity": sparsity}
    terms["loss"] = terms["reconstruction"] + terms["weight_decay"] + terms["sparsity"]
    terms["rho_hat"] = jnp.mean((f_MxH > 0).astype(x_MxN.dtype), axis=0)
    terms["mean_l0"] = mean_l0(f_MxH)
    terms["fvu"] = fvu(x_MxN, x_hat_MxN)
    return terms


def backprop(params, x_MxN, paths, lam=0.0) -> dict:
    """dJ/dparams through the decoder and the encoder, given each decoder path's output gradient.

    Args:
      params: the family's params (extra keys, such as thresholds, get no gradient here).
      x_MxN: the examples.
      paths: ``(f_MxH, active_MxH, g_MxN, df_extra)`` per use of the decoder weights: the codes
        f, df/dpre (1 where a latent passes its pre-activation through, else 0), the gradient of
        J with respect to that path's output f W2^T, and any further dJ/df (a penalty's, or
        None). The first path is the reconstruction x_hat = f W2^T + b2, whose g also reaches b2;
        topk's auxiliary loss adds a second, f_aux W2^T.
      lam: the weight decay.

    Returns:
      ``{"W1", "b1", "W2", "b2"}``:
        dW2 = sum_paths g^T f + lam W2          db2 = sum_k g_k (first path) - (sum_k dpre_k) W1
        dpre = sum_paths (g W2 + df_extra) * active
        dW1 = dpre^T (x - b2) + lam W1          db1 = sum_k dpre_k
    """
    W2_NxH = params["W2"]
    gW2 = jnp.zeros_like(W2_NxH)
    dpre = jnp.zeros((x_MxN.shape[0], W2_NxH.shape[1]), x_MxN.dtype)
    for f, active, g, df_extra in paths:
        gW2 = gW2 + g.T @ f
        df = g @ W2_NxH if df_extra is None else g @ W2_NxH + df_extra
        dpre = dpre + df * active
    sum_dpre_H = jnp.sum(dpre, axis=0)
    # dpre^T (x - b2) as dpre^T x - (sum_k dpre_k) b2^T: x unchanged, as in pre_activation
    return {"W1": dpre.T @ x_MxN - jnp.outer(sum_dpre_H, params["b2"]) + lam * params["W1"],
            "b1": sum_dpre_H,
            "W2": gW2 + lam * W2_NxH,
            "b2": jnp.sum(paths[0][2], axis=0) - sum_dpre_H @ params["W1"]}


def project(params) -> dict:
    """The params with every decoder column W2[:, j] scaled to unit norm (a column of zeros
    stays zero)."""
    norm_1xH = jnp.linalg.norm(params["W2"], axis=0, keepdims=True)
    # a zero column is divided by 1 (no 0/0 NaN, which jax_debug_nans would flag)
    return {**params, "W2": params["W2"] / jnp.where(norm_1xH > 0, norm_1xH, 1.0)}


def kth_largest(values, k):
    """The k-th largest entry along the last axis (k traced, 1 <= k <= the axis's length),
    exactly, without a sort.

    A radix select: the floats map to unsigned integers of the same order (the sign bit
    flipped for positive values, every bit for negative ones), and the largest key t with at
    least k entries >= t is built bit by bit from the top, one compare-and-count pass per bit
    (32 for float32, 64 for float64). k stays a traced leaf, so one compiled sweep covers every
    k (``lax.top_k`` needs k static); on 64 members of 256 latents this is 5.5x faster than a
    sort and 4.7x faster than four ``lax.top_k`` programs (``experiments/bench/topk.py``).
    """
    width = jnp.finfo(values.dtype).bits
    utype = {32: jnp.uint32, 64: jnp.uint64}[width]
    top = utype(1) << utype(width - 1)
    bits = jax.lax.bitcast_convert_type(values, utype)
    keys = jnp.where(bits >= top, ~bits, bits | top)
    k = jnp.asarray(k)

    def body(i, t):
        candidate = t | (utype(1) << (width - 1 - i).astype(utype))
        count = jnp.sum(keys >= candidate[..., None], axis=-1)
        return jnp.where(count >= k, candidate, t)

    # four passes to an iteration: the whole loop unrolled compiles 5x slower and runs no faster
    t = jax.lax.fori_loop(0, width, body, jnp.zeros(values.shape[:-1], utype), unroll=4)
    return jax.lax.bitcast_convert_type(jnp.where(t >= top, t & ~top, ~t), values.dtype)
