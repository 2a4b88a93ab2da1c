"""The Flax module against the functional core and the NumPy reference, for every variant."""

import itertools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference
from helpers import tiny_data

import saejax
from saejax.flax_module import SparseAutoencoder
from saejax.schema import DECODERS, PENALTIES

N, H, M = 6, 4, 7


HYPER = saejax.Hyper(rho=0.1, beta=3.0, lam=1e-3)


VARIANTS = list(itertools.product(DECODERS, (False, True)))


def module(decoder="sigmoid", tied=False):
    return SparseAutoencoder(N, H, decoder=decoder, tied=tied, dtype=jnp.float64)


def problem(tied):
    """Params with non-zero biases (init's zeros would hide a misplaced bias) and x in (0, 1)."""
    params = saejax.init_params(jax.random.key(3), N, H, jnp.float64, tied=tied)
    rng = np.random.default_rng(3)
    params["b1"] = jnp.asarray(rng.normal(0.0, 0.5, H))
    params["b2"] = jnp.asarray(rng.normal(0.0, 0.5, N))
    return params, jnp.asarray(rng.uniform(0.05, 0.95, (M, N)))


def first_params_key(key):
    """The key Flax's first make_rng("params") returns in a top-level module initialized with key."""

    class FirstKey(nn.Module):
        @nn.compact
        def __call__(self):
            return self.make_rng("params")

    return FirstKey().init_with_output(key)[0]


def assert_trees_close(got, want, rtol):
    """Same keys, and ||got - want|| <= rtol ||want|| for every leaf."""
    assert set(got) == set(want)
    for k in want:
        g, w = np.asarray(got[k]), np.asarray(want[k])
        assert g.shape == w.shape, k
        assert np.linalg.norm(g - w) <= rtol * np.linalg.norm(w), (k, g, w)


@pytest.mark.parametrize("decoder,tied", VARIANTS)
def test_init_is_init_params_of_the_modules_key(decoder, tied):
    # Flax's make_rng folds a counter into the key given to init, so the module cannot see that
    # key itself; it draws all its params from its first "params" key, split as init_params does.
    key = jax.random.key(11)
    x = jnp.zeros((M, N), jnp.float64)
    params = module(decoder, tied).init(key, x)["params"]
    shapes = {"W1": (H, N), "b1": (H,), "W2": (N, H), "b2": (N,)}
    expected = {k: s for k, s in shapes.items() if not (tied and k == "W2")}
    assert {k: v.shape for k, v in params.items()} == expected
    assert all(v.dtype == jnp.float64 for v in params.values())
    want = saejax.init_params(first_params_key(key), N, H, jnp.float64, tied=tied)
    for k in expected:
        np.testing.assert_array_equal(params[k], want[k])


def test_init_bounds_and_zero_biases():
    # UFLDL's r = sqrt(6) / sqrt(n + h + 1); over five keys the extremes come close to it.
    r = math.sqrt(6) / math.sqrt(N + H + 1)
    x = jnp.zeros((M, N), jnp.float64)
    inits = [module().init(jax.random.key(seed), x)["params"] for seed in range(5)]
    for k in ("W1", "W2"):
        w = np.stack([np.asarray(p[k]) for p in inits])
        assert np.all(np.abs(w) <= r) and np.abs(w).max() > 0.95 * r
        assert abs(w.mean()) < 0.2 * r
        assert len({v.tobytes() for v in w}) == len(inits)  # every key its own draw
    for p in inits:
        assert not np.any(p["b1"]) and not np.any(p["b2"])
        assert not np.allclose(p["W1"], p["W2"].T)  # two draws, not one


@pytest.mark.parametrize("penalty", PENALTIES)
@pytest.mark.parametrize("decoder,tied", VARIANTS)
def test_module_matches_functional_core(decoder, tied, penalty):
    params, x = problem(tied)
    sae = module(decoder, tied)
    variables = {"params": params}

    out = sae.apply(variables, x)
    a2, a3 = saejax.forward(params, x, decoder, tied)
    np.testing.assert_allclose(out["a2"], a2, rtol=1e-14, atol=0)
    np.testing.assert_allclose(out["a3"], a3, rtol=1e-14, atol=0)
    np.testing.assert_allclose(out["rho_hat"], saejax.mean_activation(a2), rtol=1e-14, atol=0)
    np.testing.assert_allclose(sae.apply(variables, x, method=SparseAutoencoder.encode), a2,
                               rtol=1e-14, atol=0)
    ref = reference.terms(params, x, HYPER.rho, HYPER.beta, HYPER.lam, penalty, decoder)
    np.testing.assert_allclose(out["a3"], ref["a3"], rtol=1e-13)

    def module_loss(p):
        return sae.apply({"params": p}, x, HYPER, penalty, method=SparseAutoencoder.loss)

    loss = module_loss(params)
    np.testing.assert_allclose(
        loss, saejax.loss(params, x, HYPER, penalty, decoder=decoder, tied=tied), rtol=1e-13)
    np.testing.assert_allclose(loss, ref["loss"], rtol=1e-13)
    terms = sae.apply(variables, x, HYPER, penalty, method=SparseAutoencoder.loss_terms)
    for k in ("reconstruction", "weight_decay", "sparsity"):
        np.testing.assert_allclose(terms[k], ref[k], rtol=1e-13)

    grad = jax.grad(module_loss)(params)
    assert_trees_close(grad, saejax.analytic_grad(params, x, HYPER, penalty, decoder=decoder,
                                                   tied=tied), rtol=1e-12)
    assert_trees_close(grad, reference.grad(params, x, HYPER.rho, HYPER.beta, HYPER.lam, penalty,
                                            decoder), rtol=1e-12)


def test_variants_really_differ():
    # Guards the test above: were decoder or tied ignored, its variants would coincide.
    params, x = problem(tied=False)
    untied = module().apply({"params": params}, x)["a3"]
    linear = module("linear").apply({"params": params}, x)["a3"]
    tied_params = {k: v for k, v in params.items() if k != "W2"}
    tied = module(tied=True).apply({"params": tied_params}, x)["a3"]
    assert not np.allclose(untied, linear) and not np.allclose(untied, tied)


class Classifier(nn.Module):
    """Sparse features, then a linear read-out: the module inside a larger Flax model."""

    n_classes: int = 3

    @nn.compact
    def __call__(self, x):
        sae = SparseAutoencoder(N, H, decoder="linear", tied=True, dtype=jnp.float64, name="sae")
        return nn.Dense(self.n_classes, param_dtype=jnp.float64)(sae.encode(x))


def test_inside_a_larger_model():
    _, x = problem(tied=True)
    model = Classifier()
    variables = model.init(jax.random.key(5), x)
    params = variables["params"]
    assert set(params) == {"sae", "Dense_0"}
    assert {k: v.shape for k, v in params["sae"].items()} == {"W1": (H, N), "b1": (H,),
                                                               "b2": (N,)}
    r = math.sqrt(6) / math.sqrt(N + H + 1)
    assert np.all(np.abs(params["sae"]["W1"]) <= r) and not np.any(params["sae"]["b1"])

    logits = jax.jit(model.apply)(variables, x)
    dense = params["Dense_0"]
    want = saejax.encode(params["sae"], x).a2 @ dense["kernel"] + dense["bias"][None, :]
    assert logits.shape == (M, 3)
    np.testing.assert_allclose(logits, want, rtol=1e-14)

    def objective(p):
        return jnp.sum(model.apply({"params": p}, x) ** 2)

    grad = jax.grad(objective)(params)
    assert np.linalg.norm(grad["sae"]["W1"]) > 0 and np.linalg.norm(grad["sae"]["b1"]) > 0
    assert not np.any(grad["sae"]["b2"])  # encode never reaches the decoder's bias


def test_bad_attributes_raise_with_the_choices():
    with pytest.raises(ValueError, match=r"unknown decoder 'tanh'; choose one of \['sigmoid', "
                                         r"'linear'\]"):
        SparseAutoencoder(N, H, decoder="tanh")
    with pytest.raises(ValueError, match="n_hidden must be a positive integer, got 0"):
        SparseAutoencoder(N, 0)
    with pytest.raises(ValueError, match="n_visible must be a positive integer"):
        SparseAutoencoder(6.0, H)
    with pytest.raises(ValueError, match="tied must be True"):
        SparseAutoencoder(N, H, tied="yes")
    with pytest.raises(ValueError, match="floating dtype"):
        SparseAutoencoder(N, H, dtype=jnp.int32)


def test_bad_loss_arguments_raise():
    params, x = problem(tied=False)
    sae, variables = module(), {"params": params}
    with pytest.raises(ValueError, match=r"unknown penalty 'l2'; choose one of \['kl', "):
        sae.apply(variables, x, HYPER, "l2", method=SparseAutoencoder.loss)
    with pytest.raises(ValueError, match="rho must lie strictly inside"):
        sae.apply(variables, x, saejax.Hyper(1.5, 3.0, 1e-3), method=SparseAutoencoder.loss)
    with pytest.raises(ValueError, match="x has shape"):
        sae.apply(variables, x[:, :-1])


def test_flax_module_matches_loss():
    from saejax.flax_module import SparseAutoencoder

    x = jnp.asarray(tiny_data(m=7, n=6))
    module = SparseAutoencoder(n_visible=6, n_hidden=4, dtype=jnp.float64)
    variables = module.init(jax.random.key(0), x)
    params = variables["params"]
    assert set(params) == {"W1", "b1", "W2", "b2"}
    r = np.sqrt(6) / np.sqrt(6 + 4 + 1)
    assert np.abs(params["W1"]).max() <= r and not np.any(params["b1"])
    hyper = saejax.Hyper(0.05, 3.0, 1e-3)
    got = module.apply(variables, x, hyper, method=SparseAutoencoder.loss)
    np.testing.assert_allclose(got, saejax.loss(dict(params), x, hyper), rtol=1e-14)
    np.testing.assert_allclose(got, reference.terms(params, x, 0.05, 3.0, 1e-3)["loss"],
                               rtol=1e-13)
    out = module.apply(variables, x)
    assert out["a2"].shape == (7, 4) and out["a3"].shape == (7, 6)
