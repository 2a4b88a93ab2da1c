"""The record of a training run: config.json, metrics.jsonl, checkpoints/, summary.json and
TensorBoard events, written by one ``RunRecord``.

    RunRecord.claim(workdir, config, resume, tensorboard)   nothing is written before this check
    record.begin(state, n_visible, data_info, digest)   config.json (a new run), or the resume
                                                checked, the data's fingerprint included
                                                and its checkpoint restored -> (state, history)
    record.log(rows) / record.checkpoint(step, state) / record.due(step, since)  while training
    record.finish(summary) -> final row          the final row, summary.json

config.json's ``segments`` list every start and resume: the step it began at, the settings a
resume may change (``config.RUN_RESUMABLE``) and what it ran on, so the record says which steps
ran with which settings. ``config`` holds the latest segment's settings.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

from saejax.config import EARLIER_DEFAULTS, RUN_RESUMABLE, TrainConfig
from saejax.records import files, rundir
from saejax.records.checkpoints import Checkpointer, CheckpointError
from saejax.runtime.clock import SaveClock
from saejax.schema import SCALAR_TERMS

logger = logging.getLogger(__name__)


def saved_config(workdir: str | Path) -> TrainConfig:
    """The TrainConfig recorded in a run directory's config.json (to resume it)."""
    path = Path(workdir) / "config.json"
    if not path.is_file():
        raise CheckpointError(f"cannot resume: {path} is missing. Start a new run instead.")
    try:
        return TrainConfig(**{**EARLIER_DEFAULTS, **json.loads(path.read_text())["config"]})
    except (ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"cannot resume: {path} is unreadable ({err}). Restore it from a "
                              "copy, or start again in another directory.") from err


def read_metrics(path: Path) -> list:
    """The rows of metrics.jsonl; a line that is not a JSON object with a numeric "step" (the
    last one cut short by a kill or a full disk, or bytes garbled on disk) is dropped with a
    warning naming the file."""
    rows, dropped = [], 0
    for line in path.read_bytes().splitlines():
        try:
            row = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            row = None
        if isinstance(row, dict) and isinstance(row.get("step"), int):
            rows.append(row)
        elif line.strip():
            dropped += 1
    if dropped:
        logger.warning("%s: dropped %d line(s) that were cut short or garbled (the steps they "
                       "logged are trained again on resume)", path, dropped)
    return rows


def final_row(summary: dict) -> dict:
    """metrics.jsonl's last row: J, its terms, rho_hat_mean, L0 and FVU at the final params
    (``"final": true``): the columns of the rows before it."""
    return {"step": summary["steps"], "loss": summary["final_loss"],
            **{k: summary[k] for k in SCALAR_TERMS[1:]}, "final": True}


def _segment_settings(config: TrainConfig) -> dict:
    return {k: getattr(config, k) for k in RUN_RESUMABLE}


class RunRecord:
    """One run directory, written as the run trains; with ``workdir`` None, nothing is."""

    def __init__(self, workdir: Path | None, config: TrainConfig, resume: bool, board=None):
        self.workdir, self.config, self.resume, self.board = workdir, config, resume, board
        self.ckpt = None if workdir is None else Checkpointer(workdir / "checkpoints",
                                                              config.keep_checkpoints)
        self.clock = SaveClock(config.checkpoint_seconds)

    @classmethod
    def claim(cls, workdir, config: TrainConfig, resume: bool = False,
              tensorboard: bool = False) -> RunRecord:
        """Checks that ``workdir`` may hold this run (``rundir.claim``) and creates it."""
        if workdir is None:
            if tensorboard:
                raise ValueError("tensorboard=True needs a workdir to write its summaries to.")
            return cls(None, config, resume)
        from saejax.records import tensorboard as tb

        if tensorboard:
            tb.check_available()
        workdir = rundir.claim(workdir, "run", resume)  # nothing is written before this check
        board = tb.ScalarWriter(workdir / "tensorboard") if tensorboard else None
        return cls(workdir, config, resume, board)

    def begin(self, state, n_visible: int, data_info: dict, digest: str | None = None):
        """Writes config.json, or on resume checks it and restores the latest checkpoint into
        ``state``'s structure; returns ``(state, history)`` (the rows logged before it).
        ``digest`` is the training data's ``files.fingerprint``: a resume on other data (a file
        changed since, other rows) is refused."""
        if self.workdir is None:
            return state, []
        record = {"kind": "run", "config": asdict(self.config), "n_visible": n_visible,
                  "data": data_info, "data_fingerprint": digest,
                  "segments": [rundir.segment(0, _segment_settings(self.config))]}
        if not self.resume:
            files.write_json(self.workdir / "config.json", record)
            files.write_text(self.workdir / "metrics.jsonl", "")
            return state, []
        saved = self._check_resume(n_visible, digest)
        if self.ckpt.latest_step() is None:  # stopped before its first checkpoint
            logger.warning("%s holds no checkpoint (the run stopped before its first, or it was "
                           "deleted): the run starts again from step 0",
                           self.workdir)
        else:
            state = self.ckpt.restore(state)
            logger.info("resumed from checkpoint %d in %s", int(state.step), self.ckpt.directory)
        step = int(state.step)
        history = []
        metrics_path = self.workdir / "metrics.jsonl"
        if metrics_path.is_file():
            # Lines written after the checkpoint were from steps that will be run again.
            history = [r for r in read_metrics(metrics_path) if r["step"] < step]
            files.write_text(metrics_path, "".join(json.dumps(r) + "\n" for r in history))
        # Segments that began after this checkpoint are replayed from here: the new one
        # replaces them.
        segments = [g for g in saved.get("segments", []) if g["start_step"] < step]
        record["segments"] = segments + [rundir.segment(step, _segment_settings(self.config))]
        record["resumed_from"] = step
        files.write_json(self.workdir / "config.json", record)
        return state, history

    def _check_resume(self, n_visible: int, digest: str | None) -> dict:
        saved_record = files.read_json(self.workdir / "config.json")
        saved = asdict(saved_config(self.workdir))
        n_saved = saved_record.get("n_visible")
        changed = {k: (saved[k], v) for k, v in asdict(self.config).items()
                   if k not in RUN_RESUMABLE and saved.get(k) != v}
        if n_saved != n_visible:
            changed["n_visible"] = (n_saved, n_visible)
        if changed:
            listing = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changed.items())
            raise CheckpointError(
                f"cannot resume {self.workdir}: this run's settings differ from the saved run's "
                f"({listing}). Only {', '.join(RUN_RESUMABLE)} may change on resume; use "
                "another workdir= for a different run."
            )
        recorded = saved_record.get("data_fingerprint")  # runs from before it have none
        if None not in (recorded, digest) and recorded != digest:
            raise CheckpointError(
                f"cannot resume {self.workdir}: the training data differ from the data it was "
                f"trained on (fingerprint {recorded} in config.json, {digest} now): the file "
                "changed since, or other rows were picked. Resume it on the same data, or "
                "start a new run in another workdir=.")
        latest = self.ckpt.latest_step()
        if latest is not None and self.config.steps < latest:
            raise CheckpointError(
                f"cannot resume {self.workdir} with steps {self.config.steps}: the run is "
                f"already at step {latest}. Pass steps= above {latest} to train on, or leave "
                "it out."
            )
        return saved_record

    def log(self, rows: list) -> None:
        """Appends ``rows`` to metrics.jsonl and the TensorBoard events."""
        if self.workdir is None:
            return
        self._append(rows)
        for r in rows if self.board is not None else ():
            self.board.scalars(r["step"], r)

    def _append(self, rows: list) -> None:
        path = self.workdir / "metrics.jsonl"
        try:
            with open(path, "a", encoding="utf-8") as f:
                f.writelines(json.dumps(r) + "\n" for r in rows)
        except OSError as err:  # a full disk: what was logged stays, a cut line is dropped later
            raise files.RecordError(
                f"cannot append to {path}: {err.strerror or err}. The run stopped; its "
                "checkpoints are intact. Free some space, then continue it with "
                "resume=True.") from err

    def due(self, step: int, since: int) -> bool:
        """A checkpoint at ``step``, the end of a chunk that began at ``since``: the first
        chunk end at or after each multiple of ``checkpoint_every``, at most once in
        ``checkpoint_seconds`` (``SaveClock.at``)."""
        return self.ckpt is not None and self.clock.at(step, self.config.checkpoint_every, since)

    def checkpoint(self, step: int, state, wait: bool = True) -> str:
        """Saves ``state`` as checkpoint ``step``; returns where (for messages). A save that
        does not ``wait`` is complete once ``close`` returns."""
        if self.ckpt is None:
            return ""
        self.ckpt.save(step, state, wait)
        self.clock.saved()
        return str(self.ckpt.directory)

    def close(self) -> None:
        """Waits for the last checkpoint, then lets go of the directory's lock; a run that
        stopped early keeps what it logged."""
        if self.ckpt is not None:
            self.ckpt.close()
        if self.board is not None:
            self.board.close()
            self.board = None
        rundir.release(self.workdir)

    def finish(self, summary: dict) -> dict:
        """Ends metrics.jsonl with the final J (``final_row``, returned), writes summary.json
        and the final TensorBoard values."""
        final = final_row(summary)
        if self.workdir is None:
            return final
        self._append([final])
        if self.board is not None:  # the final values, and what only the summary holds
            self.board.scalars(summary["steps"], {
                **{f"final/{k}": v for k, v in final.items() if k != "step"},
                **{f"final/{k}": summary[k] for k in ("rho_hat_min", "rho_hat_max",
                                                       "dead_fraction")}})
            self.board.close()
            self.board = None
        files.write_json(self.workdir / "summary.json", summary)
        return final

    def resumed_at(self) -> list[int]:
        """The steps at which this run was resumed (config.json's later segments)."""
        segments = files.read_json(self.workdir / "config.json").get("segments", [])
        return [g["start_step"] for g in segments if g["start_step"] > 0]
