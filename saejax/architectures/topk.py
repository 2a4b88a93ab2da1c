"""TopK (Gao et al. 2024, "Scaling and evaluating sparse autoencoders"): each example keeps its
k largest pre-activations (then a ReLU), and an auxiliary loss lets dead latents reconstruct
what the live ones miss.

    f = relu(pre) * 1[pre_kj >= the k-th largest of pre_k]

    aux (Gao et al., section A.2): the top aux_k pre-activations among the dead latents D (no
    firing for ``dead_window`` examples), f_aux, reconstruct the residual e = x - x_hat:
        sparsity = aux_coeff * (1/m) sum_k ||e_k - f_aux_k W2^T||^2   while any latent is dead,
                   0                                                 while none is

The residual is not held fixed here (sparsify and dictionary_learning detach it): the term is
then an ordinary function of the params, whose hand-written gradient finite differences can
check; at aux_coeff = 1/32 the difference is the term's small pull on x_hat.

Hand-written gradient (r = e - e_hat):

    g_main = 2 (x_hat - x) / m - 2 c r / m               dJ/dx_hat (c: aux_coeff, or 0 while
    g_aux  = -2 c r / m                                  dJ/de_hat     no latent is dead)
    active = 1[kept], active_aux = 1[chosen for aux]     df/dpre (the selection is piecewise
                                                         constant: no gradient through it)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from saejax.architectures import common


def selection(params, x_MxN, hyper):
    """``(pre, kept)``: the pre-activations and 1 where a latent is among its example's top k
    and positive."""
    pre = common.pre_activation(params, x_MxN)
    threshold_M = common.kth_largest(pre, hyper.k)
    return pre, ((pre >= threshold_M[:, None]) & (pre > 0)).astype(pre.dtype)


def encode(params, x_MxN, hyper):
    """f = the top-k of relu(pre) per example, (M, H)."""
    pre, kept = selection(params, x_MxN, hyper)
    return pre * kept


def aux_selection(pre, dead_H, aux_k: int):
    """1 where a latent is dead, positive, and among the example's top ``aux_k`` dead ones."""
    masked = jnp.where(dead_H[None, :], pre, -jnp.inf)
    threshold_M = jax.lax.top_k(masked, min(aux_k, pre.shape[1]))[0][:, -1]
    return (dead_H[None, :] & (pre >= threshold_M[:, None]) & (pre > 0)).astype(pre.dtype)


def uses_aux(options, dead_H) -> bool:
    """Whether the auxiliary loss is part of J at all (a dead mask, and a positive weight)."""
    return dead_H is not None and options.aux_coeff > 0


def aux_weight(options, dead_H, dtype):
    """aux_coeff while some latent is dead, else 0 (traced: the dead set changes in training)."""
    return options.aux_coeff * jnp.any(dead_H).astype(dtype)


def terms_given(params, x_MxN, hyper, options, dead_H, pre, kept) -> dict:
    """J's terms from a selection (topk's or batchtopk's)."""
    f = pre * kept
    x_hat = common.decode(params, f)
    sparsity = jnp.zeros((), x_MxN.dtype)
    if uses_aux(options, dead_H):
        f_aux = pre * aux_selection(pre, dead_H, options.aux_k)
        r = (x_MxN - x_hat) - f_aux @ params["W2"].T
        sparsity = aux_weight(options, dead_H, r.dtype) * jnp.sum(r ** 2) / x_MxN.shape[0]
    return common.terms_of(params, x_MxN, f, x_hat, hyper.lam, sparsity)


def grad_given(params, x_MxN, hyper, options, dead_H, pre, kept):
    """J's terms and the hand-written dJ/dparams from a selection (topk's or batchtopk's)."""
    m = x_MxN.shape[0]
    f = pre * kept
    x_hat = common.decode(params, f)
    g = 2.0 * (x_hat - x_MxN) / m
    paths = [(f, kept, g, None)]
    sparsity = jnp.zeros((), x_MxN.dtype)
    if uses_aux(options, dead_H):
        active_aux = aux_selection(pre, dead_H, options.aux_k)
        f_aux = pre * active_aux
        r = (x_MxN - x_hat) - f_aux @ params["W2"].T
        weight = aux_weight(options, dead_H, r.dtype)
        sparsity = weight * jnp.sum(r ** 2) / m
        g_aux = -2.0 * weight * r / m
        paths = [(f, kept, g + g_aux, None), (f_aux, active_aux, g_aux, None)]
    grads = common.backprop(params, x_MxN, paths, lam=hyper.lam)
    return common.terms_of(params, x_MxN, f, x_hat, hyper.lam, sparsity), grads


def terms(params, x_MxN, hyper, options, dead_H=None) -> dict:
    """J's terms; traceable. ``dead_H`` (bool, (H,)) turns the auxiliary loss on."""
    pre, kept = selection(params, x_MxN, hyper)
    return terms_given(params, x_MxN, hyper, options, dead_H, pre, kept)


def terms_and_grad(params, x_MxN, hyper, options, dead_H=None):
    """J's terms and the hand-written dJ/dparams (module docstring)."""
    pre, kept = selection(params, x_MxN, hyper)
    return grad_given(params, x_MxN, hyper, options, dead_H, pre, kept)
