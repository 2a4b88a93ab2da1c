"""Fault injection on inputs: arrays that are not real numbers, data a preset would ignore,
networks that cannot fit in memory and NaN data to encode are refused, with exit status 2 on
the command line and nothing written."""

import jax
import numpy as np
import pytest
from helpers import small_config, tiny_data

import saejax
from saejax import cli, train
from saejax.runtime import memory


@pytest.mark.parametrize("data, what", [
    (tiny_data() + 1j, "complex"), (tiny_data().astype(str), "string"),
    (tiny_data().astype(object), "object")])
def test_arrays_that_are_not_real_numbers_are_refused(tmp_path, capsys, data, what):
    with pytest.raises(ValueError, match=f"real numeric array .*got {what} values"):
        train.run(small_config(steps=2), data, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
    np.save(tmp_path / "x.npy", data, allow_pickle=True)
    assert cli.main(["train", "--data", str(tmp_path / "x.npy"), "--steps", "2", "--workdir",
                     str(tmp_path / "cli"), "--no-progress"]) == 2
    assert "error" in capsys.readouterr().err
    assert not (tmp_path / "cli").exists()


def test_data_a_preset_would_ignore_is_refused(tmp_path, capsys):
    assert cli.main(["train", "--preset", "digits", "--data", str(tmp_path), "--workdir",
                     str(tmp_path / "run"), "--no-progress"]) == 2
    assert "the digits data are embedded, so --data" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_the_memory_estimate_by_hand_and_a_network_that_cannot_fit(tmp_path, capsys,
                                                                    monkeypatch):
    # 4-3-4 untied, float32, adam on batches of 8 of 10 examples, 6 steps in calls of 5:
    # params 3*4*2 + 3 + 4 = 31, state 4 * 31 = 124, activations 8 * (4*3 + 2*4) = 160, rows
    # 16 values * 5 steps = 80, data 10 * 4 = 40; 4 bytes each.
    cfg = small_config(n_hidden=3, dtype="float32", optimizer="adam", batch_size=8, steps=6,
                       steps_per_call=5)
    assert memory.estimate_bytes(cfg, 10, 4) == 4 * (31 + 124 + 160 + 80 + 40)
    # L-BFGS of memory 5 on the full batch (10 rows < a block): state (2*5 + 6) * 31
    lbfgs = cfg.replace(optimizer="lbfgs", batch_size=None, lbfgs_memory=5)
    assert memory.estimate_bytes(lbfgs, 10, 4) == 4 * (31 + 16 * 31 + 10 * 20 + 80 + 40)
    assert memory.estimate_bytes(lbfgs, 10, 4, members=3) == 4 * (
        3 * (31 + 16 * 31 + 200 + 80) + 40)
    # a bfloat16 memory: its 10 rows at 2 bytes a value on a GPU; elsewhere XLA also widens
    # them into float32 copies as a tick reads them, 4 bytes more a value
    bf16 = lbfgs.replace(lbfgs_memory_dtype="bfloat16")
    assert memory.estimate_bytes(bf16, 10, 4, platform="gpu") == 4 * (31 + 11 * 31 + 280 + 40)
    assert memory.estimate_bytes(bf16, 10, 4, platform="cpu") == 4 * (31 + 21 * 31 + 280 + 40)
    monkeypatch.setattr(memory, "available_bytes", lambda: 16 * 2**30)  # any machine: 16 GiB
    for flags in (["--n-hidden", "10000000"], ["--steps", "1000000000", "--steps-per-call",
                                               "1000000000"]):
        assert cli.main(["train", "--preset", "digits", *flags, "--workdir",
                         str(tmp_path / "run"), "--no-progress"]) == 2
        assert "needs at least" in capsys.readouterr().err
        assert not (tmp_path / "run").exists()


def test_encode_takes_a_list_as_an_array():
    params = saejax.init_params(jax.random.key(0), 4, 3)
    x = [[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8]]
    np.testing.assert_array_equal(saejax.encode(params, x).a2,
                                  saejax.encode(params, np.asarray(x)).a2)


@pytest.mark.slow
def test_encode_refuses_nan_data(tmp_path, capsys):
    train.run(small_config(steps=2, steps_per_call=2), tiny_data(), tmp_path / "run",
              progress=False)
    bad = tiny_data()
    bad[3, 2] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    out = tmp_path / "codes.npy"
    assert cli.main(["encode", str(tmp_path / "run"), "--data", str(tmp_path / "bad.npy"),
                     "--out", str(out)]) == 2
    assert "NaN" in capsys.readouterr().err and not out.exists()
