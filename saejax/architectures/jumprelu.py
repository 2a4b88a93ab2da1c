"""JumpReLU (Rajamanoharan et al. 2024, "Jumping Ahead: Improving Reconstruction Fidelity with
JumpReLU Sparse Autoencoders"): a learned threshold per latent, and an L0 penalty trained
through straight-through pseudo-derivatives.

    theta_j = exp(params["log_threshold"][j])
    f = JumpReLU(pre, theta) = pre * H(pre - theta)          H: the Heaviside step
    sparsity = l0 * (1/m) sum_k sum_j H(pre_kj - theta_j)    l0 * the mean L0

H has no useful derivative, so the paper defines pseudo-derivatives with a kernel K of
bandwidth eps (the rectangle, K(u) = 1[|u| < 1/2]), used in place of the true ones (which are 0
almost everywhere):

    dJumpReLU/dpre = H(pre - theta)          dJumpReLU/dtheta = -(theta / eps) K((pre - theta)/eps)
    dH/dpre = 0                              dH/dtheta        = -(1 / eps) K((pre - theta)/eps)

``jumprelu`` and ``step`` are ``jax.custom_vjp`` functions with exactly these backward rules,
so ``jax.grad`` of ``terms`` is the paper's gradient, and the hand-written ``terms_and_grad``
is checked against it. Finite differences see the true derivative instead: they agree with the
pseudo-derivative only where no pre-activation lies within eps/2 of its threshold, where the
kernel is 0 (the tests choose such points).

Hand-written gradient (g = 2 (x_hat - x) / m, df = g W2, K_kj = K((pre_kj - theta_j)/eps)):

    dpre = df * H(pre - theta)
    dJ/dtheta_j = -(theta_j / eps) sum_k df_kj K_kj - (l0 / (m eps)) sum_k K_kj
    dJ/dlog_threshold = theta * dJ/dtheta
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from saejax.architectures import common

# The thresholds start at 0.001 (SAELens's and Gemma Scope's initial threshold).
INITIAL_THRESHOLD = 1e-3
INITIAL_LOG_THRESHOLD = math.log(INITIAL_THRESHOLD)


def _kernel(pre, theta, bandwidth):
    """K((pre - theta) / eps), the rectangle: 1 where |pre - theta| < eps / 2."""
    return (jnp.abs(pre - theta) < 0.5 * bandwidth).astype(pre.dtype)


def _jumprelu(pre_MxH, theta_H, bandwidth: float):
    """``jumprelu(pre_MxH, theta_H, bandwidth)``: pre * H(pre - theta), with the paper's
    pseudo-derivative for theta (H,): the rectangle kernel of width ``bandwidth``."""
    return pre_MxH * (pre_MxH > theta_H[None, :]).astype(pre_MxH.dtype)


def _jumprelu_fwd(pre, theta, bandwidth):
    return jumprelu(pre, theta, bandwidth), (pre, theta)


def _jumprelu_bwd(bandwidth, residual, g):
    pre, theta_H = residual
    theta = theta_H[None, :]
    d_pre = g * (pre > theta).astype(pre.dtype)
    d_theta = jnp.sum(g * -(theta / bandwidth) * _kernel(pre, theta, bandwidth), axis=0)
    return d_pre, d_theta


# custom_vjp applied by call rather than as a decorator, here and for step, so that the
# mutation run (make mutants) reaches the function bodies.
jumprelu = jax.custom_vjp(_jumprelu, nondiff_argnums=(2,))
"""``jumprelu(pre_MxH, theta_H, bandwidth)``: pre * H(pre - theta), with the paper's
pseudo-derivative for theta (H,): the rectangle kernel of width ``bandwidth``."""
jumprelu.defvjp(_jumprelu_fwd, _jumprelu_bwd)


def _step(pre_MxH, theta_H, bandwidth: float):
    """``step(pre_MxH, theta_H, bandwidth)``: H(pre - theta), with the paper's pseudo-derivative for
    theta (H,) (none for pre)."""
    return (pre_MxH > theta_H[None, :]).astype(pre_MxH.dtype)


def _step_fwd(pre, theta, bandwidth):
    return step(pre, theta, bandwidth), (pre, theta)


def _step_bwd(bandwidth, residual, g):
    pre, theta_H = residual
    kernel = _kernel(pre, theta_H[None, :], bandwidth)
    return jnp.zeros_like(pre), jnp.sum(g * -(1.0 / bandwidth) * kernel, axis=0)


step = jax.custom_vjp(_step, nondiff_argnums=(2,))
"""``step(pre_MxH, theta_H, bandwidth)``: H(pre - theta), with the paper's pseudo-derivative for
theta (H,) (none for pre)."""
step.defvjp(_step_fwd, _step_bwd)


def encode(params, x_MxN):
    """f = pre * H(pre - theta), (M, H)."""
    pre = common.pre_activation(params, x_MxN)
    return jnp.where(pre > jnp.exp(params["log_threshold"])[None, :], pre, 0.0)


def terms(params, x_MxN, hyper, options, dead_H=None) -> dict:
    """J's terms; traceable, and differentiable by ``jax.grad`` through the custom VJPs."""
    del dead_H
    pre = common.pre_activation(params, x_MxN)
    theta_H = jnp.exp(params["log_threshold"])
    f = jumprelu(pre, theta_H, options.bandwidth)
    sparsity = hyper.l0 * jnp.sum(step(pre, theta_H, options.bandwidth)) / x_MxN.shape[0]
    return common.terms_of(params, x_MxN, f, common.decode(params, f), hyper.lam, sparsity)


def terms_and_grad(params, x_MxN, hyper, options, dead_H=None):
    """J's terms and the hand-written dJ/dparams (module docstring)."""
    del dead_H
    m, eps = x_MxN.shape[0], options.bandwidth
    pre = common.pre_activation(params, x_MxN)
    theta_H = jnp.exp(params["log_threshold"])
    active = (pre > theta_H[None, :]).astype(pre.dtype)
    f = pre * active
    x_hat = common.decode(params, f)
    sparsity = hyper.l0 * jnp.sum(active) / m
    g = 2.0 * (x_hat - x_MxN) / m
    grads = common.backprop(params, x_MxN, [(f, active, g, None)], lam=hyper.lam)
    kernel = _kernel(pre, theta_H[None, :], eps)
    df = g @ params["W2"]
    d_theta_H = (-(theta_H / eps) * jnp.sum(df * kernel, axis=0)
                 - hyper.l0 / (m * eps) * jnp.sum(kernel, axis=0))
    grads["log_threshold"] = theta_H * d_theta_H
    return common.terms_of(params, x_MxN, f, x_hat, hyper.lam, sparsity), grads
