"""Fault injection on training runs: a run stopped before its first checkpoint resumes from its
start to the uninterrupted result; a run whose J is not finite from the start exits 3 with
advice its optimizer can use, on --resume too; settings that overflow the step counter are
refused before anything is written."""

import json

import numpy as np
import pytest
from helpers import small_config, tiny_data

from saejax import cli, train
from saejax.records.run_record import RunRecord

# whole trainings, sweeps and processes: the slow tier (make test, CI)
pytestmark = pytest.mark.slow


class Killed(Exception):
    """Stands for the signal that ends a process mid-run."""


def test_a_run_stopped_before_its_first_checkpoint_resumes_from_its_start(tmp_path,
                                                                          monkeypatch):
    cfg = small_config(optimizer="adam", lr=0.01, batch_size=8, steps=10, checkpoint_every=5,
                       checkpoint_seconds=3600.0)  # no checkpoint until the end
    want = train.run(cfg, tiny_data(), progress=False)
    log = RunRecord.log

    def killed_after_logging(self, rows):
        log(self, rows)
        raise Killed

    monkeypatch.setattr(RunRecord, "log", killed_after_logging)
    with pytest.raises(Killed):
        train.run(cfg, tiny_data(), tmp_path / "run", progress=False)
    monkeypatch.undo()
    assert (tmp_path / "run" / "metrics.jsonl").read_text()  # it logged before it stopped
    assert not list((tmp_path / "run" / "checkpoints").glob("*/"))
    got = train.run(cfg, tiny_data(), tmp_path / "run", resume=True, progress=False)
    for k, v in want.state.params.items():
        np.testing.assert_array_equal(got.state.params[k], v, err_msg=k)
    rows = [json.loads(r) for r in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(10)) + [10]  # each step once, then final


def test_lbfgs_overflowing_from_the_start_exits_3_and_writes_nothing(tmp_path, capsys):
    workdir = str(tmp_path / "run")
    argv = ["train", "--preset", "digits", "--num-examples", "100", "--n-hidden", "25",
            "--steps", "20", "--steps-per-call", "10", "--checkpoint-every", "10",
            "--checkpoint-seconds", "0", "--beta", "1e38", "--workdir", workdir, "--no-progress"]
    assert cli.main(argv) == 3
    err = capsys.readouterr().err
    assert "NaN or Inf (inf) at the starting point (step 0)" in err
    assert "lower beta (now 1e+38)" in err.lower() and "learning rate" not in err  # L-BFGS has none
    assert not (tmp_path / "run").exists()  # so no resume can report it a success
    assert cli.main([*argv, "--resume"]) == 2
    assert "holds no training run" in capsys.readouterr().err


def test_adam_from_a_starting_point_with_j_infinite_exits_3_and_writes_nothing(tmp_path):
    cfg = small_config(optimizer="adam", lr=0.01, batch_size=8, dtype="float32", beta=1e38,
                       n_hidden=25)
    with pytest.raises(train.DivergenceError, match="at the starting point") as info:
        train.run(cfg, tiny_data(), tmp_path / "run", progress=False)
    assert "Lower the learning rate" in str(info.value)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("flag", ["--steps", "--steps-per-call", "--log-every",
                                  "--checkpoint-every"])
def test_a_count_beyond_the_step_counter_is_refused_before_anything_is_written(
        tmp_path, capsys, flag):
    code = cli.main(["train", "--preset", "digits", flag, str(10**12), "--workdir",
                     str(tmp_path / "run"), "--no-progress"])
    assert code == 2
    assert "below 2**31" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
