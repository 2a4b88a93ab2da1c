"""J's terms and the statistics of trained params on the data: what a run's summary.json and a
sweep's rows report (``metrics.results`` turns them into numbers)."""

from __future__ import annotations

from functools import partial

import jax

from saejax import architectures, losses, metrics


@partial(jax.jit, static_argnames=("config",))
def final_stats(params, x, hyper, config):
    """``(terms, stats)`` of params on the data x, for the network of ``config`` (a
    ``TrainConfig``; pass its ``program()``, which keeps the compiled cache small); jitted, and
    vmapped over a sweep's members.

    The sigmoid network: ``losses.compute_terms`` and ``metrics.activation_stats``. The family:
    ``architectures.terms`` (without the auxiliary loss, which needs the training's dead
    latents) and ``architectures.stats`` (the codes inference computes).
    """
    if config.arch == "sigmoid":
        return (losses.compute_terms(params, x, hyper, config.penalty, config.decoder,
                                     config.tied),
                metrics.activation_stats(params, x, hyper.rho, config.decoder, config.tied))
    return (architectures.terms(params, x, hyper, config.arch, architectures.options_of(config)),
            architectures.stats(params, x, hyper, config.arch))
