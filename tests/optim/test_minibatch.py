"""optim.minibatch: the learning-rate schedules against their closed forms, after real sgd
steps, and a learning rate that is a value in the state, not part of the program."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from saejax.config import TrainConfig
from saejax.optim.minibatch import make_optimizer

G = jnp.asarray([1.0, -2.0, 0.5])  # a constant gradient: sgd moves by -lr_t G at step t


def sgd_walk(config, num_steps, lr=None, jit=False):
    """x after ``num_steps`` updates from 0 with gradient G, and the optimizer state; ``jit``
    traces init and update, as training does (the learning rate then a traced value)."""
    opt = make_optimizer(config)
    init, update = (jax.jit(opt.init), jax.jit(opt.update)) if jit else (opt.init, opt.update)
    x = jnp.zeros(3)
    state = init(x)
    if lr is not None:
        state.hyperparams["learning_rate"] = jnp.asarray(lr)
    for _ in range(num_steps):
        updates, state = update(G, state, x)
        x = optax.apply_updates(x, updates)
    return np.asarray(x), state


@pytest.mark.parametrize("t", [1, 4, 10])
def test_cosine_schedule_is_the_closed_form(t):
    lr, total = 0.3, 10
    config = TrainConfig(optimizer="sgd", schedule="cosine", lr=lr, steps=total, dtype="float64")
    x, _ = sgd_walk(config, t)
    rates = [lr * 0.5 * (1 + math.cos(math.pi * s / total)) for s in range(t)]
    np.testing.assert_allclose(x, -sum(rates) * np.asarray(G), rtol=1e-12)


@pytest.mark.parametrize("jit", [False, True])
def test_warmup_cosine_starts_at_zero_and_peaks_after_a_twentieth(jit):
    lr, total = 0.2, 40  # warmup: 40 // 20 = 2 steps, 0 -> lr, then cosine over the other 38
    config = TrainConfig(optimizer="sgd", schedule="warmup_cosine", lr=lr, steps=total,
                         dtype="float64")
    rates = [0.0, lr / 2] + [lr * 0.5 * (1 + math.cos(math.pi * (s - 2) / 38))
                             for s in range(2, 6)]
    for t in (1, 2, 6):
        x, _ = sgd_walk(config, t, jit=jit)
        np.testing.assert_allclose(x, -sum(rates[:t]) * np.asarray(G), rtol=1e-12, atol=1e-15)


def test_the_learning_rate_is_a_value_of_the_state():
    config = TrainConfig(optimizer="sgd", lr=0.1, steps=5, dtype="float64")
    x, state = sgd_walk(config, 2)
    assert float(state.hyperparams["learning_rate"]) == 0.1
    np.testing.assert_allclose(x, -0.2 * np.asarray(G), rtol=1e-12)
    # the same optimizer, another rate put in its state: the steps follow the state
    x, _ = sgd_walk(config, 2, lr=0.5)
    np.testing.assert_allclose(x, -1.0 * np.asarray(G), rtol=1e-12)


def test_momentum_accumulates_the_gradient():
    # optax's heavy ball: v_t = G + m v_{t-1}, x_t = x_{t-1} - lr v_t; three steps by hand
    config = TrainConfig(optimizer="momentum", lr=0.1, momentum=0.5, steps=3, dtype="float64")
    x, _ = sgd_walk(config, 3)
    velocities = [1.0, 1.5, 1.75]
    np.testing.assert_allclose(x, -0.1 * sum(velocities) * np.asarray(G), rtol=1e-12)


def test_adam_is_chosen_by_name_and_moves_by_the_sign():
    # Adam's first steps under a constant gradient: m_hat = G and v_hat = G^2, so each step is
    # -lr G / (|G| + 1e-8), about -lr sign(G) whatever |G|; sgd would move by -lr G.
    config = TrainConfig(optimizer="adam", lr=0.1, steps=3, dtype="float64", arch="relu-l1")
    x, _ = sgd_walk(config, 3)
    want = -0.3 * np.asarray(G) / (np.abs(np.asarray(G)) + 1e-8)
    np.testing.assert_allclose(x, want, rtol=1e-12)


@pytest.mark.parametrize("total, warmup", [(10, 1), (50, 2), (19, 1)])
def test_warmup_is_a_twentieth_of_the_steps_rounded_down_and_at_least_one(total, warmup):
    # 10 // 20 = 0 -> 1 step of warmup; 50 // 20 = 2 (not 2.5); 19 // 20 = 0 -> 1
    lr = 0.2
    config = TrainConfig(optimizer="sgd", schedule="warmup_cosine", lr=lr, steps=total,
                         dtype="float64")
    rates = [lr * s / warmup for s in range(warmup)] + [
        lr * 0.5 * (1 + math.cos(math.pi * (s - warmup) / (total - warmup)))
        for s in range(warmup, 4)]
    x, _ = sgd_walk(config, 4)
    np.testing.assert_allclose(x, -sum(rates) * np.asarray(G), rtol=1e-12, atol=1e-15)
