"""TrainConfig's rules for the family: what each architecture refuses, and what it resolves."""

import pytest

from saejax.config import DEFAULT_BATCH_SIZE, TrainConfig


def test_lbfgs_refused_for_a_selection():
    for arch in ("topk", "batchtopk", "jumprelu"):
        with pytest.raises(ValueError, match="L-BFGS"):
            TrainConfig(arch=arch, optimizer="lbfgs")
    assert TrainConfig(arch="relu-l1", optimizer="lbfgs").optimizer == "lbfgs"  # continuous


def test_k_above_n_hidden_refused():
    # Checked where training starts (check_k), not when the config is built: a sweep's base k
    # is never trained.
    with pytest.raises(ValueError, match="k = 6 exceeds the 5 latents"):
        TrainConfig(arch="topk", n_hidden=5, k=6).check_k()
    with pytest.raises(ValueError, match="k = 7 exceeds"):
        TrainConfig(arch="batchtopk", n_hidden=5, k=5).check_k(7)  # a swept value
    TrainConfig(arch="topk", n_hidden=5, k=5).check_k()
    TrainConfig(arch="jumprelu", n_hidden=5, k=6).check_k()  # k is not jumprelu's knob


@pytest.mark.parametrize("arch", ["relu-l1", "topk", "batchtopk", "jumprelu"])
def test_tied_refused(arch):
    with pytest.raises(ValueError, match="tied"):
        TrainConfig(arch=arch, tied=True)


def test_family_resolves_linear_and_adam():
    config = TrainConfig(arch="topk")
    assert (config.decoder, config.optimizer, config.batch_size) == ("linear", "adam",
                                                                     DEFAULT_BATCH_SIZE)
    with pytest.raises(ValueError, match="linear decoder"):
        TrainConfig(arch="topk", decoder="sigmoid")


def test_replace_arch_resolves_again():
    sigmoid = TrainConfig()
    assert (sigmoid.decoder, sigmoid.optimizer, sigmoid.batch_size) == ("sigmoid", "lbfgs", None)
    family = sigmoid.replace(arch="jumprelu")
    assert (family.decoder, family.optimizer, family.batch_size) == ("linear", "adam",
                                                                     DEFAULT_BATCH_SIZE)
    back = family.replace(arch="sigmoid")
    assert (back.decoder, back.optimizer, back.batch_size) == ("sigmoid", "lbfgs", None)
    # A choice given with the new arch is kept.
    assert sigmoid.replace(arch="relu-l1", optimizer="sgd").optimizer == "sgd"
