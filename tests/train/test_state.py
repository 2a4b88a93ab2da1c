"""train.state: a fresh state as UFLDL starts it, the learning rate as a value of the state,
and the counts a run reports (iterations, evaluations, why it stopped)."""

import jax
import jax.numpy as jnp
import numpy as np
from helpers import small_config

from saejax import optim
from saejax.train import state as train_state

ADAM = small_config(optimizer="adam", lr=0.05, batch_size=8, steps=10)
LBFGS = small_config(steps=10, lbfgs_memory=3)


def test_a_fresh_state_is_ufldls_start():
    s = train_state.init_state(ADAM, 6)
    assert int(s.step) == 0 and s.step.dtype == jnp.int32
    assert set(s.params) == {"W1", "b1", "W2", "b2"}
    assert s.params["W1"].shape == (5, 6) and s.params["W1"].dtype == jnp.float64
    r = np.sqrt(6) / np.sqrt(6 + 5 + 1)  # UFLDL: uniform on [-r, r], zero biases
    assert 0 < np.abs(s.params["W1"]).max() <= r and not np.any(s.params["b1"])
    assert float(s.opt_state.hyperparams["learning_rate"]) == 0.05
    assert s.key.dtype == jnp.uint32


def test_the_seed_decides_the_params_and_the_minibatches():
    a, b = train_state.init_state(ADAM, 6), train_state.init_state(ADAM, 6)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)
    c = train_state.init_state(ADAM, 6, seed=1)
    assert not np.array_equal(a.params["W1"], c.params["W1"])
    assert not np.array_equal(a.key, c.key)
    assert np.array_equal(train_state.init_state(ADAM.replace(seed=1), 6).params["W1"],
                          c.params["W1"])


def test_the_learning_rate_lives_in_the_state():
    s = train_state.init_state(ADAM, 6, lr=0.5)
    assert float(s.opt_state.hyperparams["learning_rate"]) == 0.5
    t = train_state.set_learning_rate(s, 0.001)
    assert float(t.opt_state.hyperparams["learning_rate"]) == 0.001
    assert float(s.opt_state.hyperparams["learning_rate"]) == 0.5  # a new state, not an edit
    lbfgs = train_state.init_state(LBFGS, 6)
    assert train_state.set_learning_rate(lbfgs, 0.1) is lbfgs  # L-BFGS has none


def test_a_minibatch_run_counts_one_evaluation_a_step_and_stops_at_its_budget():
    s = train_state.init_state(ADAM, 6)
    assert train_state.count_arrays(s)[1:] == (None, None)
    assert not bool(train_state.stopped(s))
    assert train_state.run_counts(s, ADAM) == {"iterations": 0, "evaluations": 0,
                                               "stop_reason": "running"}
    done = s.replace(step=jnp.asarray(10, jnp.int32))
    assert train_state.run_counts(done, ADAM) == {"iterations": 10, "evaluations": 10,
                                                  "stop_reason": "budget"}
    # a sweep's stacked counts: one value per member
    steps = (jnp.asarray([3, 10]), None, None)
    assert train_state.run_counts(steps, ADAM) == {"iterations": [3, 10],
                                                   "evaluations": [3, 10],
                                                   "stop_reason": ["running", "budget"]}


def test_lbfgs_counts_come_from_its_state_and_a_larger_budget_restarts_it():
    s = train_state.init_state(LBFGS, 6)
    assert not bool(train_state.stopped(s))
    ended = s.replace(step=jnp.asarray(10, jnp.int32), opt_state=s.opt_state.replace(
        evaluations=jnp.asarray(13, s.opt_state.evaluations.dtype),
        stop=jnp.asarray(optim.BUDGET, s.opt_state.stop.dtype)))
    assert bool(train_state.stopped(ended))
    assert train_state.run_counts(ended, LBFGS) == {"iterations": 10, "evaluations": 13,
                                                    "stop_reason": "budget"}
    # resumed with a budget of 20 steps, it runs again; with the same budget it stays ended
    again = train_state.resumed(ended, LBFGS.replace(steps=20))
    assert int(again.opt_state.stop) == optim.RUNNING
    assert int(train_state.resumed(ended, LBFGS).opt_state.stop) == optim.BUDGET
    converged = ended.replace(opt_state=ended.opt_state.replace(
        stop=jnp.asarray(optim.NO_DECREASE, s.opt_state.stop.dtype)))
    assert int(train_state.resumed(converged, LBFGS.replace(steps=20)).opt_state.stop) == \
        optim.NO_DECREASE  # converged: more steps change nothing
