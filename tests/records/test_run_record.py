"""records.run_record: what a resume accepts and refuses, and the metrics it keeps."""

import json

import pytest
from helpers import small_config, tiny_data

from saejax import train
from saejax.config import TrainConfig
from saejax.records import run_record
from saejax.records.checkpoints import CheckpointError
from saejax.records.rundir import RunDirError


@pytest.mark.slow
def test_incompatible_resume_and_existing_checkpoints(tmp_path):
    x = tiny_data()
    train.run(small_config(steps=5), x, tmp_path, progress=False)
    with pytest.raises(RunDirError, match="already holds a training run; nothing was changed"):
        train.run(small_config(steps=5), x, tmp_path, progress=False)
    with pytest.raises(CheckpointError, match="cannot resume"):
        train.run(small_config(steps=10, n_hidden=6), x, tmp_path, resume=True, progress=False)
    with pytest.raises(RunDirError, match="cannot resume: .* holds no training run"):
        train.run(small_config(steps=5), x, tmp_path / "empty", resume=True, progress=False)


@pytest.mark.slow
def test_resume_requires_the_same_settings_and_survives_a_torn_metrics_line(tmp_path):
    x = tiny_data()
    train.run(small_config(steps=5), x, tmp_path, progress=False)
    with pytest.raises(CheckpointError, match=r"rho: 0.1 -> 0.2"):
        train.run(small_config(steps=10, rho=0.2), x, tmp_path, resume=True, progress=False)
    # A kill in the middle of a write leaves a partial last line: resume drops it.
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 7, "loss": 0.3')
    res = train.run(small_config(steps=10, lr=0.5), x, tmp_path, resume=True, progress=False)
    steps = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").open()]
    # the first run's final row (step 5) went with the rows after the checkpoint
    assert steps == list(range(10)) + [10] and int(res.state.step) == 10


def test_read_metrics_drops_a_last_line_cut_short(tmp_path, caplog):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 0, "loss": 2.5}\n{"step": 1, "loss": 2.25}\n{"step": 2, "lo')
    assert run_record.read_metrics(path) == [{"step": 0, "loss": 2.5}, {"step": 1, "loss": 2.25}]
    assert "cut short" in caplog.text
    path.write_text("")
    assert run_record.read_metrics(path) == []


def test_final_row_is_the_summarys_j_and_terms_at_the_last_step():
    summary = {"steps": 12, "final_loss": 0.75, "reconstruction": 0.5, "weight_decay": 0.125,
               "sparsity": 0.125, "rho_hat_mean": 0.05, "rho_hat_max": 0.2, "mean_l0": 3.5,
               "fvu": 0.25, "dead_fraction": 0.0, "wall_seconds": 3.0}
    assert run_record.final_row(summary) == {
        "step": 12, "loss": 0.75, "reconstruction": 0.5, "weight_decay": 0.125,
        "sparsity": 0.125, "rho_hat_mean": 0.05, "mean_l0": 3.5, "fvu": 0.25, "final": True}


def test_saved_config_needs_a_readable_config_json(tmp_path):
    with pytest.raises(CheckpointError, match="config.json is missing"):
        run_record.saved_config(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"config": {"rho": 2.0}}))
    with pytest.raises(CheckpointError, match="is unreadable .*rho must lie strictly inside.*"
                                              "Restore it from a copy"):
        run_record.saved_config(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"config": {"rho": 0.2, "n_hidden": 7}}))
    # a record from before member_eval existed: the blocked evaluation it compiled
    assert run_record.saved_config(tmp_path) == TrainConfig(rho=0.2, n_hidden=7,
                                                            member_eval="blocked")


def test_without_a_workdir_nothing_is_written_and_nothing_is_due():
    config = small_config(steps=4)
    record = run_record.RunRecord.claim(None, config)
    assert record.begin("state", 16, {}) == ("state", [])
    record.log([{"step": 0, "loss": 1.0}])
    assert not record.due(5, 0) and record.checkpoint(5, "state") == ""
    summary = {"steps": 4, "final_loss": 0.5, "reconstruction": 0.25, "weight_decay": 0.125,
               "sparsity": 0.125, "rho_hat_mean": 0.1, "mean_l0": 2.0, "fvu": 0.5}
    assert record.finish(summary) == run_record.final_row(summary)
    with pytest.raises(ValueError, match="tensorboard=True needs a workdir"):
        run_record.RunRecord.claim(None, config, tensorboard=True)


def test_a_resume_may_change_only_the_resumable_settings(tmp_path):
    config = small_config(steps=4)
    new = run_record.RunRecord.claim(tmp_path / "run", config)
    new.begin(None, 16, {"shape": [40, 16]})
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["kind"] == "run" and saved["n_visible"] == 16
    assert [g["start_step"] for g in saved["segments"]] == [0]
    assert (tmp_path / "run" / "metrics.jsonl").read_text() == ""

    def resume(changed, n_visible=16):
        return run_record.RunRecord.claim(tmp_path / "run", changed, resume=True).begin(
            train.init_state(changed, n_visible), n_visible, {})

    with pytest.raises(CheckpointError, match=r"settings differ .*\(rho: 0.1 -> 0.3\)"):
        resume(config.replace(rho=0.3))
    with pytest.raises(CheckpointError, match=r"n_visible: 16 -> 17"):
        resume(config, n_visible=17)
    # lr, steps and the record settings may change: the check passes, and a run stopped
    # before its first checkpoint starts again from step 0, from the state given
    state, history = resume(config.replace(lr=0.5, steps=9, log_every=3, keep_checkpoints=1))
    assert int(state.step) == 0 and history == []
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert [g["start_step"] for g in saved["segments"]] == [0] and saved["resumed_from"] == 0
    assert saved["segments"][0]["steps"] == 9


def test_resumed_at_lists_the_steps_where_later_segments_began(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(
        {"kind": "run", "segments": [{"start_step": 0}, {"start_step": 10},
                                     {"start_step": 25}]}))
    record = run_record.RunRecord(tmp_path, small_config(), resume=True)
    assert record.resumed_at() == [10, 25]


@pytest.mark.parametrize("arch", ["sigmoid", "topk"])
def test_every_field_of_summary_json_is_described_in_the_docs(tmp_path, arch):
    import re

    from helpers import REPO

    from saejax.schema import RECOVERY

    x = tiny_data()
    config = small_config(steps=2) if arch == "sigmoid" else small_config(
        arch="topk", k=2, decoder="linear", optimizer="adam", batch_size=10, steps=2)
    train.run(config, x, tmp_path, progress=False)
    fields = set(json.loads((tmp_path / "summary.json").read_text())) | set(RECOVERY)
    text = (REPO / "docs" / "cli.md").read_text()
    bullet = re.search(r"^- `summary.json`:(.*?)^- ", text, re.S | re.M).group(1)
    described = set(re.findall(r"[a-z_0-9]+", bullet))
    assert sorted(fields - described) == []
