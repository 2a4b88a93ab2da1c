"""J's terms and the statistics of trained params on the data: what a run's summary.json and a
sweep's rows report (``metrics.results`` turns them into numbers)."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from saejax import architectures, losses, metrics
from saejax.architectures import common
from saejax.model import encode, forward


@partial(jax.jit, static_argnames=("config",))
def final_stats(params, x, hyper, config):
    """``(terms, stats)`` of params on the data x, for the network of ``config`` (a
    ``TrainConfig``; pass its ``program()``, which keeps the compiled cache small); jitted, and
    vmapped over a sweep's members.

    The sigmoid network: ``losses.compute_terms`` and ``metrics.activation_stats``. The family:
    ``family_final``, block by block.
    """
    if config.arch == "sigmoid":
        return (losses.compute_terms(params, x, hyper, config.penalty, config.decoder,
                                     config.tied),
                metrics.activation_stats(params, x, hyper.rho, config.decoder, config.tied))
    return family_final(params, x, hyper, config.arch)


def codes(params, x, config):
    """The codes of trained params for examples x, as inference computes them, for any
    architecture: the sigmoid network's a2, or a family member's f (``architectures.encode``:
    topk's k largest, batchtopk's learned threshold, jumprelu's thresholds).

    Args:
      params: the trained params (``saejax.load``'s).
      x: examples (M, N), prepared as the training data were (``normalize.apply`` with the
        recorded normalization, for a run trained with ``normalize``).
      config: the model's ``TrainConfig`` (``saejax.load``'s): its ``arch`` and knobs.

    Returns:
      The codes, (M, H).
    """
    if config.arch == "sigmoid":
        return encode(params, x).a2
    return architectures.encode(params, x, losses.hyper_of(config), config.arch)


def reconstruction_of(params, x, config, hyper=None):
    """``(codes, x_hat)`` of trained params for examples x, as inference computes them: the
    sigmoid network's (a2, a3), or a family member's (f, its linear decoding). ``config`` needs
    only ``arch``, ``decoder`` and ``tied``; ``hyper`` (default ``losses.hyper_of(config)``)
    carries the knobs, traced when given as arrays."""
    if config.arch == "sigmoid":
        out = forward(params, x, config.decoder, config.tied)
        return out.a2, out.a3
    hyper = losses.hyper_of(config) if hyper is None else hyper
    f = architectures.encode(params, x, hyper, config.arch)
    return f, common.decode(params, f)


# Examples per block of a family member's final evaluation.
FINAL_BLOCK = 2048


def family_final(params, x_MxN, hyper, arch: str, block: int = FINAL_BLOCK):
    """A family member's ``(terms, stats)`` on x, with the codes inference computes, summed over
    blocks of at most ``block`` examples.

    The sums are those of ``architectures.terms`` and ``metrics.code_stats`` (equal to them,
    which the tests check), taken block by block: a sweep evaluates every member at once, and
    64 members' (M, H) codes on 100,000 examples would need 6.5 GB, one block's 130 MB.
    batchtopk's codes are its inference codes (its threshold), and the auxiliary loss of topk
    and batchtopk is left out: it needs the training's dead latents.
    """
    m, n = x_MxN.shape
    nb = -(-m // block)
    block = -(-m // nb)  # blocks of equal size
    pad = nb * block - m
    xb = jnp.pad(x_MxN, ((0, pad), (0, 0))).reshape(nb, block, n)
    wb = (jnp.arange(nb * block) < m).reshape(nb, block).astype(x_MxN.dtype)

    def one_block(acc, blk):
        x_b, w_b = blk
        f = architectures.encode(params, x_b, hyper, arch) * w_b[:, None]
        x_hat = common.decode(params, f)
        norm_x = jnp.linalg.norm(x_b, axis=1)
        nonzero = (norm_x > 0) & (w_b > 0)
        ratio = jnp.linalg.norm(x_hat, axis=1) / jnp.where(nonzero, norm_x, 1.0)
        sse, sparse, fired, ratios, count = acc
        return (sse + jnp.sum(jnp.sum((x_hat - x_b) ** 2, axis=1) * w_b),
                sparse + architectures.sparsity_sum(params, f, hyper, arch),
                fired + jnp.sum((f > 0).astype(f.dtype), axis=0),
                ratios + jnp.sum(jnp.where(nonzero, ratio, 0.0)),
                count + jnp.sum(nonzero.astype(x_b.dtype))), None

    zero = jnp.zeros((), x_MxN.dtype)
    acc0 = (zero, zero, jnp.zeros(params["W1"].shape[0], x_MxN.dtype), zero, zero)
    (sse, sparse, fired_H, ratios, count), _ = jax.lax.scan(one_block, acc0, (xb, wb))
    fvu = sse / metrics.total_variance(x_MxN)
    rho_hat_H = fired_H / m
    terms = {"reconstruction": sse / m,
             "weight_decay": common.weight_decay_from(params, hyper.lam),
             "sparsity": sparse / m}
    terms["loss"] = terms["reconstruction"] + terms["weight_decay"] + terms["sparsity"]
    terms.update(rho_hat=rho_hat_H, mean_l0=jnp.sum(fired_H) / m, fvu=fvu)
    stats = {"rho_hat": rho_hat_H, "rho_hat_mean": jnp.mean(rho_hat_H),
             "rho_hat_min": jnp.min(rho_hat_H), "rho_hat_max": jnp.max(rho_hat_H),
             "dead_fraction": jnp.mean(rho_hat_H == 0), "explained_variance": 1.0 - fvu,
             "mean_l0": terms["mean_l0"], "fvu": fvu,
             "shrinkage": ratios / jnp.maximum(count, 1)}
    return terms, stats


def recovery_of(params, config, truth, normalization: dict | None = None) -> dict:
    """``metrics.recovery`` of trained params against a known dictionary: the decoder columns
    (W1^T when tied) against the true directions, and the codes of the held-out examples
    against their true codes.

    Args:
      params: one model's params (host or device arrays).
      config: its ``TrainConfig``.
      truth: the data's ground truth (``saejax.data.synthetic.SyntheticSet`` or anything with
        ``dictionary`` (F, N), ``heldout_x`` (M', N) and ``heldout_codes`` (M', F)).
      normalization: the record of the normalization the training data went through
        (``data.normalize.fit``): the held-out examples go through it too, and each true
        direction is carried into the normalized space (standardize divides it by each input's
        std; ufldl removes its mean, the linear part of removing each example's mean).
    """
    from saejax.data import normalize

    record = normalization or {"kind": "none"}
    dictionary = np.asarray(truth.dictionary, np.float64)
    affine = normalize.per_feature(record, dictionary.shape[1])
    if affine is not None:
        dictionary = dictionary / affine[1][None, :]
    elif record["kind"] == "ufldl":
        dictionary = dictionary - dictionary.mean(axis=1, keepdims=True)
    heldout = normalize.apply(record, np.asarray(truth.heldout_x))
    decoder = params["W1"].T if config.tied else params["W2"]
    codes = _codes(params, jnp.asarray(heldout, jnp.dtype(config.dtype)), losses.hyper_of(config),
                   config.program())
    return metrics.recovery(np.asarray(decoder), dictionary, np.asarray(codes),
                            np.asarray(truth.heldout_codes))


@partial(jax.jit, static_argnames=("config",))
def _codes(params, x, hyper, config):
    """``codes`` with the member's knobs traced (one compilation serves a sweep's k values)."""
    if config.arch == "sigmoid":
        return encode(params, x).a2
    return architectures.encode(params, x, hyper, config.arch)
