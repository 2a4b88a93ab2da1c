"""`saejax gradcheck --arch`: the family checked three ways, each architecture named in the report,
and a planted wrong gradient caught (exit 1)."""

import json

import pytest

from saejax import cli
from saejax.architectures import relu_l1

FAMILY = ("relu-l1", "topk", "batchtopk", "jumprelu")


@pytest.mark.slow
def test_all_archs_pass(capsys):
    assert cli.main(["gradcheck", "--arch", "all"]) == 0
    out = capsys.readouterr().out
    for arch in FAMILY:
        assert f"loss | arch={arch}" in out
    assert "arch=topk (aux loss)" in out and "arch=jumprelu (inside the kernel)" in out
    assert "loss | penalty=kl | sigmoid decoder" in out  # and the sigmoid network's checks
    assert "all checks passed" in out


def test_family_json(capsys):
    code = cli.main(["gradcheck", "--arch", "topk", "jumprelu", "--json", "--n-visible", "5",
                     "--n-hidden", "4", "--m", "6", "--k", "2"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["passed"] and out["checks"] == []  # no sigmoid check asked for
    assert out["problem"]["k"] == 2 and out["problem"]["archs"] == ["topk", "jumprelu"]
    assert [(r["arch"], r["variant"]) for r in out["family"]] == [
        ("topk", ""), ("topk", "aux loss"), ("jumprelu", ""), ("jumprelu", "inside the kernel")]
    for r in out["family"]:
        d = r["differences"]
        assert d["analytic~autodiff"]["all"] < 1e-12
        assert d["analytic~numerical"]["all"] < 1e-9 and r["margin"] > 1e-3
    inside = out["family"][3]
    assert inside["autodiff_only"] == ["log_threshold"]
    # The pseudo-derivative is nonzero there, finite differences see 0: reported, not gated.
    assert inside["differences"]["analytic~numerical"]["log_threshold"] == 1.0
    assert inside["differences"]["analytic~autodiff"]["log_threshold"] < 1e-12


def test_float32_checks_every_architecture_at_its_default_step(capsys):
    # jumprelu's thresholds leave no point off its kernels at the others' step 1e-3: it takes 1e-4
    code = cli.main(["gradcheck", "--arch", "all", "--dtype", "float32", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["passed"]
    eps = {r["arch"]: r["eps"] for r in out["family"]}
    assert eps == {"relu-l1": 1e-3, "topk": 1e-3, "batchtopk": 1e-3,
                   "jumprelu": pytest.approx(1e-4)}
    assert all(r["dtype"] == "float32" for r in out["family"])


def test_default_is_the_sigmoid_network(capsys):
    assert cli.main(["gradcheck", "--penalty", "kl", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["family"] == [] and [c["penalty"] for c in out["checks"]] == ["kl"]


def test_planted_wrong_gradient_fails(capsys, monkeypatch):
    right = relu_l1.terms_and_grad

    def wrong(*args, **kw):
        terms, grads = right(*args, **kw)
        return terms, {**grads, "W1": 1.01 * grads["W1"]}

    monkeypatch.setattr(relu_l1, "terms_and_grad", wrong)
    assert cli.main(["gradcheck", "--arch", "relu-l1"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "SOME CHECKS FAILED" in out


def test_k_above_n_hidden_is_bad_input(capsys):
    assert cli.main(["gradcheck", "--arch", "topk", "--k", "6"]) == 2
    assert "k = 6 exceeds the 5 latents" in capsys.readouterr().err


@pytest.mark.slow  # the command line over saejax.*.check, which the fast tier tests
def test_the_convolutional_network_is_checked_three_ways(capsys):
    assert cli.main(["gradcheck", "--cnn", "--penalty", "kl"]) == 0
    out = capsys.readouterr().out
    assert "convolutional network 12x12 images, 2 filters 5x5" in out and "all checks passed" in out
    assert cli.main(["gradcheck", "--cnn", "--penalty", "kl", "--json"]) == 0
    conv = json.loads(capsys.readouterr().out)["cnn"]
    assert conv["passed"] and conv["differences"]["analytic~autodiff"] < 1e-10
    assert conv["differences"]["analytic~numerical"] < 1e-7


@pytest.mark.slow  # the command line over saejax.*.check, which the fast tier tests
def test_a_planted_wrong_convolution_gradient_fails(capsys, monkeypatch):
    from saejax import cnn

    right = cnn.loss_and_grad

    def wrong(*args, **kw):
        cost, grads = right(*args, **kw)
        return cost, {**grads, "Wc": grads["Wc"].at[0, 0, 0].add(1e-3)}

    monkeypatch.setattr(cnn, "loss_and_grad", wrong)
    assert cli.main(["gradcheck", "--cnn", "--penalty", "kl"]) == 1
    assert "SOME CHECKS FAILED" in capsys.readouterr().out


@pytest.mark.slow  # the command line over saejax.*.check, which the fast tier tests
def test_rica_is_checked_three_ways(capsys):
    assert cli.main(["gradcheck", "--rica", "--penalty", "kl", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rica"]["passed"] and out["cnn"] is None
    assert out["rica"]["differences"]["analytic~autodiff"] < 1e-10
    assert out["rica"]["differences"]["analytic~numerical"] < 1e-7


@pytest.mark.slow  # the command line over saejax.*.check, which the fast tier tests
def test_sparse_coding_is_checked_three_ways(capsys):
    assert cli.main(["gradcheck", "--sparse-coding", "--penalty", "kl", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sparse_coding"]["passed"] and out["rica"] is None
    assert out["sparse_coding"]["differences"]["analytic~numerical"] < 1e-7


@pytest.mark.slow  # the command line over saejax.*.check, which the fast tier tests
def test_orthonormal_ica_is_checked_three_ways(capsys):
    assert cli.main(["gradcheck", "--ica", "--penalty", "kl", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ica"]["passed"] and out["sparse_coding"] is None
    assert out["ica"]["differences"]["analytic~autodiff"] < 1e-10
    assert out["ica"]["differences"]["analytic~numerical"] < 1e-7


@pytest.mark.slow  # the command line over saejax.*.check, which the fast tier tests
def test_a_wrong_ica_gradient_fails_the_command(capsys, monkeypatch):
    from saejax import ica

    right = ica.cost_and_grad
    monkeypatch.setattr(ica, "cost_and_grad",  # the 1/m left out of the gradient
                        lambda W, x, eps: (right(W, x, eps)[0], right(W, x, eps)[1] * len(x)))
    assert cli.main(["gradcheck", "--ica", "--penalty", "kl"]) == 1
    assert "SOME CHECKS FAILED" in capsys.readouterr().out
