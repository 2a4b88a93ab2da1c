"""The sparse autoencoder family beside UFLDL's sigmoid network: one module each, every one
with its activation, its loss and its hand-written gradient, on the shared network of
``common``.

    arch       f (the codes)                                   sparsity term (knob)
    relu-l1    relu(pre)                                       l1 (1/m) sum f_kj ||W2_j||
    topk       relu(pre), the k largest per example            aux_coeff * aux loss (k)
    batchtopk  relu(pre), the k m largest per batch of m       aux_coeff * aux loss (k)
    jumprelu   pre H(pre - theta), learned theta               l0 (1/m) sum H(pre - theta)

with pre = (x - b2) W1^T + b1, x_hat = f W2^T + b2 and J = (1/m) sum_k ||x_hat_k - x_k||^2 +
(lam/2)(||W1||^2 + ||W2||^2) + sparsity. The sigmoid network itself lives in ``model``,
``losses`` and ``grads``; ``schema.ARCHS`` names all five and ``schema.KNOBS`` their knobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import jax.numpy as jnp

from saejax.architectures import batchtopk, common, jumprelu, relu_l1, topk
from saejax.metrics import code_stats
from saejax.schema import ARCHS, EXTRA_PARAMS

MODULES: dict[str, ModuleType] = {"relu-l1": relu_l1, "topk": topk, "batchtopk": batchtopk,
                                  "jumprelu": jumprelu}
if ("sigmoid", *MODULES) != ARCHS:
    raise ImportError(f"saejax.architectures {list(MODULES)} and schema.ARCHS {ARCHS} must list "
                      "the same architectures (sigmoid first) in the same order.")
# The architectures whose decoder columns are held at unit norm after every update.
UNIT_NORM = ("topk", "batchtopk", "jumprelu")


@dataclass(frozen=True)
class Options:
    """The static settings of a family member's loss (``TrainConfig`` fields of these names)."""

    bandwidth: float = 1e-3  # jumprelu: the pseudo-derivative's kernel width eps
    aux_k: int = 256  # topk, batchtopk: dead latents the auxiliary loss may use per example
    aux_coeff: float = 1 / 32  # topk, batchtopk: the auxiliary loss's weight


def options_of(config) -> Options:
    """The ``Options`` of a ``TrainConfig``."""
    return Options(config.bandwidth, config.aux_k, config.aux_coeff)


def module(arch: str) -> ModuleType:
    """The module of a family architecture; ValueError naming the choices otherwise."""
    try:
        return MODULES[arch]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r} for the family; choose one of "
                         f"{list(MODULES)} (sigmoid is saejax.loss's network).") from None


def param_keys(arch: str) -> tuple:
    """The keys of an architecture's params."""
    return ("W1", "b1", "W2", "b2", *EXTRA_PARAMS.get(arch, {}))


def init_params(key, n_visible: int, n_hidden: int, arch: str, x_mean_N=None,
                dtype=jnp.float32) -> dict:
    """``common.init_params`` plus the architecture's own: jumprelu's log thresholds at
    log(0.001), batchtopk's inference threshold at 0 (set by the first step)."""
    module(arch)
    params = common.init_params(key, n_visible, n_hidden, x_mean_N, dtype)
    if arch == "jumprelu":
        params["log_threshold"] = jnp.full((n_hidden,), jumprelu.INITIAL_LOG_THRESHOLD, dtype)
    if arch == "batchtopk":
        params["threshold"] = jnp.zeros((), dtype)
    return params


def terms(params, x_MxN, hyper, arch: str, options: Options = Options(), dead_H=None) -> dict:
    """J, its terms, rho_hat (each latent's firing frequency), mean_l0 and fvu; traceable.

    ``dead_H`` (bool, (H,)): the latents the auxiliary loss of topk and batchtopk may use.
    """
    return module(arch).terms(params, x_MxN, hyper, options, dead_H)


def terms_and_grad(params, x_MxN, hyper, arch: str, options: Options = Options(), dead_H=None):
    """``(terms, grads)``: ``terms`` and the hand-written dJ/dparams, a dict like params."""
    return module(arch).terms_and_grad(params, x_MxN, hyper, options, dead_H)


def loss(params, x_MxN, hyper, arch: str, options: Options = Options(), dead_H=None):
    """The scalar J of a family member (differentiate it with ``jax.grad``)."""
    return terms(params, x_MxN, hyper, arch, options, dead_H)["loss"]


def encode(params, x_MxN, hyper, arch: str):
    """The codes f (M, H) as inference computes them (batchtopk: its learned threshold)."""
    if arch == "topk":
        return topk.encode(params, x_MxN, hyper)
    return module(arch).encode(params, x_MxN)


def sparsity_sum(params, f_MxH, hyper, arch: str):
    """m times the sparsity term, from codes f as inference computes them: relu-l1's
    l1 sum f_kj ||W2_j||, jumprelu's l0 #{f_kj > 0} (f > 0 exactly where pre > theta > 0), and 0
    for topk and batchtopk, whose auxiliary loss needs the training's dead latents."""
    if arch == "relu-l1":
        return hyper.l1 * jnp.sum(f_MxH * jnp.linalg.norm(params["W2"], axis=0)[None, :])
    if arch == "jumprelu":
        return hyper.l0 * jnp.sum((f_MxH > 0).astype(f_MxH.dtype))
    return jnp.zeros((), f_MxH.dtype)


def stats(params, x_MxN, hyper, arch: str) -> dict:
    """A member's statistics (``metrics.code_stats``) with the codes inference computes:
    rho_hat is each latent's firing frequency over x, and a latent is dead when it fires on
    none of x (the window: the examples given)."""
    f_MxH = encode(params, x_MxN, hyper, arch)
    rho_hat_H = jnp.mean((f_MxH > 0).astype(f_MxH.dtype), axis=0)
    return code_stats(x_MxN, f_MxH, common.decode(params, f_MxH), rho_hat_H, rho_hat_H == 0)


def after_update(params, terms_, arch: str, first) -> dict:
    """What follows an optimizer update: decoder columns back to unit norm (``UNIT_NORM``),
    batchtopk's threshold moved (``batchtopk.after_update``; ``first`` on the first step)."""
    if arch == "batchtopk":
        params = batchtopk.after_update(params, terms_, first)
    return common.project(params) if arch in UNIT_NORM else params


__all__ = ["MODULES", "Options", "after_update", "encode", "init_params", "loss", "module",
           "options_of", "param_keys", "sparsity_sum", "stats", "terms", "terms_and_grad"]
