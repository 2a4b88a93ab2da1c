"""``sweep``: one autoencoder per grid member, all members in one compiled, sharded program;
orchestration only.

    make_grid -> checks -> SweepRecord.open (new or resumed)
    for each block of at most chunk_size members (padded to a fixed size: one compilation):
        finished on disk (resume): its rows and params read back
        else: init (vmapped) -> train_block -> final statistics -> rows (+ probe)
              -> members/<block>, results.csv/json; heatmaps.png redrawn now and then
    -> summary in config.json, heatmaps.png, filters_grid.png
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from saejax import checks, health, metrics
from saejax.config import TrainConfig
from saejax.data.stream import is_stream
from saejax.losses import Hyper
from saejax.records import rundir
from saejax.records.files import fingerprint
from saejax.records.sweep_record import SweepRecord, finished_blocks
from saejax.runtime import compile_cache, memory
from saejax.runtime.hosts import fetch, is_writer, on_every, on_writer, put
from saejax.runtime.progress import prefetch_imports, progress_bar
from saejax.schema import AXES, HYPER
from saejax.sweeps.block import train_block
from saejax.sweeps.grid import Grid, make_grid
from saejax.sweeps.probe import check_split, probe
from saejax.sweeps.program import jitted_programs
from saejax.train.final import recovery_of
from saejax.train.runner import in_memory
from saejax.train.state import count_arrays, run_counts
from saejax.train.step import member_eval_of, settled

logger = logging.getLogger(__name__)

HEATMAP_SECONDS = 30.0  # while a sweep runs, heatmaps.png is redrawn at most this often


@dataclass(frozen=True)
class Layout:
    """Where the members train: at most ``chunk_size`` at once (memory), rounded up to a
    multiple of the device count, over ``num_devices`` devices (default: all of
    ``jax.devices()``, which spans every host after ``jax.distributed.initialize()``)."""

    chunk_size: int = 64
    num_devices: int | None = None


@dataclass(frozen=True)
class Output:
    """What a sweep writes and shows: ``workdir`` (None: in memory only), whether it resumes
    the sweep there, a progress bar, the data's description for config.json, TensorBoard."""

    workdir: str | Path | None = None
    resume: bool = False
    progress: bool = True
    data_info: dict | None = None
    tensorboard: bool = False


@dataclass(frozen=True)
class Probe:
    """What each member is measured against beyond its own data: a linear probe
    (``sweeps.probe``) of class ``labels`` (M,) of the data, with ``steps`` L-BFGS iterations
    of each member's softmax, and a known dictionary, ``truth``
    (``saejax.data.synthetic.load``), for the ``schema.RECOVERY`` columns."""

    labels: object = None
    steps: int = 200
    truth: object = None


@dataclass
class SweepResult:
    """Per-member results (list of dicts, grid order), final params stacked on axis 0."""

    grid: Grid
    rows: list
    params: dict
    workdir: Path | None
    summary: dict

    def __repr__(self) -> str:  # a few lines in a REPL, never the arrays
        s = self.summary
        axes = ", ".join(f"{a} {len(set(getattr(self.grid, a)))}" for a in AXES
                         if len(set(getattr(self.grid, a))) > 1)
        return "\n".join([
            f"SweepResult: {s['members']} members ({axes or 'one setting'}), "
            f"{s['diverged']} diverged",
            f"  healthy: {s.get('healthy', True)}"
            + "".join(f"\n  problem: {p}" for p in s.get("problems", [])),
            f"  workdir: {self.workdir}",
            "  .rows (one per member), .params (stacked on axis 0), .grid, .summary"])


def sweep(config: TrainConfig, data, rho=None, beta=None, lam=None, lr=None, seed=None,
          mode: str = "product", chunk_size: int = 64, num_devices: int | None = None,
          workdir: str | Path | None = None, progress: bool = True,
          data_info: dict | None = None, labels=None, probe_steps: int = 200,
          resume: bool = False, tensorboard: bool = False, *, l1=None, k=None,
          l0=None, truth=None) -> SweepResult:
    """Trains one autoencoder per grid member, all members in one compiled, sharded program.

    Args:
      config: settings shared by every member (optimizer, steps, network, dtype, ...).
      data: training examples (M, N), shared by every member; or a
        ``data.ActivationStream``, read a minibatch at a time (minibatch optimizers only).
      rho, beta, lam, lr, seed, mode, l1, k, l0: the grid (see ``make_grid``): the sigmoid
        network sweeps rho and beta, relu-l1 l1, topk and batchtopk k, jumprelu l0.
      chunk_size, num_devices: the ``Layout``.
      workdir: where to write config.json, results.csv/json, members/ (orbax), heatmaps.png and
        filters_grid.png; None keeps everything in memory. It must be new or empty
        (``rundir.claim``). Each finished block appends its rows to results.csv/json
        (atomically) and saves its members' params, so partial results survive a kill.
      progress: show a tqdm bar over member chunks and steps.
      data_info: description of the data for config.json.
      labels: optional class labels (M,) of ``data``: every member then gets a linear probe
        (``sweeps.probe``) of ``probe_steps`` L-BFGS iterations, the ``probe_accuracy`` column.
      resume: continue the sweep in ``workdir``: its finished blocks are read back, the rest
        trained. The grid, the settings, the block size and the data must be the same.
      tensorboard: also write each member's results as TensorBoard scalars to
        ``workdir/tensorboard``, tagged ``member<i> rho=<rho>,beta=<beta>/<result>``, as each
        block finishes (needs the tensorboard package).
      truth: the data's known dictionary and held-out codes (``saejax.data.synthetic.load``):
        every row then reports ``schema.RECOVERY`` (``metrics.recovery``).

    Returns:
      ``SweepResult``; ``rows[i]`` holds member i's settings and results, ``diverged`` among them.
    """
    grid = make_grid(config, rho, beta, lam, lr, seed, mode, l1=l1, k=k, l0=l0)
    output = Output(workdir, resume, progress, data_info, tensorboard)
    probe_with = None if labels is None and truth is None else Probe(labels, probe_steps, truth)
    return run_sweep(config, data, grid, Layout(chunk_size, num_devices), output, probe_with,
                     mode)


def run_sweep(config: TrainConfig, data, grid: Grid, layout: Layout = Layout(),
              output: Output = Output(), probe_with: Probe | None = None,
              mode: str = "product") -> SweepResult:
    """``sweep`` on a built grid (``make_grid``; ``mode`` is recorded in config.json), its
    settings in three groups: where the members train, what the sweep writes, and an optional
    linear probe."""
    try:
        run = _Sweep(config, data, grid, layout, output, probe_with, mode)
        bar = progress_bar(run.n_blocks * config.steps, 0, output.progress)
        rows, params, t0 = [], [], time.perf_counter()
        try:
            for b in range(run.n_blocks):
                block_rows, block_params = run.block(b, bar)
                rows.extend(block_rows)
                params.append(block_params)
                run.after_block(b, rows, block_params)
        finally:
            bar.close()
        stacked = {k: np.concatenate([p[k] for p in params]) for k in params[0]}
        summary = {"members": len(grid), "chunk_size": run.size, "devices": run.n_dev,
                   "diverged": int(sum(r["diverged"] for r in rows)),
                   "wall_seconds": time.perf_counter() - t0, "resumed_from": run.resumed_from}
        summary = health.record(summary, health.sweep_problems(rows, config))
        if run.record is not None:
            run.record.finish(summary, rows)
            if is_writer():
                from saejax.viz import figures

                figures.sweep_figures(run.record.workdir, config, grid, rows, stacked)
    finally:
        rundir.release(output.workdir)  # the lock its claim took (process 0)
    return SweepResult(grid=grid, rows=rows, params=stacked, workdir=run.workdir,
                       summary=summary)


class _Sweep:
    """One sweep's checked inputs, placement, compiled programs and record."""

    def __init__(self, config, data, grid, layout, output, probe_with, mode):
        config = settled(config)  # the machine's choices, as config.json records them
        self.config, self.grid, self.output = config, grid, output
        probe_with = probe_with or Probe()
        self.labels, self.probe_steps = probe_with.labels, probe_with.steps
        self.truth = probe_with.truth
        if output.tensorboard:
            from saejax.records.tensorboard import check_available

            if output.workdir is None:
                raise ValueError("tensorboard=True needs a workdir to write its summaries to.")
            check_available()
        if int(layout.chunk_size) < 1:
            raise ValueError(f"chunk_size must be at least 1, got {layout.chunk_size}.")
        devices = _devices(layout.num_devices)
        self.stream = data if is_stream(data) else None
        if self.stream is not None:  # read a minibatch at a time; J on its evaluation rows
            _check_streamable(config, self.labels)
            self.output = dataclasses.replace(output, data_info=output.data_info or data.info)
            data = data.evaluation_rows()
        elif output.data_info is None:  # an array from Python: the records describe it
            config, data, info = in_memory(config, data)
            self.config, self.output = config, dataclasses.replace(output, data_info=info)
        self.data_host = checks.check_training_data(
            data, config, rows=None if self.stream is None else len(self.stream))
        self.shape = self.data_host.shape if self.stream is None else self.stream.shape
        if self.labels is not None:
            from saejax.softmax import check_labels

            check_labels(self.data_host, self.labels)
            check_split(self.labels)  # before any member trains, not after all of them
            self.labels = np.asarray(self.labels)
        self.n_dev = len(devices)
        self.size = self.n_dev * math.ceil(min(int(layout.chunk_size), len(grid)) / self.n_dev)
        self.n_blocks = math.ceil(len(grid) / self.size)
        # before any write; each device holds its share of the block's members, and every
        # process learns whether each host's devices have room for it
        on_every(lambda: memory.check_fits(config, *self.data_host.shape,
                                           members=self.size // self.n_dev),
                 "a block of this sweep does not fit in memory")
        if config.arch == "sigmoid" and member_eval_of(config) == "kernel":
            from saejax import kernel  # Pallas imported only where a sweep asks for it

            kernel.check_size(self.shape[1], config.n_hidden, config.dtype, self.shape[0])
        self.workdir, self.record, done_rows = None, None, []
        if output.workdir is not None:  # process 0 claims and writes it; the others read it
            self.workdir = on_writer(
                lambda: rundir.claim(output.workdir, "sweep", output.resume),
                f"process 0 could not claim {output.workdir}") or Path(output.workdir)
            self.record = SweepRecord.open(self.workdir, self._record(mode), output.resume)
            done_rows = self.record.finished_rows() if output.resume else []
        finished = finished_blocks(len(done_rows), len(grid), self.size)
        kept = next((b for b in range(finished) if not self.record.has_block(b)), finished)
        if kept < finished:  # members/<b> deleted or lost: train that block and the rest again
            logger.warning("%s lacks members/%05d: the sweep trains it and the later blocks "
                           "again", self.workdir, kept)
            done_rows = done_rows[:kept * self.size]
        self.done_rows, self.finished = done_rows, kept
        compile_cache.enable()
        mesh = Mesh(np.array(devices), ("members",))
        self.by_member = NamedSharding(mesh, P("members"))
        self.dtype = jnp.dtype(config.dtype)
        self.data = put(np.asarray(self.data_host, self.dtype), NamedSharding(mesh, P()))
        self.x_mean = put(np.mean(self.data_host, axis=0, dtype=np.float64).astype(self.dtype),
                          NamedSharding(mesh, P()))
        self.programs = jitted_programs(config.program(), self.data.shape[1], self.by_member)
        self.feed = None
        if self.stream is not None:
            from saejax.train.feed import Feed

            replicated = NamedSharding(mesh, P())
            self.feed = Feed(self.stream, config.batch_size, self.dtype, lambda b: put(
                b, self.by_member if b.ndim == 4 else replicated))
        # One seed and minibatches: every member draws the same batches at the same step.
        self.shared = len(set(grid.seed)) == 1 and config.batch_size is not None
        self.resumed_from, self.drawn = None, time.perf_counter()

    def _record(self, mode) -> dict:
        data = self.data_host  # a stream's evaluation rows, with its cache's verified digest
        digest = fingerprint(data, None if self.stream is None else self.stream.info["sha256"])
        return {"kind": "sweep", "config": asdict(self.config), "grid": asdict(self.grid),
                "mode": mode, "chunk_size": self.size, "data_fingerprint": digest,
                "data": {**(self.output.data_info or {}), "shape": list(self.shape),
                         "num_examples": int(self.shape[0])},
                "environment": rundir.environment()}

    def block(self, b: int, bar) -> tuple[list, dict]:
        """Block b's rows and params: read back when finished before a resume, else trained."""
        config, size = self.config, self.size
        if b < self.finished:
            self.record.running(b, 1).finish()  # a kill after saving the block left these
            bar.update(config.steps)
            return self.done_rows[b * size:(b + 1) * size], self.record.load_block(b)
        idx = np.arange(b * size, (b + 1) * size)
        real = idx < len(self.grid)
        idx = np.where(real, idx, len(self.grid) - 1)  # pad with copies of the last member
        member = {a: np.asarray(getattr(self.grid, a))[idx] for a in AXES}
        hyper = Hyper(**{a: put(np.asarray(member[a], self.dtype), self.by_member)
                         for a in HYPER})
        run_chunk, init, final = self.programs
        if self.feed is not None:
            run_chunk = streamed(run_chunk, self.feed)
        states = init(member["seed"].astype(np.int32), member["lr"], self.x_mean)
        if self.shared:
            states = states.replace(step=states.step[0], key=states.key[0])
        store = None
        if self.record is not None:
            store = self.record.running(b, config.keep_checkpoints)
            if b == self.finished and self.output.resume and store.latest() is not None:
                self.resumed_from = {"block": b, "step": store.latest()}
                logger.info("resuming block %d from its checkpoint at step %d", b,
                            store.latest())
        after_first = prefetch_imports if self.record is not None and b == 0 else None
        states, diverged = train_block(run_chunk, states, hyper, self.data, config,
                                       self.shared, self.by_member, bar,
                                       f"{b + 1}/{self.n_blocks}", after_first, store)
        rows, params = self._rows(final, states, hyper, diverged, idx, real)
        if self.labels is not None:
            probe(rows, params, self.data_host, self.labels, self.probe_steps,
                  [self.member_config(r) for r in rows])
        if self.truth is not None:
            self._recovery(rows, params)
        self.store = store
        return rows, params

    def _rows(self, final, states, hyper, diverged, idx, real):
        terms, stats = fetch(final(states.params, self.data, hyper))
        counts = None if self.shared else run_counts(fetch(count_arrays(states)), self.config)
        params = fetch(states.params)
        size = len(idx)
        finite = np.all([np.isfinite(v).reshape(size, -1).all(1) for v in params.values()], 0)
        diverged = diverged | ~finite
        rows = []
        for j in np.flatnonzero(real):
            values = metrics.results(*jax.tree.map(lambda a, j=j: a[j], (terms, stats)))
            if diverged[j]:  # a diverged member's numbers mean nothing: NaN, never stale
                values = dict.fromkeys(values, float("nan"))
            rows.append({**self.grid.member(int(idx[j])), **values,
                         "diverged": bool(diverged[j]), **self._counts(counts, j)})
        return rows, {k: v[real] for k, v in params.items()}

    def member_config(self, row: dict):
        """The config of the member of ``row``: the sweep's, with the member's own axes."""
        return self.config.replace(**{a: type(getattr(self.config, a))(row[a]) for a in AXES})

    def _recovery(self, rows: list, params: dict) -> None:
        """Each row's ``schema.RECOVERY``, with its member's own knobs (NaN where diverged)."""
        normalization = (self.output.data_info or {}).get("normalization")
        for j, row in enumerate(rows):
            values = recovery_of({k: v[j] for k, v in params.items()}, self.member_config(row),
                                 self.truth, normalization)
            row.update(dict.fromkeys(values, float("nan")) if row["diverged"] else values)

    def _counts(self, counts, j) -> dict:
        """Member j's iterations, evaluations and stop reason (shared minibatch steps: the
        budget)."""
        if counts is None:
            steps = self.config.steps
            return {"iterations": steps, "evaluations": steps, "stop_reason": "budget"}
        return {k: v[j] for k, v in counts.items()}

    def after_block(self, b: int, rows: list, params: dict) -> None:
        """A trained block's params and all ``rows`` so far on disk, its running checkpoints
        gone, its TensorBoard rows, and heatmaps.png redrawn from the rows so far."""
        if self.record is None or b < self.finished:
            return
        self.record.save_block(b, rows, params)
        self.store.finish()
        if self.output.tensorboard:
            self.record.board(self.config, rows, b * self.size)
        if (b + 1 < self.n_blocks and time.perf_counter() - self.drawn > HEATMAP_SECONDS
                and is_writer()):
            from saejax.viz import figures

            figures.sweep_progress(self.workdir, self.config, self.grid, rows)
            self.drawn = time.perf_counter()


def _devices(num_devices: int | None) -> list:
    devices = jax.devices()  # every host's devices after jax.distributed.initialize()
    if num_devices is None:
        return devices
    if not 1 <= num_devices <= len(devices):
        raise ValueError(
            f"asked for {num_devices} devices but {len(devices)} are available "
            f"({devices[0].platform}). Pass at most {len(devices)}, or on CPU set "
            f"XLA_FLAGS=--xla_force_host_platform_device_count={num_devices}."
        )
    return devices[:num_devices]


def streamed(run_chunk, feed):
    """``run_chunk`` (``sweeps.program``) on a stream's minibatches, read a piece at a time."""
    from saejax.train.feed import run_pieces

    def chunk(states, data, hyper, num_steps, shared_batches=False, end=None, exit_at=0):
        def call(s, batches, h, length):
            return run_chunk(s, batches, h, num_steps=length, shared_batches=shared_batches)

        return run_pieces(call, states, feed, hyper, num_steps, axis=1)

    return chunk


def _check_streamable(config, labels) -> None:
    from saejax.train.feed import check_config

    check_config(config)
    if labels is not None:
        raise ValueError("a linear probe needs labelled data in memory, not a stream of "
                         "activations: leave --probe out.")
