"""The training state: everything that changes while a run trains, as one pytree."""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from saejax import architectures, optim
from saejax.config import TrainConfig
from saejax.model import init_params
from saejax.pytree import pytree_dataclass


@pytree_dataclass
class TrainState:
    """Everything that changes during training, as a pytree (checkpointed whole)."""

    step: jax.Array  # int32 scalar: optimizer iterations done
    params: dict  # {"W1", "b1", "W2", "b2"} (and an architecture's own, such as thresholds)
    opt_state: Any  # optax state (holds the learning rate), or optim.LbfgsState for L-BFGS
    key: jax.Array  # uint32 key data; minibatch t is drawn with fold_in(key, t)
    # (H,) int32: training examples seen since each latent last fired (capped at the dead
    # window); topk's and batchtopk's auxiliary loss uses the latents that reached the window.
    since_fired: jax.Array


def init_state(config: TrainConfig, n_visible: int, seed=None, lr=None,
               x_mean=None) -> TrainState:
    """Initialized params, a fresh optimizer state and the minibatch key.

    Args:
      config: the run's settings.
      n_visible: input width N.
      seed: seeds the params and the minibatches (default ``config.seed``); may be traced, so a
        sweep vmaps this function over seeds.
      lr: learning rate stored in the optimizer state (default ``config.lr``); may be traced.
      x_mean: the training data's mean (N,): the family's decoder bias starts there
        (``architectures.init_params``); UFLDL's initialization does not use it.

    One compiled program (rather than a dozen small eager ones) keeps a fresh run's start fast.
    """
    seed = config.seed if seed is None else seed
    lr = config.lr if lr is None else lr
    dtype = jnp.dtype(config.dtype)
    x_mean = jnp.zeros((n_visible,), dtype) if x_mean is None else jnp.asarray(x_mean, dtype)
    return _init_state(config.program(), n_visible, jnp.asarray(seed, jnp.int32),
                       jnp.asarray(lr), x_mean)


def init_network(key, config: TrainConfig, n_visible: int, x_mean=None) -> dict:
    """The params of ``config.arch`` at initialization: UFLDL's for the sigmoid network
    (``model.init_params``), the family's conventions otherwise."""
    dtype = jnp.dtype(config.dtype)
    if config.arch == "sigmoid":
        return init_params(key, n_visible, config.n_hidden, dtype, tied=config.tied)
    return architectures.init_params(key, n_visible, config.n_hidden, config.arch, x_mean,
                                     dtype)


@partial(jax.jit, static_argnums=(0, 1))
def _init_state(config: TrainConfig, n_visible: int, seed, lr, x_mean) -> TrainState:
    k_params, k_batches = jax.random.split(jax.random.key(seed))
    params = init_network(k_params, config, n_visible, x_mean)
    if config.optimizer == "lbfgs":
        memory_dtype = None if config.lbfgs_memory_dtype == "same" else config.lbfgs_memory_dtype
        opt_state = optim.init_lbfgs(params, config.lbfgs_memory, memory_dtype)
    else:
        opt_state = optim.make_optimizer(config).init(params)
    state = TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=opt_state,
                       key=jax.random.key_data(k_batches),
                       since_fired=jnp.zeros((config.n_hidden,), jnp.int32))
    return set_learning_rate(state, lr)


def set_learning_rate(state: TrainState, lr: float) -> TrainState:
    """The state with its injected learning rate replaced (no-op for L-BFGS)."""
    hp = getattr(state.opt_state, "hyperparams", None)
    if hp is None or "learning_rate" not in hp:
        return state
    new_hp = dict(hp, learning_rate=jnp.asarray(lr, hp["learning_rate"].dtype))
    return state.replace(opt_state=state.opt_state._replace(hyperparams=new_hp))


def stopped(state: TrainState) -> jax.Array:
    """Whether the run has stopped before its budget (L-BFGS only; minibatch runs never do)."""
    stop = getattr(state.opt_state, "stop", None)
    return jnp.zeros((), bool) if stop is None else stop != optim.RUNNING


def resumed(state: TrainState, config: TrainConfig) -> TrainState:
    """A restored state, ready to train on under ``config``: its learning rate set, and an
    L-BFGS run that used up its budget running again when the budget has grown."""
    state = set_learning_rate(state, config.lr)
    stop = getattr(state.opt_state, "stop", None)
    if stop is not None and int(stop) == optim.BUDGET and int(state.step) < config.steps:
        running = jnp.asarray(optim.RUNNING, stop.dtype)
        state = state.replace(opt_state=state.opt_state.replace(stop=running))
    return state


def count_arrays(state: TrainState) -> tuple:
    """``(step, evaluations, stop)`` of a state: the arrays ``run_counts`` reads (L-BFGS's two
    counters are None for a minibatch optimizer). A sweep gathers just these across hosts."""
    opt = state.opt_state
    return state.step, getattr(opt, "evaluations", None), getattr(opt, "stop", None)


def run_counts(state, config: TrainConfig) -> dict:
    """Iterations, evaluations of J and its gradient, and why the run stopped.

    ``state`` is a TrainState or its ``count_arrays``; a sweep's stacked states give lists, one
    value per member.
    """
    step, evals, stop = jax.device_get(count_arrays(state) if isinstance(state, TrainState)
                                       else state)
    step = np.asarray(step)
    if config.optimizer == "lbfgs":
        evals, stop = np.asarray(evals), np.asarray(stop)
    else:  # one evaluation per step; a minibatch run stops only at its budget
        evals = step
        stop = np.where(step >= config.steps, optim.BUDGET, optim.RUNNING)
    reasons = np.vectorize(optim.STOP_REASONS.__getitem__, otypes=[object])(stop)
    return {"iterations": step.tolist(), "evaluations": evals.tolist(),
            "stop_reason": reasons.tolist()}
