"""records.rundir: a taken directory is refused untouched, writes are atomic, and config.json's
segments say what each start and resume ran with and on."""

import json
import subprocess
from pathlib import Path

import jax
import numpy as np
import pytest
from helpers import small_config, snapshot, tiny_data

import saejax
from saejax import cli, train
from saejax.records import files, rundir


def test_claim_refuses_a_run_without_checkpoints_and_touches_nothing(tmp_path):
    # config.json and metrics.jsonl but no checkpoint: a run killed before its first save
    (tmp_path / "config.json").write_text(json.dumps({"kind": "run", "config": {}}))
    (tmp_path / "metrics.jsonl").write_text('{"step": 0}\n')
    before = snapshot(tmp_path)
    with pytest.raises(rundir.RunDirError, match="already holds a training run.*resume=True"):
        rundir.claim(tmp_path, "run", resume=False)
    with pytest.raises(rundir.RunDirError, match="holds a training run, not a sweep"):
        rundir.claim(tmp_path, "sweep", resume=True)
    assert snapshot(tmp_path) == before


def test_claim_recognises_sweeps_and_empty_directories(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "results.csv").write_text("rho\n")
    with pytest.raises(rundir.RunDirError, match="already holds a sweep"):
        rundir.claim(tmp_path / "s", "sweep", resume=False)
    with pytest.raises(rundir.RunDirError, match="cannot resume: .* holds no sweep"):
        rundir.claim(tmp_path / "new", "sweep", resume=True)
    (tmp_path / "empty").mkdir()
    assert rundir.claim(tmp_path / "empty", "run", resume=False) == tmp_path / "empty"
    assert not (tmp_path / "unmade").exists()
    rundir.claim(tmp_path / "unmade", "run", resume=False, create=False)
    assert not (tmp_path / "unmade").exists()


def test_a_directory_holding_other_files_is_refused_untouched(tmp_path, capsys):
    home = tmp_path / "pictures"
    home.mkdir()
    for name in ("filters.png", "notes.txt", "a", "b"):  # a run would overwrite filters.png
        (home / name).write_text(name)
    before = snapshot(home)
    with pytest.raises(rundir.RunDirError, match=r"pictures is not empty \(it holds a, b, "
                       r"filters.png and 1 more\).*Choose a new or empty workdir="):
        rundir.claim(home, "run", resume=False)
    assert cli.main([*TRAIN, "--steps", "2", "--workdir", str(home)]) == 2
    assert "is not empty (it holds a, b, filters.png and 1 more), and a new training run" in (
        capsys.readouterr().err)
    assert snapshot(home) == before
    (home / rundir.LOCK).write_text("")  # a lock left by a process that ended: still empty
    (home / ".DS_Store").write_text("")  # and hidden files: a run writes none of its own
    for name in ("filters.png", "notes.txt", "a", "b"):
        (home / name).unlink()
    assert rundir.claim(home, "sweep", resume=False) == home
    rundir.release(home)


def test_fresh_never_returns_an_existing_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(rundir.time, "strftime", lambda fmt: "20260101-120000")  # one second
    a = rundir.fresh("x", root=tmp_path)
    assert a == tmp_path / "x-20260101-120000"
    a.mkdir(parents=True)
    b = rundir.fresh("x", root=tmp_path)
    assert b == tmp_path / "x-20260101-120000-2" and not b.exists()


def test_write_text_replaces_whole_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "results.csv"
    files.write_text(path, "old\n")
    files.write_text(path, "new\n")
    assert path.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv"]


def test_a_failed_write_keeps_the_old_contents_and_names_the_file(tmp_path):
    path = tmp_path / "config.json"
    files.write_text(path, "old\n")

    def full_disk(tmp):
        tmp.write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(files.RecordError, match="cannot write .*config.json: No space left"):
        files.replace(path, full_disk)
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_temporary_names_are_never_shared(tmp_path, monkeypatch):
    # Two writers of one file each get their own temporary file (a fixed name let one process
    # rename the other's half-written file into place).
    path, seen = tmp_path / "config.json", []
    files.replace(path, lambda tmp: seen.append(tmp) or tmp.write_text("a"))
    files.replace(path, lambda tmp: seen.append(tmp) or tmp.write_text("b"))
    assert seen[0] != seen[1] and all(t.parent == tmp_path for t in seen)


TRAIN = ["train", "--preset", "digits", "--optimizer", "adam", "--batch-size", "32",
         "--steps-per-call", "5", "--checkpoint-every", "5", "--checkpoint-seconds", "0",
         "--no-progress"]


@pytest.mark.slow
def test_cli_refuses_taken_directories_with_exit_2(tmp_path, capsys):
    run = str(tmp_path / "run")
    assert cli.main([*TRAIN, "--steps", "10", "--workdir", run]) == 0
    before = snapshot(tmp_path / "run")
    capsys.readouterr()
    assert cli.main([*TRAIN, "--steps", "10", "--workdir", run]) == 2
    assert "already holds a training run; nothing was changed" in capsys.readouterr().err
    assert cli.main(["sweep", "--preset", "digits", "--rho", "0.1", "--beta", "1",
                     "--workdir", run, "--no-progress"]) == 2
    assert "already holds a training run" in capsys.readouterr().err
    # a budget below the step the run has reached is refused, not recorded as "0 steps"
    assert cli.main([*TRAIN, "--steps", "5", "--workdir", run, "--resume"]) == 2
    assert "already at step 10. Pass --steps above 10" in capsys.readouterr().err
    assert snapshot(tmp_path / "run") == before


def test_resume_records_each_segment_and_marks_the_curves(tmp_path):
    run = str(tmp_path / "run")
    assert cli.main([*TRAIN, "--steps", "10", "--lr", "0.01", "--workdir", run]) == 0
    assert cli.main([*TRAIN, "--steps", "20", "--lr", "0.001", "--workdir", run,
                     "--resume"]) == 0
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    got = [(g["start_step"], g["lr"], g["steps"]) for g in record["segments"]]
    assert got == [(0, 0.01, 10), (10, 0.001, 20)]
    assert record["config"]["lr"] == 0.001 and record["kind"] == "run"


@pytest.mark.slow
def test_config_json_records_what_the_run_ran_on(tmp_path):
    import importlib.metadata
    import platform

    train.run(small_config(steps=2), tiny_data(), tmp_path, progress=False)
    record = json.loads((tmp_path / "config.json").read_text())
    env = record["segments"][0]["environment"]
    assert env["versions"]["python"] == platform.python_version()
    for name, module in (("jax", jax), ("numpy", np)):
        assert env["versions"][name] == module.__version__
    assert env["versions"]["optax"] == importlib.metadata.version("optax")
    assert env["devices"] == {"platform": jax.devices()[0].platform,
                              "kind": jax.devices()[0].device_kind,
                              "count": jax.device_count(), "processes": 1}
    source = Path(saejax.__file__).resolve().parents[1]
    head = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True,
                          text=True)
    if (source / ".git").exists() and head.returncode == 0:
        assert env["git_commit"] == head.stdout.strip()
        assert isinstance(env["git_dirty"], bool)
    else:
        assert env["git_commit"] is None


def test_kind_of_reads_config_json_and_else_the_files_present(tmp_path):
    assert rundir.kind_of(tmp_path / "absent") is None
    assert rundir.kind_of(tmp_path) is None  # empty
    for present, kind in [({"config.json": '{"kind": "sweep"}'}, "sweep"),
                          ({"config.json": "not json", "metrics.jsonl": ""}, "run"),
                          ({"results.csv": "rho\n"}, "sweep"),
                          ({"summary.json": "{}"}, "unknown")]:
        directory = tmp_path / "-".join(sorted(present)).replace(".", "_") / kind
        directory.mkdir(parents=True)
        for name, text in present.items():
            (directory / name).write_text(text)
        assert rundir.kind_of(directory) == kind, present
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / "summary.json").write_text("{}")
    with pytest.raises(rundir.RunDirError, match="already holds a run of saejax"):
        rundir.claim(tmp_path / "partial", "run", resume=False)


def test_read_json_says_which_file_is_missing_or_unreadable(tmp_path):
    path = tmp_path / "config.json"
    with pytest.raises(files.RecordError, match="config.json is missing: is .* a run directory"):
        files.read_json(path)
    path.write_text('{"kind": ')
    with pytest.raises(files.RecordError, match="config.json is not readable JSON"):
        files.read_json(path)
    path.write_bytes(b'{"kind": "\xff"}')
    with pytest.raises(files.RecordError, match="config.json is not UTF-8 text"):
        files.read_json(path)
    path.write_text("[1, 2]")
    with pytest.raises(files.RecordError, match="config.json holds a JSON list, not the dict"):
        files.read_json(path)
    assert files.read_json(path, list) == [1, 2]
    files.write_json(path, {"kind": "run", "segments": [1, 2]})
    assert files.read_json(path) == {"kind": "run", "segments": [1, 2]}


def test_a_file_or_an_unknown_kind_is_refused(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(rundir.RunDirError, match="is a file, not a directory"):
        rundir.claim(tmp_path / "f", "run", resume=False)
    with pytest.raises(ValueError, match="kind must be one of"):
        rundir.claim(tmp_path / "new", "notebook", resume=False)


def test_choose_checks_without_creating(tmp_path, monkeypatch):
    with pytest.raises(rundir.RunDirError, match="resume=True needs workdir="):
        rundir.choose(None, True, "digits", "run")
    assert rundir.choose(tmp_path / "w", False, "digits", "run") == tmp_path / "w"
    assert not (tmp_path / "w").exists()
    monkeypatch.chdir(tmp_path)
    chosen = rundir.choose(None, False, "digits", "sweep")
    assert chosen.parent == Path("runs") and chosen.name.startswith("digits-")
    assert not chosen.exists()
