"""records.sweep_record: a resumed sweep must be the same sweep (grid, settings, block size,
data), the finished blocks are read back from disk, and members are found in their blocks."""

import csv
import hashlib
import json
from dataclasses import asdict

import numpy as np
import pytest

from saejax.config import TrainConfig
from saejax.records import sweep_record
from saejax.records.files import fingerprint
from saejax.records.rundir import RunDirError
from saejax.sweeps.grid import make_grid

X = np.random.default_rng(0).uniform(0.05, 0.95, (20, 4))


def record(config=None, rho=(0.05, 0.1, 0.2), chunk_size=2, data=X):
    """config.json of a sweep, as sweeps.runner writes it."""
    config = config or TrainConfig(n_hidden=3, optimizer="adam", steps=4)
    return {"kind": "sweep", "config": asdict(config),
            "grid": asdict(make_grid(config, rho=list(rho), beta=[3.0])), "mode": "product",
            "chunk_size": chunk_size, "data_fingerprint": fingerprint(data),
            "environment": {"platform": "test"}}


def test_the_fingerprint_is_the_datas():
    assert fingerprint(X) == fingerprint(X.copy())
    assert fingerprint(X) == fingerprint(np.asfortranarray(X))
    other = X.copy()
    other[3, 1] += 1e-12
    assert fingerprint(other) != fingerprint(X)
    assert fingerprint(X[:10]) != fingerprint(X)
    assert fingerprint(X.astype(np.float32)) != fingerprint(X)
    assert len(fingerprint(X)) == 16
    # a stream: its cache's sha256, then its evaluation rows' fingerprint, hashed together
    cache = "ab" * 32
    want = hashlib.sha256((cache + fingerprint(X)).encode()).hexdigest()[:16]
    assert fingerprint(X, cache) == want != fingerprint(X, "cd" * 32)


def test_a_resume_of_another_sweep_is_refused_naming_what_changed(tmp_path):
    saved = record()
    sweep_record.SweepRecord.open(tmp_path, saved, resume=False)
    written = (tmp_path / "config.json").read_text()
    assert json.loads(written) == json.loads(json.dumps(saved))
    other_data = X.copy()
    other_data[0, 0] = 0.5
    changes = [
        (record(rho=(0.05, 0.1, 0.3)), r"grid: rho \(0.05, 0.1, 0.2\) -> \(0.05, 0.1, 0.3\)"),
        (record(config=TrainConfig(n_hidden=4, optimizer="adam", steps=4)),
         "config: n_hidden 3 -> 4"),
        (record(chunk_size=3), "chunk_size: 2 -> 3"),
        (record(data=other_data), "data_fingerprint: "),
    ]
    for changed, message in changes:
        with pytest.raises(RunDirError, match=f"cannot resume the sweep in .*{message}"):
            sweep_record.SweepRecord.open(tmp_path, changed, resume=True)
    assert (tmp_path / "config.json").read_text() == written  # refused: untouched


def test_a_resume_may_change_the_record_settings_and_is_recorded(tmp_path):
    config = TrainConfig(n_hidden=3, optimizer="adam", steps=4)
    sweep_record.SweepRecord.open(tmp_path, record(config), resume=False)
    later = record(config.replace(log_every=7, checkpoint_every=2, keep_checkpoints=1))
    later["environment"] = {"platform": "another"}
    opened = sweep_record.SweepRecord.open(tmp_path, later, resume=True)
    assert opened.block == 2
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["config"]["log_every"] == 1  # the settings it began with stay recorded
    assert [r["environment"] for r in saved["resumes"]] == [{"platform": "another"}]


@pytest.mark.parametrize("rows, members, block, done", [
    (0, 6, 2, 0), (2, 6, 2, 1), (4, 6, 2, 2), (6, 6, 2, 3),
    (4, 5, 2, 2), (5, 5, 2, 3),  # the last block holds one member
    (3, 3, 4, 1), (0, 3, 4, 0),  # one block, padded
])
def test_finished_blocks_counts_the_blocks_whose_rows_are_all_saved(rows, members, block, done):
    assert sweep_record.finished_blocks(rows, members, block) == done


def test_a_saved_block_is_read_back_and_its_members_found(tmp_path):
    rec = sweep_record.SweepRecord.open(tmp_path, record(), resume=False)
    assert rec.finished_rows() == []
    rng = np.random.default_rng(1)
    params = {"W1": rng.normal(size=(3, 3, 4)), "b1": rng.normal(size=(3, 3))}
    rows = [{**dict.fromkeys(sweep_record.COLUMNS, 0.0), "rho": r, "beta": 3.0,
             "final_loss": 1.0 + i, "diverged": False, "stop_reason": "budget"}
            for i, r in enumerate((0.05, 0.1, 0.2))]
    rec.save_block(0, rows[:2], {k: v[:2] for k, v in params.items()})
    assert rec.finished_rows() == rows[:2]
    with open(tmp_path / "results.csv") as f:
        table = list(csv.DictReader(f))
    assert tuple(table[0]) == sweep_record.COLUMNS
    assert [float(r["final_loss"]) for r in table] == [1.0, 2.0]
    for i in (0, 1):
        member = sweep_record.load_member(tmp_path, i)
        for k, v in params.items():
            np.testing.assert_array_equal(member[k], v[i])
    with pytest.raises(FileNotFoundError, match="member 2's block .* has not finished it yet"):
        sweep_record.load_member(tmp_path, 2)
    with pytest.raises(IndexError, match="member 3 is outside the sweep's 3 members"):
        sweep_record.load_member(tmp_path, 3)
    with pytest.raises(FileNotFoundError, match="a sweep's run directory"):
        sweep_record.load_member(tmp_path / "elsewhere", 0)


def test_a_sweep_recorded_before_member_eval_existed_resumes_as_blocked(tmp_path):
    # config.EARLIER_DEFAULTS: sweeps written before the setting compiled the blocked evaluation
    config = TrainConfig(n_hidden=3, optimizer="adam", steps=4, member_eval="blocked")
    old = record(config)
    del old["config"]["member_eval"]
    sweep_record.SweepRecord.open(tmp_path, old, resume=False)
    assert sweep_record.SweepRecord.open(tmp_path, record(config), resume=True).block == 2
    with pytest.raises(RunDirError, match="member_eval 'blocked' -> 'whole'"):
        sweep_record.SweepRecord.open(tmp_path, record(config.replace(member_eval="whole")),
                                      resume=True)
