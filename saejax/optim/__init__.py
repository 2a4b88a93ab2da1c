"""The optimizers: optax's minibatch methods (``minibatch``), the full-batch L-BFGS that ticks
(``lbfgs``) with its line search (``linesearch``), and optax's L-BFGS for a single small model
(``fit``)."""

from saejax.optim.lbfgs import (
    APPROX_WOLFE_ULPS,
    BUDGET,
    LINESEARCH,
    NO_DECREASE,
    RUNNING,
    STOP_REASONS,
    LbfgsDriver,
    LbfgsState,
    empty_row,
    init_lbfgs,
    make_driver,
    make_lbfgs_tick,
    two_loop,
)
from saejax.optim.minibatch import make_optimizer

__all__ = [
    "APPROX_WOLFE_ULPS", "BUDGET", "LINESEARCH", "NO_DECREASE", "RUNNING", "STOP_REASONS",
    "LbfgsDriver", "LbfgsState", "empty_row", "init_lbfgs", "make_driver", "make_lbfgs_tick",
    "make_optimizer", "two_loop",
]
