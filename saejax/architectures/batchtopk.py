"""BatchTopK (Bussmann et al. 2024, "BatchTopK Sparse Autoencoders"): a batch of m examples
keeps its k * m largest pre-activations over all latents together, so that an example may use
more or fewer than k; inference, where there is no batch, keeps what exceeds a threshold.

    training:   f = relu(pre) * 1[pre >= the (k m)-th largest of the batch's pre]
    inference:  f = relu(pre) * 1[pre > threshold]
    threshold:  an exponential moving average (weight 0.999, dictionary_learning's) of the
                smallest pre-activation each training batch keeps; params["threshold"], a
                scalar, updated after every step (``after_update``) and never by the gradient.

The auxiliary loss on dead latents and the hand-written gradient are topk's (``topk.py``): only
the selection differs.
"""

from __future__ import annotations

import jax.numpy as jnp

from saejax.architectures import common, topk

THRESHOLD_DECAY = 0.999


def selection(params, x_MxN, hyper):
    """``(pre, kept)``: 1 where a pre-activation is among the batch's k m largest, and positive."""
    pre = common.pre_activation(params, x_MxN)
    m = pre.shape[0]
    threshold = common.kth_largest(pre.reshape(-1), jnp.asarray(hyper.k).astype(jnp.int32) * m)
    return pre, ((pre >= threshold) & (pre > 0)).astype(pre.dtype)


def encode(params, x_MxN):
    """Inference: f = relu(pre) where pre > params["threshold"], (M, H)."""
    pre = common.pre_activation(params, x_MxN)
    return jnp.where(pre > jnp.maximum(params["threshold"], 0.0), pre, 0.0)


def smallest_kept(pre, kept):
    """The smallest pre-activation the batch kept (+inf if none)."""
    return jnp.min(jnp.where(kept > 0, pre, jnp.inf))


def after_update(params, terms_, first):
    """The threshold's moving average moved toward this batch's smallest kept pre-activation
    (set to it on the first step)."""
    t, new = params["threshold"], terms_["smallest_kept"].astype(params["threshold"].dtype)
    new = jnp.where(jnp.isfinite(new), new, t)
    return {**params, "threshold": jnp.where(
        first, new, THRESHOLD_DECAY * t + (1.0 - THRESHOLD_DECAY) * new)}


def terms(params, x_MxN, hyper, options, dead_H=None) -> dict:
    """J's terms (training form); traceable."""
    pre, kept = selection(params, x_MxN, hyper)
    out = topk.terms_given(params, x_MxN, hyper, options, dead_H, pre, kept)
    out["smallest_kept"] = smallest_kept(pre, kept)
    return out


def terms_and_grad(params, x_MxN, hyper, options, dead_H=None):
    """J's terms and the hand-written dJ/dparams (topk's, on this selection)."""
    pre, kept = selection(params, x_MxN, hyper)
    out, grads = topk.grad_given(params, x_MxN, hyper, options, dead_H, pre, kept)
    out["smallest_kept"] = smallest_kept(pre, kept)
    grads["threshold"] = jnp.zeros_like(params["threshold"])
    return out, grads
