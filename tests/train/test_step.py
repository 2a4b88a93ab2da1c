"""train.step: minibatch steps worked by hand from the NumPy gradient, minibatches drawn from the
step, and the frozen numbers of three Adam steps."""

import jax.numpy as jnp
import numpy as np
import reference
from helpers import small_config, tiny_data

import saejax
from saejax import train


def test_sgd_step_is_params_minus_lr_grad():
    x = tiny_data()
    cfg = small_config(optimizer="sgd", lr=0.5, batch_size=None, steps=1)
    state = train.init_state(cfg, x.shape[1])
    hyper = saejax.Hyper(cfg.rho, cfg.beta, cfg.lam)
    new, metrics = train.make_train_step(cfg)(state, jnp.asarray(x), hyper)
    g = reference.grad(state.params, x, cfg.rho, cfg.beta, cfg.lam, "kl")
    for k in state.params:
        np.testing.assert_allclose(new.params[k], np.asarray(state.params[k]) - 0.5 * g[k],
                                   rtol=1e-12, atol=1e-14)
    assert int(new.step) == 1
    want_norm = np.sqrt(sum(np.sum(v**2) for v in g.values()))
    np.testing.assert_allclose(metrics["grad_norm"], want_norm, rtol=1e-12)


def test_first_adam_step_by_hand():
    # After one step Adam's bias-corrected moments are g and g^2: update = -lr g / (|g| + eps).
    x = tiny_data()
    cfg = small_config(optimizer="adam", lr=0.01, batch_size=None, steps=1)
    state = train.init_state(cfg, x.shape[1])
    new, _ = train.make_train_step(cfg)(state, jnp.asarray(x), saejax.Hyper(0.1, 3.0, 1e-3))
    g = reference.grad(state.params, x, 0.1, 3.0, 1e-3, "kl")
    for k in g:
        want = np.asarray(state.params[k]) - 0.01 * g[k] / (np.abs(g[k]) + 1e-8)
        np.testing.assert_allclose(new.params[k], want, rtol=1e-10, atol=1e-14)


def test_momentum_two_steps_by_hand():
    x = tiny_data()
    cfg = small_config(optimizer="momentum", lr=0.1, momentum=0.9, batch_size=None, steps=2)
    state = train.init_state(cfg, x.shape[1])
    step = train.make_train_step(cfg)
    hyper = saejax.Hyper(0.1, 3.0, 1e-3)
    s1, _ = step(state, jnp.asarray(x), hyper)
    s2, _ = step(s1, jnp.asarray(x), hyper)
    g0 = reference.grad(state.params, x, 0.1, 3.0, 1e-3, "kl")
    g1 = reference.grad(s1.params, x, 0.1, 3.0, 1e-3, "kl")
    for k in g0:
        want = np.asarray(state.params[k]) - 0.1 * g0[k] - 0.1 * (0.9 * g0[k] + g1[k])
        np.testing.assert_allclose(s2.params[k], want, rtol=1e-10, atol=1e-14)


def test_minibatches_are_drawn_from_the_step():
    x = tiny_data()
    cfg = small_config(optimizer="sgd", lr=0.1, batch_size=8, steps=10)
    a = train.run(cfg, x, progress=False)
    b = train.run(cfg.replace(steps_per_call=3), x, progress=False)  # other chunking, same batches
    for k in a.state.params:
        np.testing.assert_array_equal(a.state.params[k], b.state.params[k])
    c = train.run(cfg.replace(seed=1), x, progress=False)
    assert not np.allclose(a.state.params["W1"], c.state.params["W1"])


def test_frozen_regression_three_adam_steps():
    # Frozen numbers of three Adam steps on a fixed problem (float64). If this fails and you did
    # not mean to change the initialization, the batches, the loss or the optimizer, it is a bug.
    x = tiny_data()
    cfg = small_config(optimizer="adam", lr=0.01, batch_size=8, steps=3, seed=7)
    res = train.run(cfg, x, progress=False)
    got = [r["loss"] for r in res.history if not r.get("final")]
    np.testing.assert_allclose(got, FROZEN_LOSSES, rtol=1e-10)
    np.testing.assert_allclose(float(jnp.sum(res.state.params["W1"])), FROZEN_W1_SUM, rtol=1e-10)


FROZEN_LOSSES = [8.35630666642492, 7.477917693575252, 6.780743586563321]


FROZEN_W1_SUM = 0.05214524405009824


def test_a_bfloat16_lbfgs_memory_off_a_gpu_warns_that_it_costs_more():
    import jax
    import pytest

    from saejax.config import TrainConfig

    if jax.default_backend() != "cpu":
        pytest.skip("the warning is the CPU's")
    with pytest.warns(UserWarning, match="meant for a GPU: on the CPU"):
        train.make_lbfgs_driver(TrainConfig(lbfgs_memory_dtype="bfloat16"))
