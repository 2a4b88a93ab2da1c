"""The experiment scripts' counts, seeds and input paths: a bad value is refused by the flag's own
rule (exit status 2, the flag named) before any work, not by a traceback from deep inside; and
bad input found later is one line and exit status 2 (``experiments.common.run_script``)."""

import importlib
import os
import sys

import pytest

HERE = os.path.dirname(__file__)
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
    ("bench.compare_gradients", ["--repeats", "0"], "repeats must be a positive integer"),
    ("bench.topk", ["--repeats", "-3"], "repeats must be a positive integer"),
    ("bench.lbfgs_memory", ["--memory", "5", "0"], "memory must be a positive integer"),
    ("bench.lbfgs_memory", ["--mnist", "/nowhere/mnist"], "argument --mnist: /nowhere/mnist is "
                                                          "not a directory"),
    ("peers.scipy_exercise", ["--data", __file__, "--steps", "0"], "argument --steps: expected "
                                                                   "a positive integer, got 0"),
    ("peers.scipy_exercise", ["--data", "/nowhere/IMAGES.mat"],
     "argument --data: /nowhere/IMAGES.mat: no such file; pass the path of an existing file"),
    ("peers.scipy_exercise", ["--data", HERE], f"argument --data: {HERE}: is a directory"),
]


@pytest.mark.parametrize("name, argv, said", CASES)
def test_a_bad_value_is_refused_by_its_flag(name, argv, said, monkeypatch, capsys):
    module = name if name.startswith(("bench.", "peers.")) else f"reproduce.{name}"
    script = importlib.import_module(f"experiments.{module}")
    monkeypatch.setattr(sys, "argv", [name, *argv])
    with pytest.raises(SystemExit) as exit_:
        script.main()
    assert exit_.value.code == 2
    assert said in capsys.readouterr().err


def test_a_missing_file_found_after_parsing_is_one_line_and_status_2(tmp_path, monkeypatch,
                                                                      capsys):
    from experiments.bench import ufldl
    from experiments.common import run_script

    monkeypatch.setattr(sys, "argv", ["ufldl.py", "--data", str(tmp_path / "IMAGES.mat"),
                                      "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit) as exit_:
        run_script(ufldl.main)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("ufldl.py: error: ") and "IMAGES.mat: does not exist" in err
    assert not (tmp_path / "out").exists()


def test_a_failed_child_process_shows_its_own_error():
    from experiments.common import ChildError, timed_process

    with pytest.raises(ChildError, match=r"failed \(exit status 1\):\nrho must lie in \(0, 1\)"):
        timed_process([sys.executable, "-c", "import sys; sys.exit('rho must lie in (0, 1)')"])
