"""The folded evaluation of a sweep's members against vmap, the NumPy loop and the compiled HLO."""

import re
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference

from saejax import folded, grads, train
from saejax.config import TrainConfig
from saejax.losses import Hyper, hyper_of
from saejax.schema import ARCHS, DECODERS, MEMBER_EVALS, PENALTIES

G, M, N, H = 4, 37, 9, 5


def members(tied: bool, seed: int = 0):
    """G members' params (non-zero biases) and a Hyper that differs per member."""
    k = jax.random.split(jax.random.key(seed), 5)
    params = {"W1": 0.4 * jax.random.normal(k[0], (G, H, N), jnp.float64),
              "b1": 0.3 * jax.random.normal(k[1], (G, H), jnp.float64),
              "b2": -0.2 * jax.random.normal(k[2], (G, N), jnp.float64)}
    if not tied:
        params["W2"] = 0.4 * jax.random.normal(k[3], (G, N, H), jnp.float64)
    x = jax.random.uniform(k[4], (M, N), jnp.float64)
    hyper = Hyper(jnp.linspace(0.01, 0.3, G), jnp.linspace(0.1, 5.0, G), jnp.linspace(0, 1e-2, G))
    return params, x, hyper


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("penalty", PENALTIES)
def test_folded_equals_vmapped_evaluation(penalty, decoder, tied):
    params, x, hyper = members(tied)
    want = jax.vmap(partial(grads.terms_and_grad, penalty=penalty, decoder=decoder, tied=tied),
                    (0, None, 0))(params, x, hyper)
    got = folded.folded_terms_and_grad(params, x, hyper, penalty, decoder, tied)
    assert set(got[0]) == set(want[0]) and set(got[1]) == set(want[1])
    for part_got, part_want in zip(got, want, strict=True):
        for key in part_want:
            np.testing.assert_allclose(part_got[key], part_want[key], rtol=1e-12, atol=1e-15,
                                       err_msg=key)


@pytest.mark.parametrize("decoder", DECODERS)
def test_each_folded_member_is_the_numpy_loop_gradient(decoder):
    params, x, hyper = members(tied=False, seed=1)
    _, got = folded.folded_terms_and_grad(params, x, hyper, "kl", decoder)
    for g in range(G):
        one = {k: v[g] for k, v in params.items()}
        want = reference.grad(one, x, float(hyper.rho[g]), float(hyper.beta[g]),
                              float(hyper.lam[g]), "kl", decoder)
        for key in want:
            np.testing.assert_allclose(got[key][g], want[key], rtol=1e-10, atol=1e-14,
                                       err_msg=f"member {g} {key}")


def test_member_vmap_folds_only_members_that_share_their_data():
    calls = []
    params, x, hyper = members(tied=False)
    single = partial(grads.terms_and_grad, penalty="kl")

    def spy(params, x, hyper):
        calls.append(x.shape)
        return folded.folded_terms_and_grad(params, x, hyper)

    evaluate = folded.member_vmap(single, spy)
    shared = jax.vmap(evaluate, (0, None, 0))(params, x, hyper)
    assert calls == [(M, N)]
    # a shared hyper is broadcast to the members
    one_hyper = Hyper(0.05, 3.0, 1e-3)
    got = jax.vmap(evaluate, (0, None, None))(params, x, one_hyper)[0]["loss"]
    want = jax.vmap(single, (0, None, None))(params, x, one_hyper)[0]["loss"]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # each member its own data: vmap of the single evaluation, the folded one never called
    calls.clear()
    xs = jnp.stack([x + 0.01 * i for i in range(G)])
    own = jax.vmap(evaluate, (0, 0, 0))(params, xs, hyper)
    assert calls == []
    want = jax.vmap(single, (0, 0, 0))(params, xs, hyper)
    np.testing.assert_allclose(own[0]["loss"], want[0]["loss"], rtol=1e-12)
    assert not np.allclose(own[0]["loss"], shared[0]["loss"])
    # each member its own data and one hyper for all: only what is batched is mapped
    got = jax.vmap(evaluate, (0, 0, None))(params, xs, one_hyper)[0]["loss"]
    want = jax.vmap(single, (0, 0, None))(params, xs, one_hyper)[0]["loss"]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert calls == []
    # members that share some params (one b2 for all): vmap of the single evaluation, since
    # the folded one needs every param stacked
    calls.clear()
    b2 = params["b2"][0]
    axes = ({"W1": 0, "b1": 0, "b2": None, "W2": 0}, None, 0)
    got = jax.vmap(evaluate, axes)({**params, "b2": b2}, x, hyper)[0]["loss"]
    want = jax.vmap(single, axes)({**params, "b2": b2}, x, hyper)[0]["loss"]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert calls == []
    # one member, not under vmap: the single evaluation
    np.testing.assert_allclose(evaluate({k: v[0] for k, v in params.items()}, x,
                                        Hyper(0.01, 0.1, 0.0))[0]["loss"],
                               shared[0]["loss"][0], rtol=1e-12)


@pytest.mark.parametrize("arch", [  # the sigmoid network and TopK in the fast tier too
    a if a in ("sigmoid", "topk") else pytest.param(a, marks=pytest.mark.slow) for a in ARCHS])
def test_vmapped_members_multiply_the_shared_data_in_one_wide_product(arch):
    # jax.vmap over members that share x turns layer 1 into one (M, G H) product and dW1 into
    # one (G H, N) product, for every architecture: the fold the sweeps rely on.
    g, m, n, h = 6, 256, 12, 40
    config = TrainConfig(arch=arch, n_hidden=h, k=4, dtype="float32")
    states = jax.vmap(lambda s: train.init_state(config, n, seed=s))(jnp.arange(g))
    hyper = jax.tree.map(lambda v: jnp.full((g,), v, jnp.float32), hyper_of(config))
    evaluate = jax.jit(jax.vmap(train.make_evaluate(config, batched=True), (0, None, 0)))
    hlo = evaluate.lower(states.params, jnp.ones((m, n), jnp.float32), hyper).compile().as_text()
    products = set(re.findall(r"= f32\[([0-9,]+)\][^ ]* dot\(", hlo))
    assert f"{m},{g * h}" in products, products  # z = x [W_1; ...; W_G]^T
    assert f"{g * h},{n}" in products, products  # dW = delta^T x, all members at once


@pytest.mark.filterwarnings("ignore:member_eval 'kernel' is a GPU kernel")
@pytest.mark.parametrize("how", MEMBER_EVALS)
def test_every_member_eval_gives_the_same_evaluation(how):
    config = TrainConfig(n_hidden=H, member_eval=how)
    params, x, hyper = members(tied=False, seed=2)
    x = jnp.tile(x, (60, 1))  # 2,220 examples: two blocks of the blocked evaluation
    got = jax.vmap(train.make_evaluate(config, batched=True), (0, None, 0))(params, x, hyper)
    want = jax.vmap(partial(grads.terms_and_grad, penalty="kl"), (0, None, 0))(params, x, hyper)
    for key in ("W1", "b1", "W2", "b2"):
        np.testing.assert_allclose(got[1][key], want[1][key], rtol=1e-11, atol=1e-15)
    np.testing.assert_allclose(got[0]["loss"], want[0]["loss"], rtol=1e-12)


def test_auto_member_eval_follows_the_platform_rule():
    config = TrainConfig()
    assert train.member_eval_of(config, "cpu") == "blocked"
    assert train.member_eval_of(config, "gpu") == "whole"
    assert train.member_eval_of(config.replace(member_eval="folded"), "cpu") == "folded"
    assert train.settled(config).member_eval == train.member_eval_of(config)


def test_float32_members_keep_float32_gradients_under_float64_hyperparameters():
    # a sweep's grid arrives as float64 under x64: the decay must not lift the gradient
    params, x, hyper = members(tied=False, seed=2)
    p32 = {k: v.astype(jnp.float32) for k, v in params.items()}
    terms, g = folded.folded_terms_and_grad(p32, x.astype(jnp.float32), hyper)
    assert hyper.lam.dtype == jnp.float64
    assert {k: v.dtype for k, v in g.items()} == {k: jnp.float32 for k in p32}
    _, want = folded.folded_terms_and_grad(params, x, hyper)
    for key in want:
        np.testing.assert_allclose(g[key], want[key], rtol=2e-4, atol=2e-6, err_msg=key)
