"""The linear decoder and tied weights, across the loss, the gradient, the gradient check, training
and the command line."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference

import saejax
from saejax import cli, gradcheck, train
from saejax.config import TrainConfig

VARIANTS = [("linear", False), ("sigmoid", True), ("linear", True)]


@pytest.mark.parametrize("decoder, tied", VARIANTS)
def test_variant_loss_matches_numpy(decoder, tied):
    params, x = gradcheck.problem(7, 4, 9, seed=3, tied=tied)
    x = x * 3.0 - 1.0  # real-valued inputs outside [0, 1]
    got = saejax.loss(params, x, saejax.Hyper(0.05, 3.0, 1e-3), decoder=decoder, tied=tied)
    want = reference.terms(params, x, 0.05, 3.0, 1e-3, "kl", decoder)["loss"]
    np.testing.assert_allclose(got, want, rtol=1e-13)


@pytest.mark.parametrize("decoder, tied", VARIANTS)
@pytest.mark.parametrize("penalty", ["kl", "squared", "l1"])
def test_variant_grad_matches_numpy_loop(decoder, tied, penalty):
    params, x = gradcheck.problem(7, 4, 9, seed=3, tied=tied)
    params["b1"] = params["b1"] + 0.2
    x = x * 3.0 - 1.0
    hyper = saejax.Hyper(0.05, 3.0, 1e-3)
    got = saejax.analytic_grad(params, x, hyper, penalty, decoder=decoder, tied=tied)
    want = reference.grad(params, x, 0.05, 3.0, 1e-3, penalty, decoder)
    assert set(got) == set(want) == set(params)
    for k in params:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-12, atol=1e-15, err_msg=k)


@pytest.mark.parametrize("decoder, tied", VARIANTS)
@pytest.mark.parametrize(
    "penalty, term", [("kl", t) for t in gradcheck.TERM_FUNCTIONS] + [("squared", "loss"), ("l1", "loss")]
)
def test_variant_three_way(decoder, tied, penalty, term):
    params, x = gradcheck.problem(7, 4, 9, seed=1, tied=tied)
    params["b1"] = params["b1"] + 0.2
    result = gradcheck.check(params, x, saejax.Hyper(0.05, 3.0, 1e-3), penalty, term,
                             decoder=decoder, tied=tied)
    d = result["differences"]
    assert set(d["analytic~autodiff"]) == {*params, "all"}
    for block in d["analytic~autodiff"]:
        assert d["analytic~autodiff"][block] < 1e-12, (block, d)
    assert d["analytic~numerical"]["all"] < 1e-9 and d["autodiff~numerical"]["all"] < 1e-9, d


def test_tied_params_and_errors():
    params = saejax.init_params(jax.random.key(0), 6, 3, tied=True)
    assert set(params) == {"W1", "b1", "b2"}
    x = jnp.full((4, 6), 0.5)
    hyper = saejax.Hyper(0.1, 3.0, 1e-3)
    with pytest.raises(ValueError, match=r"hold no W2 \(tied weights\): pass tied=True"):
        saejax.loss(params, x, hyper)  # untied needs W2
    full = saejax.init_params(jax.random.key(0), 6, 3)
    with pytest.raises(ValueError, match=r"hold a W2 \(untied weights\): pass tied=False"):
        saejax.analytic_grad(full, x, hyper, tied=True)
    with pytest.raises(ValueError, match=r"missing \['W2'\], unexpected \['W3'\]"):
        saejax.loss({**params, "W3": params["W1"]}, x, hyper)  # neither variant's keys
    with pytest.raises(ValueError, match="unknown decoder 'relu'"):
        saejax.loss(full, x, hyper, decoder="relu")


def test_tied_weight_decay_counts_w1_twice():
    params = saejax.init_params(jax.random.key(1), 5, 2, jnp.float64, tied=True)
    w1 = np.asarray(params["W1"])
    np.testing.assert_allclose(saejax.weight_decay(params, 0.3, tied=True), 0.3 * np.sum(w1**2))
    np.testing.assert_allclose(saejax.weight_decay_grad(params, 0.3, tied=True)["W1"], 0.6 * w1)


@pytest.mark.slow
@pytest.mark.parametrize("decoder, tied", VARIANTS)
def test_variant_training_analytic_equals_autodiff(decoder, tied):
    x = np.random.default_rng(0).uniform(0.05, 0.95, (40, 9))  # in [0, 1]: the sigmoid decoder
    cfg = TrainConfig(n_hidden=4, rho=0.1, dtype="float64", steps=15, steps_per_call=5,
                      decoder=decoder, tied=tied)
    a = train.run(cfg, x, progress=False)
    b = train.run(cfg.replace(grad="autodiff"), x, progress=False)
    assert set(a.state.params) == ({"W1", "b1", "b2"} if tied else {"W1", "b1", "W2", "b2"})
    for k in a.state.params:
        np.testing.assert_allclose(a.state.params[k], b.state.params[k], rtol=1e-8, atol=1e-10)
    assert a.summary["final_loss"] < a.history[0]["loss"]


def test_preset_rejects_an_unsupported_decoder(tmp_path, capsys):
    code = cli.main(["train", "--preset", "color-patches", "--decoder", "sigmoid",
                     "--workdir", str(tmp_path / "run")])
    assert code == 2
    assert "supports decoder linear" in capsys.readouterr().err


@pytest.mark.slow
def test_gradcheck_cli_variants(capsys):
    assert cli.main(["gradcheck", "--decoder", "all", "--tied", "all", "--penalty", "kl",
                     "--n-visible", "5", "--n-hidden", "3", "--m", "4"]) == 0
    out = capsys.readouterr().out
    assert "linear decoder, tied" in out and out.count("PASS") == 4
