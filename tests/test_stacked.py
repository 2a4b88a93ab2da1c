"""Stacked autoencoders: the fine-tuning cost against NumPy, its hand-written gradient three ways,
greedy pretraining against standalone runs on NumPy features, and fine-tuning."""

import json

import jax.numpy as jnp
import numpy as np
import pytest

from saejax import cli, stacked, train
from saejax.config import TrainConfig


def numpy_cost(stack, x, labels, lam):
    a = np.asarray(x)
    for layer in stack["layers"]:
        a = 1.0 / (1.0 + np.exp(-(a @ np.asarray(layer["W"]).T + np.asarray(layer["b"]))))
    logits = a @ np.asarray(stack["softmax"]["W"]).T + np.asarray(stack["softmax"]["b"])
    logits -= logits.max(axis=1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    nll = -np.mean(log_p[np.arange(len(labels)), np.asarray(labels)])
    return nll + 0.5 * lam * np.sum(np.asarray(stack["softmax"]["W"]) ** 2)


@pytest.mark.parametrize("sizes", [(8, 5), (8, 5, 4), (6, 5, 4, 3)])
def test_cost_and_its_gradient_three_ways(sizes):
    net, x, labels = stacked.problem(sizes, num_classes=3, m=10, seed=len(sizes))
    value, _ = stacked.value_and_grad(net, x, labels, 1e-3)
    np.testing.assert_allclose(float(value), numpy_cost(net, x, labels, 1e-3), rtol=1e-12)
    result = stacked.check(net, x, labels, 1e-3)
    assert result["passed"], result
    assert result["differences"]["analytic~numerical"] < 1e-9


def test_features_are_the_top_layer_in_numpy_and_float32_stays_float32():
    net, x, labels = stacked.problem((8, 5, 4), seed=7)
    a = np.asarray(x)
    for layer in net["layers"]:
        a = 1.0 / (1.0 + np.exp(-(a @ np.asarray(layer["W"]).T + np.asarray(layer["b"]))))
    np.testing.assert_allclose(stacked.features(net, x), a, rtol=1e-13)
    net32 = {"layers": [{k: v.astype(jnp.float32) for k, v in layer.items()}
                        for layer in net["layers"]],
             "softmax": {k: v.astype(jnp.float32) for k, v in net["softmax"].items()}}
    value, grad = stacked.value_and_grad(net32, x.astype(jnp.float32), labels, 1e-3)
    assert value.dtype == jnp.float32
    assert all(g.dtype == jnp.float32 for layer in grad["layers"] for g in layer.values())
    assert all(g.dtype == jnp.float32 for g in grad["softmax"].values())
    assert float(value) == pytest.approx(numpy_cost(net, x, labels, 1e-3), rel=1e-5)


def test_a_float32_problem_is_checked_with_float32_steps_and_tolerances():
    net, x, labels = stacked.problem((6, 4), num_classes=3, m=8, dtype=jnp.float32, seed=2)
    assert x.dtype == net["softmax"]["W"].dtype == net["layers"][0]["W"].dtype == jnp.float32
    # class indices as finetune_adam and train_softmax pass them to the compiled code
    assert labels.dtype == jnp.int32 and set(np.asarray(labels).tolist()) <= {0, 1, 2}
    result = stacked.check(net, x, labels, 1e-3)
    assert result["dtype"] == "float32"
    assert result["tolerances"] == {"analytic~autodiff": 1e-5, "analytic~numerical": 2e-2,
                                    "autodiff~numerical": 2e-2}
    assert result["passed"], result  # float32 differences of a step of 1e-2, not 2e-5


def test_the_check_catches_a_wrong_gradient(monkeypatch):
    net, x, labels = stacked.problem()
    right = stacked.value_and_grad

    def without_decay(stack, x, labels, lam):  # the softmax weight decay left out
        value, grad = right(stack, x, labels, lam)
        grad["softmax"]["W"] = grad["softmax"]["W"] - lam * stack["softmax"]["W"]
        return value, grad

    monkeypatch.setattr(stacked, "value_and_grad", without_decay)
    assert not stacked.check(net, x, labels, 0.1)["passed"]


def test_gradcheck_cli_checks_the_stack(capsys):
    assert cli.main(["gradcheck", "--stacked", "--penalty", "kl"]) == 0
    out = capsys.readouterr().out
    assert "stacked network 8-5-5-3 fine-tuning gradient" in out and "PASS" in out


@pytest.mark.slow
def test_pretraining_feeds_each_layer_the_features_of_the_one_below(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(0.05, 0.95, (40, 9))
    configs = [TrainConfig(dataset="digits", n_hidden=h, rho=0.1, beta=3.0, lam=1e-3, steps=15,
                           steps_per_call=15, dtype="float64") for h in (6, 4)]
    results = stacked.pretrain(configs, x, tmp_path, progress=False, data_info={"name": "x"})
    for layer, inputs in ((1, "data"), (2, "layer 1 features")):  # what config.json records
        data = json.loads((tmp_path / f"layer{layer}" / "config.json").read_text())["data"]
        assert (data["name"], data["layer"], data["inputs"]) == ("x", layer, inputs)
    unrecorded = stacked.pretrain(configs[:1], x, progress=False)  # no workdir: nothing written
    np.testing.assert_array_equal(unrecorded[0].state.params["W1"], results[0].state.params["W1"])
    w1 = {k: np.asarray(v) for k, v in results[0].state.params.items()}
    features = 1.0 / (1.0 + np.exp(-(x @ w1["W1"].T + w1["b1"])))  # NumPy, not saejax
    alone = train.run(configs[1], features, progress=False)
    assert results[1].summary["final_loss"] == pytest.approx(alone.summary["final_loss"],
                                                             rel=1e-9)
    np.testing.assert_allclose(results[1].state.params["W1"], alone.state.params["W1"],
                               atol=1e-9)


@pytest.mark.slow
def test_finetuning_lowers_the_cost_and_fits_the_training_set():
    rng = np.random.default_rng(1)
    centers = rng.uniform(0, 1, (3, 8))
    labels = np.repeat(np.arange(3), 20)
    x = np.clip(centers[labels] + rng.normal(0, 0.05, (60, 8)), 0, 1)
    layers = [{"W1": rng.normal(0, 0.3, (5, 8)), "b1": np.zeros(5)},
              {"W1": rng.normal(0, 0.3, (4, 5)), "b1": np.zeros(4)}]
    net, top = stacked.softmax_on_top(layers, x, labels, lam=1e-4, steps=20)
    assert top.shape == (60, 4)
    before = float(stacked.cost(net, jnp.asarray(x), jnp.asarray(labels), 1e-4))
    tuned, info = stacked.finetune(net, x, labels, lam=1e-4, steps=50)
    after = float(stacked.cost(tuned, jnp.asarray(x), jnp.asarray(labels), 1e-4))
    assert after < before and info["final_loss"] <= info["loss"][0]
    assert info["final_loss"] == pytest.approx(after, rel=1e-12) and len(info["loss"]) == 50
    assert stacked.stack_accuracy(tuned, x, labels) == 1.0
    tuned, info = stacked.finetune_adam(net, x, labels, lam=1e-4, epochs=40, batch_size=10,
                                        lr=1e-2)
    assert len(info["loss"]) == 40 and info["final_loss"] < info["loss"][0]
    after = float(stacked.cost(tuned, jnp.asarray(x), jnp.asarray(labels), 1e-4))
    assert after < before and info["final_loss"] == pytest.approx(after, rel=1e-12)
    assert stacked.stack_accuracy(tuned, x, labels) == 1.0


@pytest.mark.slow  # one compiled epoch
def test_adam_takes_any_batch_size_from_one_to_every_example():
    net, x, labels = stacked.problem((8, 5), m=6, seed=3)
    tuned, info = stacked.finetune_adam(net, x, labels, epochs=3, batch_size=1, lr=1e-2)
    # three epochs of six one-example steps lower J on all six (NumPy's, not saejax's)
    assert len(info["loss"]) == 3
    assert info["final_loss"] == pytest.approx(numpy_cost(tuned, x, labels, 1e-4), rel=1e-12)
    assert info["final_loss"] < numpy_cost(net, x, labels, 1e-4) - 1e-3
    for bad in (0, 7):
        with pytest.raises(ValueError, match=r"batch_size must lie in \[1, 6\]"):
            stacked.finetune_adam(net, x, labels, batch_size=bad)


@pytest.mark.slow  # a compiled softmax fit
def test_the_softmax_on_one_float32_layer_is_float32_whatever_the_data():
    rng = np.random.default_rng(4)
    x, labels = rng.uniform(0, 1, (30, 6)), np.arange(30) % 3  # float64 data
    layer = {"W1": rng.normal(0, 0.3, (4, 6)).astype(np.float32), "b1": np.zeros(4, np.float32)}
    net, top = stacked.softmax_on_top([layer], x, labels, steps=5)
    want = 1.0 / (1.0 + np.exp(-(x @ layer["W1"].T.astype(np.float64))))  # NumPy, float64
    assert top.dtype == np.float32 and top.shape == (30, 4)
    np.testing.assert_allclose(top, want, rtol=1e-5)
    assert {a.dtype for a in (*net["layers"][0].values(), *net["softmax"].values())} == {
        jnp.dtype(jnp.float32)}


def test_pretraining_refuses_any_architecture_but_the_sigmoid_networks(tmp_path):
    # a topk layer's features are not sigmoid(W1 x + b1), which the stack computes: refused
    # before any layer trains (nothing is written)
    configs = [TrainConfig(dataset="digits", n_hidden=6, steps=2),
               TrainConfig(dataset="digits", arch="topk", k=2, n_hidden=4, steps=2)]
    with pytest.raises(ValueError, match=r"configs\[1\] has arch 'topk'.*arch='sigmoid'"):
        stacked.pretrain(configs, np.full((10, 9), 0.5), tmp_path, progress=False)
    assert not any(tmp_path.iterdir())


def test_labels_beyond_the_softmax_and_data_of_the_wrong_width_are_refused():
    net, x, labels = stacked.problem((8, 5), num_classes=3, m=6)
    too_big = np.asarray(labels).copy()
    too_big[0] = 3  # the softmax has classes 0, 1, 2: J would be NaN
    for tune in (stacked.finetune, stacked.finetune_adam):
        with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\).*hold 3"):
            tune(net, x, too_big)
        with pytest.raises(ValueError, match="data has 7 features per row but .*=8"):
            tune(net, x[:, :7], labels)
    with pytest.raises(ValueError, match="x has 7 features per row but .*=8"):
        stacked.stack_accuracy(net, x[:, :7], labels)
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        stacked.finetune(net, x, labels, steps=0)


def test_a_softmax_on_top_of_no_layers_is_refused_by_name():
    x, labels = np.full((4, 3), 0.5), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="layer_params is empty.*train_softmax"):
        stacked.softmax_on_top([], x, labels)
    layer = {"W1": np.zeros((2, 5)), "b1": np.zeros(2)}
    with pytest.raises(ValueError, match="data has 3 features per row but .*=5"):
        stacked.softmax_on_top([layer], x, labels)
