"""The compiled program of a sweep: the training chunk vmapped over a block of members.

    init(seeds, lrs, x_mean) -> states           init_state vmapped, sharded on "members"
    run_chunk(states, data, hyper, num_steps)    train_chunk vmapped; the data is shared
    final(params, data, hyper) -> (terms, stats) train.final.final_stats vmapped
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding

from saejax.config import TrainConfig
from saejax.optim import LbfgsState
from saejax.runtime.compile_cache import program_cache
from saejax.train.final import final_stats
from saejax.train.state import TrainState, init_state
from saejax.train.step import make_lbfgs_driver, make_train_chunk


def _state_axes(shared_batches: bool) -> TrainState:
    """vmap axes of a TrainState: the step and minibatch key are shared when seeds are equal."""
    shared = None if shared_batches else 0
    return TrainState(step=shared, params=0, opt_state=0, key=shared, since_fired=0)


def without_memory(states):
    """``states`` without the L-BFGS memory S, Y: all that a stopped member still needs."""
    if not isinstance(states.opt_state, LbfgsState):
        return states  # a minibatch optimizer's state, which carries no such memory
    return states.replace(opt_state=states.opt_state.replace(S=None, Y=None))


def _lbfgs_sweep_chunk(config: TrainConfig):
    driver = make_lbfgs_driver(config, batched=True)
    cond = jax.vmap(driver.cond, in_axes=(0, None))
    step = jax.vmap(driver.step, in_axes=(0, 0, None, 0, None, None, 0))

    def lbfgs_sweep_chunk(states, data, hyper, num_steps, shared_batches=False, end=None,
                          exit_at=0):
        end = states.step[0] + num_steps if end is None else end

        def body(carry):
            states, rows = carry
            moving = cond(states, end)
            new_states, new_rows = step(states, rows, data, hyper, end, num_steps, moving)
            # A member that has stopped (or reached end) is held where it is. Its tick left the
            # memory S, Y untouched (active=False): only the small fields are selected.
            memory = {"S": new_states.opt_state.S, "Y": new_states.opt_state.Y}
            held_states, held_rows = jax.tree.map(
                lambda a, b: jnp.where(moving.reshape((-1,) + (1,) * (a.ndim - 1)), a, b),
                (without_memory(new_states), new_rows), (without_memory(states), rows))
            return (held_states.replace(opt_state=held_states.opt_state.replace(**memory)),
                    held_rows)

        rows = jax.vmap(partial(driver.init, num_steps=num_steps))(states.params)
        return jax.lax.while_loop(lambda carry: jnp.sum(cond(carry[0], end)) > exit_at,
                                  body, (states, rows))

    return lbfgs_sweep_chunk


def make_sweep_chunk(config: TrainConfig):
    """``sweep_chunk(states, data, hyper, num_steps, shared_batches=False, end=None, exit_at=0)``.

    ``make_train_chunk(config, batched=True)`` mapped over the members' states and ``Hyper``
    (leading axis); the data is shared (in_axes=None), never copied per member. Minibatches
    read from a stream (``train.feed``) come as (num_steps, B, N) when the members share them,
    else as (G, num_steps, B, N). When every member has the same
    seed, they draw the same minibatch indices; ``shared_batches=True`` then keeps the step and
    key unbatched, so the batch ``data[idx]`` is gathered once for all members and its matmuls
    with the members' weights become one wide matmul instead of many small ones.

    L-BFGS: one ``while_loop`` in which every running member ticks (the standalone run's own
    ``LbfgsDriver``) until each has stopped or reached iteration ``end`` (default: the first
    member's step + ``num_steps``), or until at most ``exit_at`` members still run, so that the
    caller can pack the runners into a smaller block.
    """
    if config.optimizer == "lbfgs":
        return _lbfgs_sweep_chunk(config)
    train_chunk = make_train_chunk(config, batched=True)

    def sweep_chunk(states, data, hyper, num_steps, shared_batches=False, end=None, exit_at=0):
        axes = _state_axes(shared_batches)
        # (G, num_steps, B, N): each member's own minibatches, read from a stream
        data_axis = 0 if data.ndim == 4 else None
        return jax.vmap(partial(train_chunk, num_steps=num_steps), in_axes=(axes, data_axis, 0),
                        out_axes=(axes, 0))(states, data, hyper)

    return sweep_chunk


@program_cache
def jitted_programs(program: TrainConfig, n_visible: int, by_member: NamedSharding):
    """The jitted member-chunk, init and final-statistics programs, cached across sweeps."""
    donate = (0,) if program.optimizer == "lbfgs" else ()  # the members' L-BFGS memories
    run_chunk = jax.jit(make_sweep_chunk(program), static_argnames=("num_steps", "shared_batches"),
                        donate_argnums=donate)
    init = jax.jit(jax.vmap(partial(init_state, program, n_visible), in_axes=(0, 0, None)),
                   out_shardings=by_member)
    final = jax.jit(jax.vmap(partial(final_stats, config=program), in_axes=(0, None, 0)))
    return run_chunk, init, final
