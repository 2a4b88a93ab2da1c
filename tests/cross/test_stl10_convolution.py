"""experiments/reproduce/stl10_convolution.py: the exercise's files read in MATLAB's layout, a
run on small stand-ins for them, and the message without them."""

import json
import sys

import numpy as np
import pytest
from scipy.io import savemat

from experiments.reproduce import stl10_convolution as stl


def write_subset(home, rng, train=6, test=4):
    for split, n in (("train", train), ("test", test)):
        images = rng.uniform(size=(64, 64, 3, n))  # MATLAB's (64, 64, 3, B)
        savemat(home / f"stl{split.title()}Subset.mat",
                {f"{split}Images": images, f"{split}Labels": (np.arange(n) % 4 + 1)[:, None]})


def test_the_files_are_read_in_matlabs_layout(tmp_path):
    rng = np.random.default_rng(0)
    write_subset(tmp_path, rng)
    images, labels = stl.load_subset(tmp_path / "stlTrainSubset.mat", "train")
    from scipy.io import loadmat

    stored = loadmat(tmp_path / "stlTrainSubset.mat")["trainImages"]
    np.testing.assert_array_equal(images[2], stored[:, :, :, 2])
    np.testing.assert_array_equal(labels, [0, 1, 2, 3, 0, 1])


def test_without_the_files_it_says_how_to_get_them(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["stl10", "--stl", str(tmp_path), "--workdir",
                                      str(tmp_path / "r")])
    stl.main()
    said = capsys.readouterr().out
    assert said.startswith("not run: needs stlTrainSubset.mat and stlTestSubset.mat")
    assert stl.SUBSET_URL in said and not (tmp_path / "r").exists()


@pytest.mark.slow
def test_a_run_on_stand_ins_reports_its_accuracy(tmp_path, monkeypatch, capsys):
    write_subset(tmp_path, np.random.default_rng(1))
    monkeypatch.setattr(sys, "argv", ["stl10", "--stl", str(tmp_path), "--steps", "3",
                                      "--num-patches", "300", "--workdir", str(tmp_path / "r")])
    stl.main()
    said = capsys.readouterr().out
    result = json.loads((tmp_path / "r" / "result.json").read_text())
    assert f"test accuracy: {100 * result['test_accuracy']:.2f}%" in said
    assert result["train_accuracy"] == 1.0  # 3,600 features separate 6 images
    assert result["patches"] == "the embedded colour photographs"


def test_a_file_that_is_not_the_subset_is_refused_before_anything_trains(tmp_path, monkeypatch):
    for name in stl.SUBSET:  # a .mat file of other arrays under the subset's names
        savemat(tmp_path / name, {"IMAGES": np.zeros((4, 4, 2))})

    def no_training(*args, **kwargs):
        raise AssertionError("trained before the subset was read")

    monkeypatch.setattr(stl.train, "run", no_training)
    monkeypatch.setattr(sys, "argv", ["stl10", "--stl", str(tmp_path), "--workdir",
                                      str(tmp_path / "r")])
    with pytest.raises(ValueError, match="holds no trainImages and trainLabels: it is not "
                                         "UFLDL's stlTrainSubset.mat"):
        stl.main()
    assert not (tmp_path / "r").exists()
    monkeypatch.setattr(sys, "argv", ["stl10", "--stl", str(tmp_path), "--resume"])
    with pytest.raises(SystemExit) as exit_:  # no --resume: the script does not continue runs
        stl.main()
    assert exit_.value.code == 2
