"""The record of a sweep: config.json, results.csv / results.json (a row per member),
members/<block> (the finished blocks' params), running/<block> (checkpoints of the block in
training) and TensorBoard events. Process 0 alone writes; every process reads by itself.

    SweepRecord.open(workdir, record, resume)  config.json written, or a resume checked against it
    record.finished_rows()                     the rows of the blocks already done (resume)
    record.save_block(b, rows, params)         members/<b>, then all rows so far, atomically
    record.running(b)                          the BlockCheckpoints of block b in training
    load_member(workdir, i)                    member i's params
"""

from __future__ import annotations

import csv
import io
import math
import shutil
import time
from pathlib import Path

import numpy as np

from saejax.config import EARLIER_DEFAULTS, RECORD_SETTINGS
from saejax.records import files, rundir
from saejax.records.checkpoints import Checkpointer, restore_tree, save_tree, unnamed
from saejax.runtime.hosts import is_writer
from saejax.schema import AXES, COUNTS, KNOBS, LM_EVAL, RECOVERY, RESULTS

# The columns of results.csv after the member's own axes: its results, whether it diverged,
# and how it ended; a probe's accuracy comes last when the sweep has one.
COLUMNS = (*AXES, *RESULTS, "diverged", *COUNTS)


class SweepRecord:
    """One sweep directory, written by process 0 as the blocks finish."""

    def __init__(self, workdir: Path, block: int):
        self.workdir, self.block = Path(workdir), block

    @classmethod
    def open(cls, workdir: Path, record: dict, resume: bool) -> SweepRecord:
        """Writes a new sweep's config.json (``record``), or checks a resumed one's against it
        (the grid, settings, block size and data must be the same)."""
        self = cls(workdir, record["chunk_size"])
        if not resume:
            if is_writer():
                files.write_json(workdir / "config.json", record)
            return self
        saved = files.read_json(workdir / "config.json")
        changed = _changes(saved, record)
        if changed:
            raise rundir.RunDirError(
                f"cannot resume the sweep in {workdir}: {changed}. A resumed sweep needs the "
                "same grid, settings, --chunk-size and data; use another workdir= for a new "
                "sweep.")
        if is_writer():  # what each resume ran on
            saved.setdefault("resumes", []).append(
                {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                 "environment": record["environment"]})
            files.write_json(workdir / "config.json", saved)
        return self

    def finished_rows(self) -> list:
        path = self.workdir / "results.json"
        return files.read_json(path, list) if path.exists() else []

    def save_block(self, b: int, rows: list, params: dict) -> None:
        """Block b's members' params (members/<b>), then all rows so far, atomically."""
        if not is_writer():
            return
        save_tree(self.workdir / "members" / f"{b:05d}", {"params": params})
        self.write_results(rows)

    def write_results(self, rows: list) -> None:
        """results.csv and results.json from ``rows``, each replaced whole."""
        if not is_writer():
            return
        # a probe's and a known dictionary's columns, when any row has them (a sweep resumed
        # with other extras leaves the earlier rows' cells empty)
        extras = [k for k in ("probe_accuracy", *RECOVERY, *LM_EVAL) if any(k in r for r in rows)]
        fields = [*COLUMNS, *extras]
        table = io.StringIO()
        writer = csv.DictWriter(table, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows({**{k: r[k] for k in COLUMNS}, **{k: r.get(k, "") for k in extras}}
                         for r in rows)
        files.write_text(self.workdir / "results.csv", table.getvalue())
        files.write_json(self.workdir / "results.json", rows)

    def has_block(self, b: int) -> bool:
        return (self.workdir / "members" / f"{b:05d}").is_dir()

    def load_block(self, b: int) -> dict:
        restored = restore_tree(self.workdir / "members" / f"{b:05d}")
        return dict(restored["params"])

    def running(self, b: int, keep: int) -> BlockCheckpoints:
        return BlockCheckpoints(self.workdir / "running" / f"{b:05d}", keep)

    def board(self, config, rows: list, first: int) -> None:
        """Rows ``first`` on as TensorBoard scalars, a tag prefix per member naming its knobs."""
        if not is_writer():
            return
        from saejax.records.tensorboard import ScalarWriter

        board = ScalarWriter(self.workdir / "tensorboard")

        def knobs(row):  # "rho=0.01,beta=3", "k=8": the member's values of its knobs
            return ",".join(f"{a}={row[a]:.3g}" for a in KNOBS[config.arch])

        for i, row in enumerate(rows[first:], start=first):
            board.scalars(config.steps, {k: row[k] for k in (*RESULTS, "diverged", *COUNTS)
                                         if k in row},
                          prefix=f"member{i:04d} {knobs(row)}/")
        board.close()

    def finish(self, summary: dict, rows: list) -> None:
        """config.json's ``summary``, and the results written again from ``rows`` (a resumed
        sweep that was finished already makes a damaged results.csv whole)."""
        if is_writer():
            self.write_results(rows)
            record = files.read_json(self.workdir / "config.json")
            files.write_json(self.workdir / "config.json", {**record, "summary": summary})


def _changes(saved: dict, record: dict) -> str:
    """What differs between a saved sweep's config.json and a resume's, but the settings a
    resume may change (``config.RECORD_SETTINGS``); empty when nothing does."""
    def comparable(r):
        config = {k: v for k, v in {**EARLIER_DEFAULTS, **r.get("config", {})}.items()
                  if k not in RECORD_SETTINGS}
        grid = {k: tuple(v) for k, v in r.get("grid", {}).items()}
        return {"config": config, "grid": grid, "mode": r.get("mode"),
                "chunk_size": r.get("chunk_size"), "data_fingerprint": r.get("data_fingerprint")}

    old, new = comparable(saved), comparable(record)
    parts = []
    for k in old:
        if old[k] == new[k]:
            continue
        if isinstance(new[k], dict):
            parts.append(f"{k}: " + ", ".join(f"{f} {old[k].get(f)!r} -> {v!r}"
                                              for f, v in new[k].items() if old[k].get(f) != v))
        else:
            parts.append(f"{k}: {old[k]!r} -> {new[k]!r}")
    return "; ".join(parts)


class BlockCheckpoints:
    """The checkpoints of a sweep's running block: ``running/<block>/<step>``.

    Each holds the block's whole training state at a chunk end (``sweeps.block.Block``): the
    runners' states and hyperparameters as packed, the slot map, the divergence flags and the
    states of the members that stopped and wait on the host. Restoring puts back exactly that,
    so a resumed block runs the very programs, on the very values, that the uninterrupted one
    ran. Process 0 writes; every process reads by itself. ``finish`` removes the directory once
    the block's members are saved.
    """

    def __init__(self, directory: Path, keep: int):
        self.directory = Path(directory).absolute()
        self._checkpointer = Checkpointer(self.directory, keep, solo=True)

    def latest(self) -> int | None:
        return self._checkpointer.latest_step()

    def save(self, step: int, tree) -> None:
        if is_writer():
            self._checkpointer.save(step, tree)

    def restore(self, like: dict) -> dict:
        """The latest checkpoint: its ``named`` tree, with the subtrees that ``like`` names put
        back into their structures (their member counts as stored)."""
        tree = self._checkpointer.restore_named()
        return {**tree, **{k: unnamed(tree[k], v) for k, v in like.items()}}

    def finish(self) -> None:
        self._checkpointer.close()
        if is_writer():
            shutil.rmtree(self.directory, ignore_errors=True)
            parent = self.directory.parent
            if parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()


def finished_blocks(n_rows: int, n_members: int, block: int) -> int:
    """Blocks whose rows are all in results.json."""
    return math.ceil(n_rows / block) if n_rows == n_members else n_rows // block


def load_member(workdir: str | Path, index: int) -> dict:
    """Member ``index``'s trained params from a sweep's ``members/`` checkpoints."""
    workdir = Path(workdir)
    target = workdir.absolute() / "members"
    if not target.exists():
        raise FileNotFoundError(f"{target} not found: is {workdir} a sweep's run directory?")
    record = files.read_json(workdir / "config.json")
    g, block = len(record["grid"]["rho"]), record.get("chunk_size")
    if not 0 <= index < g:
        raise IndexError(f"member {index} is outside the sweep's {g} members.")
    if block is None or not (target / f"{index // block:05d}").exists():
        raise FileNotFoundError(f"member {index}'s block is not in {target}: the sweep has not "
                                "finished it yet (resume it with resume=True).")
    params = SweepRecord(workdir, block).load_block(index // block)
    return {k: np.asarray(v)[index % block] for k, v in params.items()}
