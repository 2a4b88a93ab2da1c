"""Linear decoder, tied weights, softmax regression and self-taught learning."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference

import saejax
from saejax import cli, gradcheck, softmax, sweeps, train
from saejax.config import TrainConfig
from saejax.data import color_patches, load_digits

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
    x = np.random.default_rng(0).normal(0.5, 0.3, (40, 9))
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


def np_softmax(theta, x, y, lam):
    W, b = np.asarray(theta["W"]), np.asarray(theta["b"])
    logits = x @ W.T + b
    logits = logits - logits.max(1, keepdims=True)
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    onehot = np.eye(W.shape[0])[y]
    m = len(x)
    J = -np.mean(np.log(p[np.arange(m), y])) + lam / 2 * np.sum(W**2)
    return J, {"W": -(onehot - p).T @ x / m + lam * W, "b": -(onehot - p).sum(0) / m}


def test_softmax_loss_and_gradient_against_numpy():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 6)), rng.integers(0, 3, 20)
    theta = {"W": jnp.asarray(rng.normal(size=(3, 6))), "b": jnp.asarray(rng.normal(size=3))}
    J, g = np_softmax(theta, x, y, 0.1)
    np.testing.assert_allclose(softmax.softmax_loss(theta, x, y, 0.1), J, rtol=1e-13)
    auto = jax.grad(softmax.softmax_loss)(theta, jnp.asarray(x), jnp.asarray(y), 0.1)
    for k in g:
        np.testing.assert_allclose(auto[k], g[k], rtol=1e-12, atol=1e-14)


@pytest.mark.slow
def test_softmax_learns_separable_classes_and_rejects_bad_labels():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 300)
    x = rng.normal(size=(300, 4)) + 4.0 * np.eye(3, 4)[y]
    fit = softmax.train_softmax(x[:150], y[:150], steps=100)
    theta, info = fit  # still unpacks
    assert fit.theta is theta and fit.info is info
    assert softmax.accuracy(theta, x[150:], y[150:]) > 0.95
    # the fit itself is accepted where theta is, with the same predictions
    np.testing.assert_array_equal(softmax.predict(fit, x), softmax.predict(theta, x))
    assert softmax.accuracy(fit, x[150:], y[150:]) == softmax.accuracy(theta, x[150:], y[150:])
    with pytest.raises(ValueError, match="train_softmax's result or its theta dict"):
        softmax.accuracy(tuple(fit)[::-1], x, y)
    assert info["num_classes"] == 3
    with pytest.raises(ValueError, match="300 examples but"):
        softmax.train_softmax(x, y[:10])
    with pytest.raises(ValueError, match="single class"):
        softmax.train_softmax(x, np.zeros(300, int))


@pytest.mark.slow
def test_self_taught_learning_on_digits():
    # Features from digits 5-9 (no labels) classify digits 0-4 far above chance (20%).
    images, labels = load_digits()
    cfg = TrainConfig(dataset="digits", n_hidden=36, rho=0.1, beta=3.0, lam=1e-4, steps=100)
    sae = train.run(cfg, images[labels >= 5], progress=False)
    labeled, digit = images[labels <= 4], labels[labels <= 4]
    features = np.asarray(saejax.encode(sae.state.params, jnp.asarray(labeled, jnp.float32))[1])
    half = len(labeled) // 2
    theta, _ = softmax.train_softmax(features[:half], digit[:half], steps=200)
    assert softmax.accuracy(theta, features[half:], digit[half:]) > 0.85


def test_color_patches_zca_round_trip():
    x, zca, raw = color_patches(num_patches=500, patch_size=4, seed=0)
    assert raw.shape == (500, 48) and 0.0 <= raw.min() and raw.max() <= 1.0
    np.testing.assert_allclose(zca.invert(x), raw, atol=1e-10)
    # UFLDL's ZCA with epsilon: the whitened covariance is U diag(S / (S + eps)) U^T, where
    # U S U^T is the covariance of the raw patches (computed here with NumPy's eigh).
    centred = raw - raw.mean(0)
    S, U = np.linalg.eigh(centred.T @ centred / len(raw))
    want = U @ np.diag(S / (S + 0.1)) @ U.T
    np.testing.assert_allclose(x.T @ x / len(x), want, atol=1e-10)


@pytest.mark.slow
def test_sweep_linear_probe(tmp_path):
    images, labels = load_digits()
    cfg = TrainConfig(dataset="digits", n_hidden=16, rho=0.1, steps=20, steps_per_call=10)
    res = sweeps.sweep(cfg, images, rho=[0.05, 0.2], beta=[1.0], labels=labels, probe_steps=50,
                      workdir=tmp_path, progress=False)
    for row in res.rows:
        assert 0.5 < row["probe_accuracy"] <= 1.0  # ten classes: chance is 0.1
    assert "probe_accuracy" in (tmp_path / "results.csv").read_text().splitlines()[0]
    with pytest.raises(ValueError, match="1797 examples but"):
        sweeps.sweep(cfg, images, rho=[0.1], beta=[1.0], labels=labels[:5], progress=False)
