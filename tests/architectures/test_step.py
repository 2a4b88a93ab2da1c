"""One topk training step: decoder columns back at unit norm, the dead-latent counter against the
NumPy codes, and the aux loss switched on by it, its value from the NumPy reference."""

import jax
import jax.numpy as jnp
import numpy as np
from architectures import family_reference

from saejax import train
from saejax.config import TrainConfig
from saejax.losses import hyper_of

CONFIG = dict(arch="topk", n_hidden=5, k=1, lam=0.0, dtype="float64", batch_size=4,
              dead_window=100, aux_coeff=0.5, lr=0.05)


def test_topk_step():
    config = TrainConfig(**CONFIG)
    x = np.random.default_rng(0).standard_normal((4, 6))
    state = train.init_state(config, 6, x_mean=x.mean(axis=0))
    hyper = hyper_of(config)
    step = jax.jit(train.make_train_step(config))  # one compilation serves both steps
    new, metrics = step(state, jnp.asarray(x), hyper)

    norms = np.linalg.norm(np.asarray(new.params["W2"]), axis=0)
    np.testing.assert_allclose(norms, np.ones(5), rtol=1e-14)
    before = np.linalg.norm(np.asarray(state.params["W2"] - new.params["W2"]))
    assert before > 0  # the step moved the decoder; the projection brought it back

    # The latents that fired on the batch, from the NumPy codes at the params before the step.
    f = family_reference.codes(family_reference.as_numpy(state.params), x, "topk", 1)
    fired = f.any(axis=0)
    assert fired.any() and not fired.all()
    np.testing.assert_array_equal(new.since_fired, np.where(fired, 0, 4))
    assert float(metrics["sparsity"]) == 0.0  # none dead yet (since_fired = 0): no aux loss

    # Every latent at the dead window: the aux loss reconstructs the residual with the dead
    # (all) latents, its value the NumPy reference's; the counter stays capped at the window.
    dead = state.replace(since_fired=jnp.full((5,), 100, jnp.int32))
    new, metrics = step(dead, jnp.asarray(x), hyper)
    want = family_reference.forward(state.params, x, "topk", lam=0.0, k=1,
                                    dead=np.ones(5, bool), aux_k=config.aux_k, aux_coeff=0.5)
    assert want["sparsity"] > 0
    np.testing.assert_allclose(metrics["sparsity"], want["sparsity"], rtol=1e-12)
    np.testing.assert_array_equal(new.since_fired, np.where(fired, 0, 100))
