"""Fault injection on the records a run or sweep reads back when it resumes: garbled lines of
metrics.jsonl, a sweep block's members/ deleted, a finished sweep's results.csv garbled, JSON
files of the wrong shape or encoding. Each resumes to the uninterrupted result or is refused
naming the file."""

import json
import shutil

import numpy as np
import pytest
from helpers import small_config, sweep_config, sweep_data, tiny_data

import saejax
from saejax import cli, sweeps, train

# whole trainings and sweeps: the slow tier (make test, CI)
pytestmark = pytest.mark.slow


def test_garbled_lines_of_metrics_jsonl_are_dropped_on_resume(tmp_path):
    cfg = small_config(steps=6, steps_per_call=3, checkpoint_every=3)
    want = train.run(cfg, tiny_data(), progress=False)
    run = tmp_path / "run"
    train.run(cfg.replace(steps=3), tiny_data(), run, progress=False)
    with open(run / "metrics.jsonl", "ab") as f:  # bytes garbled on disk, a row of the wrong
        f.write(b'{"step": 1, "loss": \xff}\n[1, 2]\n{"step": 2, "lo')  # shape, a cut line
    got = train.run(cfg, tiny_data(), run, resume=True, progress=False)
    for k, v in want.state.params.items():
        np.testing.assert_array_equal(got.state.params[k], v, err_msg=k)
    rows = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2, 3, 4, 5, 6]


def test_a_sweep_whose_block_was_deleted_trains_it_again(tmp_path):
    cfg = sweep_config(steps=4, steps_per_call=4)
    grid = dict(rho=[0.05, 0.1, 0.2, 0.3], beta=[3.0], chunk_size=2, progress=False)
    want = sweeps.sweep(cfg, sweep_data(), **grid)
    sweeps.sweep(cfg, sweep_data(), workdir=tmp_path / "s", **grid)
    shutil.rmtree(tmp_path / "s" / "members" / "00001")
    results = (tmp_path / "s" / "results.csv").read_text()
    (tmp_path / "s" / "results.csv").write_text(results[: len(results) // 2] + "\x00garbled")
    got = sweeps.sweep(cfg, sweep_data(), workdir=tmp_path / "s", resume=True, **grid)
    for k, v in want.params.items():
        np.testing.assert_array_equal(got.params[k], v, err_msg=k)
    assert (tmp_path / "s" / "results.csv").read_text() == results  # made whole again
    assert (tmp_path / "s" / "members" / "00001").is_dir()
    _, member = saejax.load(tmp_path / "s", member=3)
    np.testing.assert_array_equal(member["W1"], want.params["W1"][3])


@pytest.mark.parametrize("name, text, match", [
    ("config.json", b"\xff\xfe{", "config.json is not UTF-8 text"),
    ("config.json", b"[1, 2]", "config.json holds a JSON list, not the dict"),
    ("summary.json", b'"done"', "summary.json holds a JSON str"),
    ("config.json", b'{"kind": "run"}', "holds a record saejax cannot read (KeyError: 'config')"),
])
def test_a_garbled_json_record_is_refused_by_name(tmp_path, capsys, name, text, match):
    run = tmp_path / "run"
    train.run(small_config(steps=2, steps_per_call=2), tiny_data(), run, progress=False)
    (run / name).write_bytes(text)
    assert cli.main(["export", str(run), str(tmp_path / "out")]) == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
