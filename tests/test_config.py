"""TrainConfig checks itself when built, names its program group, and keys the compile cache on it
alone."""

import dataclasses
import re

import pytest

from saejax import train
from saejax.config import DEFAULT_BATCH_SIZE, PRESETS, TrainConfig, program_fields


@pytest.mark.parametrize("field, value, message", [
    ("rho", 2.0, "rho must lie strictly inside (0, 1)"),
    ("rho", 0.0, "rho must lie strictly inside (0, 1)"),
    ("beta", -1.0, "beta must be finite and >= 0"),
    ("lam", float("nan"), "lam must be finite and >= 0"),
    ("lr", 0.0, "lr must be finite and > 0"),
    ("momentum", 1.0, "momentum must lie in [0, 1)"),
    ("n_hidden", 0, "n_hidden must be a positive integer"),
    ("steps", 2.5, "steps must be a positive integer"),
    ("seed", -1, "seed must be a whole number"),
    ("penalty", "l2", "penalty must be one of ['kl', 'squared', 'l1']"),
    ("optimizer", "rmsprop", "optimizer must be one of"),
    ("tied", "yes", "tied must be True or False"),
])
def test_bad_settings_raise_when_built(field, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        TrainConfig(**{field: value})
    with pytest.raises(ValueError, match=re.escape(message)):
        TrainConfig().replace(**{field: value})


def test_lbfgs_refuses_a_minibatch():
    with pytest.raises(ValueError, match="batch_size must be None for L-BFGS"):
        TrainConfig(batch_size=64)


def test_minibatch_default_lives_in_the_config():
    assert TrainConfig().batch_size is None  # L-BFGS: full batch
    assert TrainConfig(optimizer="adam").batch_size == DEFAULT_BATCH_SIZE == 256
    adam = PRESETS["ufldl-patches"].replace(optimizer="adam")
    assert adam.batch_size == 256
    assert adam.replace(optimizer="lbfgs").batch_size is None  # the new optimizer's default
    assert adam.replace(optimizer="sgd", batch_size=32).batch_size == 32
    assert TrainConfig(optimizer="sgd", batch_size=None).batch_size is None  # full batch, asked


def test_program_group_holds_exactly_the_program_settings():
    # The decision record: these settings shape the compiled program; all others are values fed
    # to it (rho, beta, lam, lr, seed) or data and logging settings.
    assert set(program_fields()) == {
        "arch", "n_hidden", "penalty", "decoder", "tied", "bandwidth", "aux_k", "aux_coeff",
        "dead_window", "optimizer", "steps", "batch_size", "schedule", "momentum",
        "lbfgs_memory", "lbfgs_memory_dtype", "grad", "member_eval", "dtype"}
    base = TrainConfig()
    others = dict(rho=0.3, beta=0.1, lam=0.5, l1=2.0, k=3, l0=0.5, normalize="standardize",
                  lr=0.2, seed=9, data="x.mat", num_examples=7,
                  patch_size=4, steps_per_call=3, log_every=2, checkpoint_every=5,
                  checkpoint_seconds=1.5, keep_checkpoints=1, dataset="digits")
    assert set(others) | set(program_fields()) == {f.name for f in dataclasses.fields(base)}
    assert base.replace(**others).program() == base.program()
    for name, value in dict(n_hidden=7, optimizer="adam", dtype="float64", steps=9).items():
        assert base.replace(**{name: value}).program() != base.program(), name


def test_compile_cache_keys_on_the_program_alone():
    base = TrainConfig(n_hidden=3)
    same = base.replace(rho=0.2, beta=1.0, seed=4, log_every=3, num_examples=50)
    assert train.jitted_train_chunk(same) is train.jitted_train_chunk(base)
    assert train.jitted_train_chunk(base.replace(n_hidden=4)) is not train.jitted_train_chunk(base)
