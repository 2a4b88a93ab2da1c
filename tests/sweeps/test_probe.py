"""sweeps.probe: a softmax on each member's hidden code, scored on held-out examples."""

import numpy as np
import pytest

from saejax import sweeps
from saejax.config import TrainConfig
from saejax.data import load_digits
from saejax.sweeps.probe import check_split, probe


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


def two_clusters(m=40):
    """Examples near (0.2, 0.8) (class 0) and (0.8, 0.2) (class 1), alternating, so both halves
    of the data hold both classes equally."""
    labels = np.arange(m) % 2
    centres = np.array([[0.2, 0.8], [0.8, 0.2]])
    x = centres[labels] + np.random.default_rng(0).uniform(-0.05, 0.05, (m, 2))
    return x, labels


def test_probe_scores_separable_codes_perfectly_and_a_diverged_member_nan():
    x, labels = two_clusters()
    W1 = np.array([[[10.0, -10.0], [-10.0, 10.0]],  # a2 tells the clusters apart
                   [[-10.0, 10.0], [10.0, -10.0]],  # so does its mirror image
                   [[np.nan, 0.0], [0.0, 0.0]]])    # diverged: its numbers mean nothing
    params = {"W1": W1, "b1": np.zeros((3, 2)), "W2": np.zeros((3, 2, 2)),
              "b2": np.zeros((3, 2))}
    rows = [{"diverged": False}, {"diverged": False}, {"diverged": True}]
    probe(rows, params, x, labels, steps=20, configs=[TrainConfig()] * 3)
    assert rows[0]["probe_accuracy"] == 1.0 and rows[1]["probe_accuracy"] == 1.0
    assert np.isnan(rows[2]["probe_accuracy"])


def test_a_code_that_carries_nothing_scores_chance():
    # W1 = 0: every a2 is (1/2, 1/2), so the softmax sees no feature; with balanced classes
    # its gradient is zero at the start and it predicts class 0 everywhere: half right.
    x, labels = two_clusters()
    params = {"W1": np.zeros((1, 2, 2)), "b1": np.zeros((1, 2)), "W2": np.zeros((1, 2, 2)),
              "b2": np.zeros((1, 2))}
    rows = [{"diverged": False}]
    probe(rows, params, x, labels, steps=20, configs=[TrainConfig()])
    assert rows[0]["probe_accuracy"] == 0.5


@pytest.mark.parametrize("arch", ["topk", "jumprelu"])
def test_a_family_member_is_probed_on_its_own_codes(arch):
    # b1 = 1000 saturates sigmoid(W1 x + b1) at 1 for both clusters (a probe of a2 would score
    # chance), while the family's codes keep the larger latent (topk, k = 1) or the ones above
    # a threshold of 1003 (jumprelu): latent 1 fires on class 0, latent 0 on class 1
    x, labels = two_clusters()
    W1 = np.array([[[10.0, -10.0], [-10.0, 10.0]]])
    params = {"W1": W1, "b1": np.full((1, 2), 1000.0), "W2": np.zeros((1, 2, 2)),
              "b2": np.zeros((1, 2))}
    config = TrainConfig(arch=arch, k=1, n_hidden=2)
    if arch == "jumprelu":
        params["log_threshold"] = np.full((1, 2), np.log(1003.0))
    f = np.maximum(x @ W1[0].T + 1000.0, 0.0)  # pre, b2 = 0
    fired = f > (1003.0 if arch == "jumprelu" else f.min(axis=1, keepdims=True))
    np.testing.assert_array_equal(fired, np.eye(2, dtype=bool)[1 - labels])  # by hand
    rows = [{"diverged": False}]
    probe(rows, params, x, labels, steps=20, configs=[config])
    assert rows[0]["probe_accuracy"] == 1.0


def test_a_training_split_of_one_class_is_named_as_the_splits_fault():
    # sorted labels: the first half (rows 0 to 19, the probe's training split) is all class 0,
    # though the labels hold two classes; the message must not say the labels hold one class
    x, _ = two_clusters()
    labels = np.repeat([0, 1], 20)
    params = {"W1": np.zeros((1, 2, 2)), "b1": np.zeros((1, 2)), "W2": np.zeros((1, 2, 2)),
              "b2": np.zeros((1, 2))}
    with pytest.raises(ValueError, match=r"first half of the rows \(rows 0 to 19\).*single class "
                                         r"\(\[0\]\), while all 40 labels hold 2 classes\. "
                                         r"Shuffle the rows"):
        probe([{"diverged": False}], params, x, labels, steps=5, configs=[TrainConfig()])
    check_split(np.arange(40) % 2)  # alternating: both halves hold both classes


def test_a_sweep_refuses_such_labels_before_any_member_trains(tmp_path, monkeypatch):
    x, _ = two_clusters()

    def no_training(*args, **kwargs):
        raise AssertionError("a block trained before the labels were checked")

    from saejax.sweeps import runner

    monkeypatch.setattr(runner, "train_block", no_training)
    with pytest.raises(ValueError, match="Shuffle the rows"):
        sweeps.sweep(TrainConfig(n_hidden=2, steps=2), x, rho=[0.1], beta=[3.0],
                     labels=np.repeat([0, 1], 20), workdir=tmp_path / "s", progress=False)
    assert not (tmp_path / "s").exists()
