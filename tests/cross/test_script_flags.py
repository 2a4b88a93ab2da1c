"""The experiment scripts' counts and seeds: a value out of range is refused by the flag's own
rule (exit status 2, the flag named) before any work, not by a traceback from deep inside."""

import importlib
import sys

import pytest

CASES = [
    ("ica", ["--steps", "0"], "steps must be a positive integer below 2**31 (steps are "
                              "counted in int32), got 0"),
    ("ica", ["--steps", "-1"], "steps must be a positive integer below 2**31"),
    ("rica_mnist", ["--data", "d", "--seed", "-1"], "seed must be a whole number in [0, 2**31)"),
    ("sparse_coding", ["--rounds", "0"], "rounds must be a positive integer"),
    ("cnn_mnist", ["--data", "d", "--epochs", "0"], "epochs must be a positive integer"),
    ("stacked_autoencoder", ["--data", "d", "--hidden", "10", "0"], "hidden must be a positive"),
    ("stacked_autoencoder", ["--data", "d", "--lr", "0"], "lr must be finite and > 0"),
    ("ufldl_sparse_autoencoder", ["--steps", "two"], "steps must be an int, got 'two'"),
    ("ufldl_mnist", ["--data", "d", "--steps", str(2**31)], "steps must be a positive integer "
                                                           "below 2**31"),
    ("stl10_convolution", ["--num-patches", "0"], "num_patches must be a positive integer"),
]


@pytest.mark.parametrize("name, argv, said", CASES)
def test_a_count_out_of_range_is_refused_by_its_flag(name, argv, said, monkeypatch, capsys):
    script = importlib.import_module(f"experiments.reproduce.{name}")
    monkeypatch.setattr(sys, "argv", [name, *argv])
    with pytest.raises(SystemExit) as exit_:
        script.main()
    assert exit_.value.code == 2
    assert said in capsys.readouterr().err
