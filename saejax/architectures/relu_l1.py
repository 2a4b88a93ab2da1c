"""ReLU encoder with an L1 penalty on the codes weighted by the decoder columns' norms: the
formulation SAELens calls "standard" (Conerly et al. 2024, Anthropic's "Circuits Updates, April
2024"), which makes the penalty blind to trading a code's scale against its column's.

    f = relu(pre)
    sparsity = l1 * (1/m) sum_k sum_j f_kj ||W2[:, j]||

Hand-written gradient (e = x_hat - x, n_j = ||W2[:, j]||):

    g = 2 e / m                                          dJ/dx_hat
    dJ/df = g W2 + l1 n / m                              active = 1[pre > 0]
    dJ/dW2 += l1 (sum_k f_kj / m) W2[:, j] / n_j         the norm's own derivative
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from saejax.architectures import common


def encode(params, x_MxN):
    """f = relu(pre), (M, H)."""
    return jax.nn.relu(common.pre_activation(params, x_MxN))


def _norms(params):
    return jnp.linalg.norm(params["W2"], axis=0)


def terms(params, x_MxN, hyper, options, dead_H=None) -> dict:
    """J's terms (``common.terms_of``); traceable."""
    del options, dead_H
    f = encode(params, x_MxN)
    sparsity = hyper.l1 * jnp.sum(f * _norms(params)[None, :]) / x_MxN.shape[0]
    return common.terms_of(params, x_MxN, f, common.decode(params, f), hyper.lam, sparsity)


def terms_and_grad(params, x_MxN, hyper, options, dead_H=None):
    """J's terms and the hand-written dJ/dparams (module docstring)."""
    del options, dead_H
    m = x_MxN.shape[0]
    pre = common.pre_activation(params, x_MxN)
    active = (pre > 0).astype(pre.dtype)
    f = pre * active
    x_hat = common.decode(params, f)
    n_H = _norms(params)
    sparsity = hyper.l1 * jnp.sum(f * n_H[None, :]) / m
    g = 2.0 * (x_hat - x_MxN) / m
    grads = common.backprop(params, x_MxN, [(f, active, g, (hyper.l1 * n_H / m)[None, :])],
                            lam=hyper.lam)
    unit_NxH = params["W2"] / jnp.where(n_H > 0, n_H, 1.0)[None, :]
    grads["W2"] = grads["W2"] + unit_NxH * (hyper.l1 * jnp.sum(f, axis=0) / m)[None, :]
    return common.terms_of(params, x_MxN, f, x_hat, hyper.lam, sparsity), grads
