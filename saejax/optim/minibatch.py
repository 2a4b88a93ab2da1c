"""optax's minibatch optimizers (adam, sgd, momentum) with a traced learning rate."""

from __future__ import annotations

import optax

from saejax.config import TrainConfig


def make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
    """The optax optimizer of a minibatch config; the learning rate is an injected hyperparameter
    (``optax.inject_hyperparams``), so a sweep over it is a traced leaf, not a recompile."""

    def factory(learning_rate):
        if config.schedule == "cosine":
            learning_rate = optax.cosine_decay_schedule(learning_rate, config.steps)
        elif config.schedule == "warmup_cosine":
            # optax.warmup_cosine_decay_schedule's two parts, joined as it joins them: it asks
            # `peak_value == 0.0` in Python, which a traced learning rate cannot answer
            warmup = max(1, config.steps // 20)
            learning_rate = optax.join_schedules(
                [optax.linear_schedule(0.0, learning_rate, warmup),
                 optax.cosine_decay_schedule(learning_rate, max(1, config.steps - warmup))],
                [warmup])
        if config.optimizer == "adam":
            return optax.adam(learning_rate)
        if config.optimizer == "momentum":
            return optax.sgd(learning_rate, momentum=config.momentum)
        return optax.sgd(learning_rate)

    return optax.inject_hyperparams(factory)(learning_rate=config.lr)
