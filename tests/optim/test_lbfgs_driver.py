"""The L-BFGS driver of saejax.optim, the loop a run and a sweep hand their ticks to: the same
iterations as ticking by hand, each finished iteration filed in its row, held members
untouched, and chunks that end where they should."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from lbfgs_reference import rosen4, run, terms_of

from saejax import optim
from saejax.pytree import pytree_dataclass


@pytree_dataclass
class State:
    """The part of a train state the driver reads."""

    params: dict
    step: jax.Array
    opt_state: optim.LbfgsState


@pytest.mark.slow
def test_the_driver_runs_the_ticks_and_files_each_iteration_in_its_row():
    # LbfgsDriver over a quadratic: the same iterations as ticking by hand (run above), each
    # finished iteration's J in its row, and cond false once the budget is reached.
    def f(x):
        return 0.5 * jnp.sum(jnp.arange(1.0, 4.0) * x * x) - jnp.sum(x)

    def evaluate(params, batch, hyper):
        value, g = jax.value_and_grad(f)(params["x"])
        return (terms_of(value), {"x": g})

    driver = optim.make_driver(evaluate, 4)
    params = {"x": jnp.asarray([1.0, -1.0, 2.0])}
    state = State(params, jnp.zeros((), jnp.int32), optim.init_lbfgs(params, 5))
    rows = driver.init(params, 4)
    step = jax.jit(driver.step, static_argnums=(5,))
    while bool(driver.cond(state, 4)):
        state, rows = step(state, rows, None, None, 4, 4)
    want_params, want_step, want_opt, want_rows = run(f, [1.0, -1.0, 2.0], 4, memory=5)
    assert int(state.step) == int(want_step) == 4
    np.testing.assert_allclose(state.params["x"], want_params["x"], rtol=1e-14)
    np.testing.assert_allclose(rows["loss"], [r["loss"] for r in want_rows], rtol=1e-14)
    assert bool(np.all(rows["valid"]))
    assert list(np.asarray(rows["linesearch_steps"])) == [int(r["linesearch_steps"])
                                                         for r in want_rows]


@pytest.mark.slow
def test_an_inactive_driver_step_leaves_the_memory_as_it_was():
    # A sweep member that is held ticks with active=False: the same ticks that store a pair
    # (s, y) when active leave S, Y and the count of pairs as they were.
    def evaluate(params, batch, hyper):
        value, g = jax.value_and_grad(rosen4)(params["x"])
        return (terms_of(value), {"x": g})

    driver = optim.make_driver(evaluate, 10)
    params = {"x": jnp.asarray([-1.2, 1.0, 2.0, -1.0])}
    state = State(params, jnp.zeros((), jnp.int32), optim.init_lbfgs(params, 5))
    rows = driver.init(params, 10)
    step = jax.jit(driver.step, static_argnums=(5,))
    while int(state.step) < 2:
        state, rows = step(state, rows, None, None, 10, 10)
    held = moved = state
    while int(moved.step) < 3:
        moved, _ = step(moved, rows, None, None, 10, 10, True)
        held, _ = step(held, rows, None, None, 10, 10, False)
    assert int(moved.opt_state.stored) == int(state.opt_state.stored) + 1
    assert int(held.opt_state.stored) == int(state.opt_state.stored)
    np.testing.assert_array_equal(held.opt_state.S, state.opt_state.S)
    np.testing.assert_array_equal(held.opt_state.Y, state.opt_state.Y)


@pytest.mark.slow
def test_the_driver_runs_in_chunks_files_rows_by_chunk_and_keeps_float32():
    # a budget of 10 run in chunks of 2 iterations: cond is false at each chunk's end (not one
    # tick later), each chunk's rows hold its own iterations (row i = iteration end - 2 + i),
    # the evaluation gets the batch (here the target), and float32 stays float32
    weights = jnp.arange(1.0, 4.0, dtype=jnp.float32)

    def f(x, target):
        return jnp.sum((x - target) ** 2 * weights)

    def evaluate(params, batch, hyper):  # J scaled by the hyperparameter it is given
        value, g = jax.value_and_grad(lambda x: hyper * f(x, batch))(params["x"])
        return (terms_of(value), {"x": g})

    target = jnp.asarray([1.0, -2.0, 0.5], jnp.float32)
    driver = optim.make_driver(evaluate, 10)
    params = {"x": jnp.asarray([5.0, -3.0, 2.0], jnp.float32)}
    state = State(params, jnp.zeros((), jnp.int32), optim.init_lbfgs(params, 5))
    chunks = []
    for end in (2, 4):
        rows = driver.init(params, 2)
        assert rows["valid"].dtype == jnp.bool_ and rows["loss"].dtype == jnp.float32
        assert rows["linesearch_steps"].dtype == jnp.int32
        while bool(driver.cond(state, end)):
            state, rows = driver.step(state, rows, target, jnp.float32(2.0), end, 2)
        assert int(state.step) == end and int(state.opt_state.stop) == 0  # only the chunk ended
        assert bool(np.all(rows["valid"])) and rows["loss"].dtype == jnp.float32
        chunks.append(np.asarray(rows["loss"]))
    # the same four iterations ticked by hand, in float32, toward the same target
    _, _, _, want = run(lambda x: 2.0 * f(x.astype(jnp.float32), target), [5.0, -3.0, 2.0], 4,
                        memory=5)
    np.testing.assert_allclose(np.concatenate(chunks), [r["loss"] for r in want], rtol=1e-5)
