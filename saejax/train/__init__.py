"""Training: the state (``state``), the pure step and compiled chunks (``step``), and ``run``,
which trains one sparse autoencoder and writes its run directory (``runner``).

Data flow::

    init_state(config, n_visible) -> TrainState(step, params, opt_state, key)
    train_step(state, batch, hyper) -> (state, metrics)        pure; one minibatch iteration
    train_chunk(state, data, hyper, num_steps) -> (state, metrics per step)
        minibatch optimizers: lax.scan of steps; L-BFGS: lax.while_loop of ticks (optim.lbfgs)
    run(config, data, workdir) -> RunResult   chunks, progress, records, checkpoints, figures

A sweep vmaps ``train_chunk`` (L-BFGS: the driver's ticks) over ``state`` and ``hyper``; there
is no second implementation. The learning rate lives in the optimizer state
(``optax.inject_hyperparams``), so it is a traced leaf as well.
"""

from saejax.records.run_record import saved_config
from saejax.train.runner import DivergenceError, RunResult, run
from saejax.train.state import (
    TrainState,
    count_arrays,
    init_state,
    run_counts,
    set_learning_rate,
    stopped,
)
from saejax.train.step import (
    jitted_train_chunk,
    make_evaluate,
    make_lbfgs_driver,
    make_train_chunk,
    make_train_step,
    member_eval_of,
    settled,
)

__all__ = [
    "DivergenceError", "RunResult", "TrainState", "count_arrays", "init_state",
    "jitted_train_chunk", "make_evaluate", "make_lbfgs_driver", "make_train_chunk",
    "make_train_step", "member_eval_of", "run", "run_counts", "saved_config",
    "set_learning_rate", "settled", "stopped",
]
