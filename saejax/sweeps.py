"""Hyperparameter sweeps as one compiled program: vmap of the training chunk over a grid.

Data flow::

    make_grid(rho, beta, lam, lr, seed) -> Grid          validated before anything compiles
    for each block of at most chunk_size members (padded to a fixed size, so one compilation):
        jax.vmap(init_state)(seeds, lrs)                  member states, sharded on "members"
        jax.vmap(train_chunk, in_axes=(0, None, 0))       the same function `saejax train` runs;
                                                          the data is shared (in_axes=None)
        (L-BFGS: all members tick in one while_loop;      train.make_lbfgs_member's pieces
         runners are packed into smaller blocks as        _train_block, _pack
         members stop)
        every checkpoint_every steps (at most once in checkpoint_seconds): the block's whole
          training state -> running/<block>/<step>
        -> the block's rows appended to results.csv / results.json, members/<block> (orbax);
           heatmaps.png redrawn from the rows so far (at most every 30 s)
    -> heatmaps.png, filters_grid.png

The member axis is sharded over every device with a ``Mesh`` and ``NamedSharding`` (on a CPU
host, ``saejax sweep`` makes one device per core: ``saejax.devices``); the data is replicated
once per device, never per member. Members never communicate: a minibatch program holds no
collectives, and an L-BFGS loop only counts its running members each tick. Across hosts, call
``jax.distributed.initialize()`` first: the mesh is built from ``jax.devices()``, inputs are
global arrays made with ``jax.make_array_from_callback``, and results are gathered with
``process_allgather``; process 0 alone writes the run directory. The tests run it as two
processes on one host.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import itertools
import logging
import math
import shutil
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from saejax import checks, compile_cache, optim, rundir, tblog, train
from saejax.checkpoint import load_orbax
from saejax.config import TrainConfig
from saejax.losses import Hyper
from saejax.model import encode
from saejax.softmax import accuracy, check_labels, train_softmax
from saejax.train import (
    SaveClock,
    TrainState,
    count_arrays,
    final_stats,
    init_state,
    make_train_chunk,
    prefetch_imports,
    program_cache,
    progress_bar,
    run_counts,
    stopped,
)

logger = logging.getLogger(__name__)

AXES = ("rho", "beta", "lam", "lr", "seed")
# settings that leave the members' training untouched, so a resume may change them
RESUMABLE_CHANGES = ("checkpoint_every", "checkpoint_seconds", "keep_checkpoints", "log_every")
RESULT_KEYS = ("final_loss", "reconstruction", "weight_decay", "sparsity", "rho_hat_mean",
               "rho_hat_max", "dead_fraction", "explained_variance", "diverged", "iterations",
               "evaluations", "stop_reason")


@dataclass(frozen=True)
class Grid:
    """The sweep's members: one tuple of values per axis, all of the same length G."""

    rho: tuple
    beta: tuple
    lam: tuple
    lr: tuple
    seed: tuple

    def __len__(self) -> int:
        return len(self.rho)

    def member(self, i: int) -> dict:
        return {a: getattr(self, a)[i] for a in AXES}


def make_grid(config: TrainConfig, rho, beta, lam=None, lr=None, seed=None,
              mode: str = "product") -> Grid:
    """Builds and validates the grid; unset axes take the config's single value.

    Args:
      config: the base settings every member shares.
      rho, beta: values of the sparsity target and weight (required).
      lam, lr, seed: optional values of the weight decay, learning rate and seed.
      mode: ``"product"`` (cartesian product of the axes) or ``"points"`` (the given lists are
        zipped; they must all have the same length).

    Raises:
      ValueError: an empty axis, rho outside (0, 1), a negative beta or lam, a non-positive lr,
        lists of different lengths in points mode, or an unknown mode.
    """
    given = {"rho": rho, "beta": beta, "lam": lam, "lr": lr, "seed": seed}
    values = {}
    for axis, v in given.items():
        if v is None:
            if axis in ("rho", "beta"):
                raise ValueError(f"a sweep needs values of {axis}; pass at least one.")
            continue
        v = tuple(np.atleast_1d(np.asarray(v)).tolist())
        if not v:
            raise ValueError(f"the {axis} grid is empty; pass at least one value.")
        values[axis] = v
    rhos = np.asarray(values["rho"], float)
    if not np.all((rhos > 0) & (rhos < 1)):
        raise ValueError(f"every rho must lie strictly inside (0, 1); got {values['rho']}.")
    for axis in ("beta", "lam"):
        if axis in values and not np.all(np.asarray(values[axis], float) >= 0):
            raise ValueError(f"every {axis} must be >= 0; got {values[axis]}.")
    if "lr" in values and not np.all(np.asarray(values["lr"], float) > 0):
        raise ValueError(f"every lr must be > 0; got {values['lr']}.")
    if "seed" in values:
        seeds = np.asarray(values["seed"], float)
        if not np.all((seeds == np.round(seeds)) & (seeds >= 0) & (seeds < 2**31)):
            raise ValueError(f"every seed must be a whole number in [0, 2**31); got {values['seed']}.")
        values["seed"] = tuple(int(s) for s in values["seed"])
    if mode == "product":
        axes = [a for a in AXES if a in values]
        rows = list(itertools.product(*(values[a] for a in axes)))
        columns = {a: tuple(r[i] for r in rows) for i, a in enumerate(axes)}
    elif mode == "points":
        lengths = {a: len(v) for a, v in values.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(
                f"in points mode every list must have the same length; got lengths {lengths}. "
                "Use product mode for a cartesian grid."
            )
        columns = dict(values)
    else:
        raise ValueError(f"mode must be 'product' or 'points', got {mode!r}.")
    g = len(next(iter(columns.values())))
    defaults = {"lam": config.lam, "lr": config.lr, "seed": config.seed}
    for axis, default in defaults.items():
        columns.setdefault(axis, (default,) * g)
    return Grid(**{a: tuple(columns[a]) for a in AXES})


@dataclass
class SweepResult:
    """Per-member results (list of dicts, grid order), final params stacked on axis 0."""

    grid: Grid
    rows: list
    params: dict
    workdir: Path | None
    summary: dict


def _state_axes(shared_batches: bool) -> TrainState:
    """vmap axes of a TrainState: the step and minibatch key are shared when seeds are equal."""
    shared = None if shared_batches else 0
    return TrainState(step=shared, params=0, opt_state=0, key=shared)


def make_sweep_chunk(config: TrainConfig):
    """``sweep_chunk(states, data, hyper, num_steps, shared_batches=False, end=None, exit_at=0)``.

    ``make_train_chunk(config)`` mapped over the members' states and ``Hyper`` (leading axis);
    the data is shared (in_axes=None), never copied per member. When every member has the same
    seed, they draw the same minibatch indices; ``shared_batches=True`` then keeps the step and
    key unbatched, so the batch ``data[idx]`` is gathered once for all members and its matmuls
    with the members' weights become one wide matmul instead of many small ones.

    L-BFGS: one ``while_loop`` in which every running member ticks (``train.make_lbfgs_member``,
    the standalone run's own pieces) until each has stopped or reached iteration ``end``
    (default: the first member's step + ``num_steps``), or until at most ``exit_at`` members
    still run, so that the caller can pack the runners into a smaller block.
    """
    if config.optimizer == "lbfgs":
        running, advance, rows0 = train.make_lbfgs_member(config, batched=True)

        def lbfgs_sweep_chunk(states, data, hyper, num_steps, shared_batches=False, end=None,
                              exit_at=0):
            end = states.step[0] + num_steps if end is None else end
            runs = jax.vmap(running, in_axes=(0, None))
            step = jax.vmap(advance, in_axes=(0, 0, None, 0, None, None, 0))

            def body(carry):
                states, rows = carry
                moving = runs(states, end)
                new_states, new_rows = step(states, rows, data, hyper, end, num_steps, moving)
                # A member that has stopped (or reached end) is held where it is. Its tick left
                # the memory S, Y untouched (active=False): only the small fields are selected.
                memory = {"S": new_states.opt_state.S, "Y": new_states.opt_state.Y}
                small = (new_states.replace(opt_state=new_states.opt_state.replace(S=None, Y=None)),
                         new_rows)
                old = (states.replace(opt_state=states.opt_state.replace(S=None, Y=None)), rows)
                held_states, held_rows = jax.tree.map(
                    lambda a, b: jnp.where(moving.reshape((-1,) + (1,) * (a.ndim - 1)), a, b),
                    small, old)
                return (held_states.replace(opt_state=held_states.opt_state.replace(**memory)),
                        held_rows)

            rows = jax.vmap(partial(rows0, num_steps=num_steps))(states.params)
            return jax.lax.while_loop(lambda carry: jnp.sum(runs(carry[0], end)) > exit_at,
                                      body, (states, rows))

        return lbfgs_sweep_chunk

    train_chunk = make_train_chunk(config)

    def sweep_chunk(states, data, hyper, num_steps, shared_batches=False, end=None, exit_at=0):
        axes = _state_axes(shared_batches)
        return jax.vmap(partial(train_chunk, num_steps=num_steps), in_axes=(axes, None, 0),
                        out_axes=(axes, 0))(states, data, hyper)

    return sweep_chunk


@program_cache
def _programs(program: TrainConfig, n_visible: int, by_member: NamedSharding):
    """The jitted member-chunk, init and final-statistics programs, cached across sweeps."""
    donate = (0,) if program.optimizer == "lbfgs" else ()  # the members' L-BFGS memories
    run_chunk = jax.jit(make_sweep_chunk(program), static_argnames=("num_steps", "shared_batches"),
                        donate_argnums=donate)
    init = jax.jit(jax.vmap(partial(init_state, program, n_visible)), out_shardings=by_member)
    final = jax.jit(jax.vmap(partial(final_stats, penalty=program.penalty,
                                     decoder=program.decoder, tied=program.tied),
                             in_axes=(0, None, 0)))
    return run_chunk, init, final


def sweep(
    config: TrainConfig,
    data,
    rho,
    beta,
    lam=None,
    lr=None,
    seed=None,
    mode: str = "product",
    chunk_size: int = 64,
    num_devices: int | None = None,
    workdir: str | Path | None = None,
    progress: bool = True,
    data_info: dict | None = None,
    labels=None,
    probe_steps: int = 200,
    resume: bool = False,
    tensorboard: bool = False,
) -> SweepResult:
    """Trains one autoencoder per grid member, all members in one compiled, sharded program.

    Args:
      config: settings shared by every member (optimizer, steps, network, dtype, ...).
      data: training examples (M, N), shared by every member.
      rho, beta, lam, lr, seed, mode: the grid (see ``make_grid``).
      chunk_size: at most this many members are trained at once (memory); rounded up to a
        multiple of the device count.
      num_devices: how many devices to shard the members over (default: all of
        ``jax.devices()``, which spans every host after ``jax.distributed.initialize()``).
      workdir: where to write config.json, results.csv/json, members/ (orbax), heatmaps.png and
        filters_grid.png; None keeps everything in memory. It must hold no run or sweep
        (``rundir.claim``). Each finished block appends its rows to results.csv/json
        (atomically) and saves its members' params, so partial results survive a kill.
      progress: show a tqdm bar over member chunks and steps.
      data_info: description of the data for config.json.
      labels: optional class labels (M,) of ``data``. When given, every member gets a linear
        probe: softmax regression (weight decay 1e-4, ``probe_steps`` L-BFGS iterations) on its
        hidden features a2, trained on the first half of the data and scored on the second
        half; the ``probe_accuracy`` column reports it.
      probe_steps: L-BFGS iterations of each probe.
      resume: continue the sweep in ``workdir``: its finished blocks are read back, the rest
        trained. The grid, the settings, the block size and the data must be the same.
      tensorboard: also write each member's results as TensorBoard scalars to
        ``workdir/tensorboard``, tagged ``member<i> rho=<rho>,beta=<beta>/<result>`` at the
        last step, as each block finishes (``saejax.tblog``; needs the tensorboard package).

    Returns:
      ``SweepResult``; ``rows[i]`` holds member i's settings and results, ``diverged`` among them.
    """
    grid = make_grid(config, rho, beta, lam, lr, seed, mode)
    if tensorboard:
        if workdir is None:
            raise ValueError("tensorboard=True needs a workdir to write its summaries to.")
        tblog.check_available()
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}.")
    devices = jax.devices()  # every host's devices after jax.distributed.initialize()
    if num_devices is not None:
        if not 1 <= num_devices <= len(devices):
            raise ValueError(
                f"asked for {num_devices} devices but {len(devices)} are available "
                f"({devices[0].platform}). Pass at most {len(devices)}, or on CPU set "
                f"XLA_FLAGS=--xla_force_host_platform_device_count={num_devices}."
            )
        devices = devices[:num_devices]
    if config.dtype == "float64" and not jax.config.jax_enable_x64:
        raise ValueError("dtype float64 needs jax_enable_x64 enabled first.")
    data = np.asarray(data)
    checks.check_x(data, data.shape[-1] if data.ndim == 2 else -1, name="training data")
    if config.batch_size is not None and config.batch_size > data.shape[0]:
        raise ValueError(f"batch_size {config.batch_size} exceeds the {data.shape[0]} examples.")
    if labels is not None:
        check_labels(data, labels)

    n_dev = len(devices)
    block = min(int(chunk_size), len(grid))
    block = n_dev * math.ceil(block / n_dev)  # every device gets the same number of members
    done_rows = []
    if workdir is not None:  # process 0 claims and writes the directory; the others read it
        workdir = Path(workdir) if jax.process_index() else rundir.claim(workdir, "sweep", resume)
        done_rows = _open_record(workdir, config, grid, mode, block, data, data_info, resume)
    compile_cache.enable()
    mesh = Mesh(np.array(devices), ("members",))
    by_member = NamedSharding(mesh, P("members"))
    replicated = NamedSharding(mesh, P())
    dtype = jnp.dtype(config.dtype)
    data_host, data = data, _put(np.asarray(data, dtype), replicated)  # data: on the devices
    n_visible = data.shape[1]

    run_chunk, init, final = _programs(config.program(), n_visible, by_member)

    n_blocks = math.ceil(len(grid) / block)
    # One seed and minibatches: every member draws the same batches at the same step.
    shared = len(set(grid.seed)) == 1 and config.batch_size is not None
    bar = progress_bar(n_blocks * config.steps, 0, progress)
    rows, params_out, t0 = [], [], time.perf_counter()
    finished = _finished_blocks(len(done_rows), len(grid), block)
    resumed_from, drawn = None, time.perf_counter()
    try:
        for b in range(n_blocks):
            idx = np.arange(b * block, (b + 1) * block)
            real = idx < len(grid)
            if b < finished:  # resumed: this block's results are on disk
                rows.extend(done_rows[b * block:(b + 1) * block])
                params_out.append(_load_block(workdir, b))
                # a kill between saving the block and removing its checkpoints left these
                _Running(workdir, b, 1, None, shared, by_member, replicated).finish()
                bar.update(config.steps)
                continue
            idx = np.where(real, idx, len(grid) - 1)  # pad with copies of the last member
            member = {a: np.asarray(getattr(grid, a))[idx] for a in AXES}
            hyper = Hyper(**{a: _put(np.asarray(member[a], dtype), by_member)
                             for a in ("rho", "beta", "lam")})
            states = init(member["seed"].astype(np.int32), member["lr"])
            if shared:
                states = states.replace(step=states.step[0], key=states.key[0])
            # once the first chunk has compiled, the imports of the writing overlap the training
            compiled = prefetch_imports if workdir is not None and b == 0 else None
            running = None
            if workdir is not None:
                running = _Running(workdir, b, config.keep_checkpoints, states, shared,
                                   by_member, replicated)
                if b == finished and resume and running.latest() is not None:
                    resumed_from = {"block": b, "step": running.latest()}
                    logger.info("resuming block %d from its checkpoint at step %d", b,
                                resumed_from["step"])
            states, diverged = _train_block(run_chunk, states, data, hyper, config, shared,
                                            n_dev, by_member, bar, f"{b + 1}/{n_blocks}",
                                            compiled, running)
            terms, stats = _fetch(final(states.params, data, hyper))
            counts = run_counts(_fetch(count_arrays(states)), config) if not shared else None
            params = _fetch(states.params)
            finite = np.all([np.isfinite(v).reshape(block, -1).all(1) for v in params.values()], 0)
            diverged |= ~finite
            block_rows = []
            for j in np.flatnonzero(real):
                row = {**grid.member(int(idx[j])), **_member_results(terms, stats, j, diverged[j])}
                row.update(_member_counts(counts, j, config))
                block_rows.append(row)
            block_params = {k: v[real] for k, v in params.items()}
            if labels is not None:
                _probe(block_rows, block_params, data_host, np.asarray(labels), probe_steps)
            rows.extend(block_rows)
            params_out.append(block_params)
            if workdir is not None:  # results as they finish
                _save_block(workdir, b, rows, block_params)
                if tensorboard and jax.process_index() == 0:
                    _board_rows(workdir, config, rows, b * block)
                running.finish()
                if b + 1 < n_blocks and time.perf_counter() - drawn > HEATMAP_SECONDS:
                    _heatmaps(workdir, config, grid, rows)
                    drawn = time.perf_counter()
    finally:
        bar.close()
    stacked = {k: np.concatenate([p[k] for p in params_out]) for k in params_out[0]}
    wall = time.perf_counter() - t0
    summary = {"members": len(grid), "chunk_size": block, "devices": n_dev,
               "diverged": int(sum(r["diverged"] for r in rows)), "wall_seconds": wall,
               "resumed_from": resumed_from}
    if workdir is not None:
        _finish(workdir, config, grid, rows, stacked, summary)
    return SweepResult(grid=grid, rows=rows, params=stacked, workdir=workdir, summary=summary)


def _train_block(run_chunk, states, data, hyper, config, shared, n_dev, by_member, bar, label,
                 compiled=None, running=None):
    """Trains one block of members to the end; returns ``(states, diverged)`` in block order.

    L-BFGS members stop at different iterations. Whenever a quarter of the block's slots hold
    stopped members, the runners are packed into a smaller block (sizes fall in quarters of
    the first, so at most three more compilations), and the stopped members wait on the host.

    With ``running`` (a ``_Running``), the block's whole state (packed runners, waiting
    members, slot map, divergence flags) is saved at chunk ends that are multiples of
    ``config.checkpoint_every``, at most once in ``config.checkpoint_seconds`` (process 0's
    clock decides for every process), and a saved one is continued from.
    """
    size = block = len(hyper.rho)
    lbfgs = config.optimizer == "lbfgs"
    quarter = n_dev * math.ceil(block / (4 * n_dev))
    live = np.arange(block)  # live[i]: the block slot whose member sits in slot i
    done = {}  # block slot -> host state of a stopped member
    diverged = np.zeros(block, bool)
    steps_done = 0
    saves = SaveClock(config.checkpoint_seconds)
    if running is not None and running.latest() is not None:
        steps_done, states, hyper, live, done, diverged = running.restore()
        size = len(live)
        bar.update(steps_done)
    while steps_done < config.steps:
        n = min(config.steps_per_call - steps_done % config.steps_per_call,
                config.steps - steps_done)
        end = steps_done + n
        exit_at = size - quarter if lbfgs and size > quarter else 0
        while True:
            states, metrics = run_chunk(states, data, hyper, num_steps=n, shared_batches=shared,
                                        end=end if lbfgs else None, exit_at=exit_at)
            if compiled is not None:
                compiled()
                compiled = None
            loss, valid = _fetch((metrics["loss"], metrics["valid"]))  # (size, n)
            bad = ~np.where(valid, np.isfinite(loss), True).all(axis=1)
            diverged[live[live >= 0]] |= bad[live >= 0]
            if exit_at == 0:
                break
            step, _, stop = _fetch(count_arrays(states))
            alive = (stop == optim.RUNNING) & (live >= 0)
            if not np.any(alive & (step < end)):
                break
            if quarter * math.ceil(alive.sum() / quarter) < size:
                states, hyper, live = _pack(states, hyper, live, alive, quarter, done, by_member)
                size = len(live)
            exit_at = size - quarter if size > quarter else 0
            if exit_at >= np.sum(alive & (step < end)):
                exit_at = 0  # the stragglers sit at end: no smaller block before the next chunk
        steps_done = end
        bar.update(n)
        bar.set_postfix(block=label, diverged=int(diverged.sum()))
        if lbfgs and bool(np.all(_fetch(stopped(states)) | (live < 0))):  # all have stopped
            bar.update(config.steps - steps_done)
            break
        if running is not None and steps_done < config.steps and (
                steps_done % config.checkpoint_every == 0) and _agreed(saves.due()):
            running.save(steps_done, states, hyper, live, done, diverged)
            saves.saved()
    if done:  # unpack: every member back in its block slot, without its L-BFGS memory
        host = _fetch(_without_memory(states))
        for i in np.flatnonzero(live >= 0):
            done[live[i]] = jax.tree.map(lambda a, i=i: a[i], host)
        whole = jax.tree.map(lambda *a: np.stack(a), *[done[j] for j in range(block)])
        states = jax.tree.map(lambda a: _put(np.asarray(a), by_member), whole)
    return states, diverged


def _pack(states, hyper, live, alive, quarter, done, by_member):
    """The members still alive, packed into the smallest block of whole quarters.

    The stopped members go to the host without their L-BFGS memory (they never tick again);
    the runners are gathered on the devices, so no memory crosses to the host and back (at
    784-196 it is 247 MB a member).
    """
    host = _fetch(_without_memory(states))
    for i in np.flatnonzero(~alive & (live >= 0)):
        done[live[i]] = jax.tree.map(lambda a, i=i: a[i], host)
    keep = np.flatnonzero(alive)
    size = quarter * math.ceil(len(keep) / quarter)
    slots = np.concatenate([keep, np.full(size - len(keep), keep[0])])  # padding: copies...
    stop = np.asarray(host.opt_state.stop)[slots]
    stop[len(keep):] = optim.BUDGET  # ...that never move
    replicated = NamedSharding(by_member.mesh, P())
    take = _take(by_member)
    packed = take(states, _put(slots.astype(np.int32), replicated))
    packed = packed.replace(opt_state=packed.opt_state.replace(stop=_put(stop, by_member)))
    hyper = take(hyper, _put(slots.astype(np.int32), replicated))
    live = np.concatenate([live[keep], np.full(size - len(keep), -1)])
    return packed, hyper, live


def _agreed(flag: bool) -> bool:
    """Process 0's ``flag`` on every process (a collective when there are several)."""
    if jax.process_count() == 1:
        return flag
    from jax.experimental import multihost_utils

    return bool(multihost_utils.broadcast_one_to_all(np.asarray(flag)))


def _without_memory(states):
    """``states`` without the L-BFGS memory S, Y: all that a stopped member still needs."""
    if not isinstance(states.opt_state, optim.LbfgsState):
        return states  # a minibatch optimizer's state, which carries no such memory
    return states.replace(opt_state=states.opt_state.replace(S=None, Y=None))


@functools.cache
def _take(by_member: NamedSharding):
    """``take(tree, slots)``: the members in ``slots`` of every leaf, on the devices."""
    return jax.jit(lambda tree, slots: jax.tree.map(lambda a: a[slots], tree),
                   out_shardings=by_member)


class _Running:
    """The checkpoints of a sweep's running block: ``running/<block>/<step>`` (orbax).

    Each holds the block's whole training state at a chunk end: the runners' states and
    hyperparameters as packed, the slot map, the divergence flags and the states of the members
    that stopped and wait on the host. Restoring puts back exactly that, so a resumed block
    runs the very programs, on the very values, that the uninterrupted one ran. Process 0
    writes; every process reads by itself. ``finish`` removes the directory once the block's
    members are saved.
    """

    def __init__(self, workdir, b, keep, like, shared, by_member, replicated):
        self.directory = Path(workdir).absolute() / "running" / f"{b:05d}"
        self.keep, self.like, self.shared = keep, like, shared
        self.by_member, self.replicated = by_member, replicated

    def steps(self) -> list[int]:
        """Steps of the complete checkpoints (orbax renames a finished save into place)."""
        if not self.directory.is_dir():
            return []
        return sorted(int(p.name) for p in self.directory.iterdir() if p.name.isdigit())

    def latest(self) -> int | None:
        steps = self.steps()
        return steps[-1] if steps else None

    def save(self, step, states, hyper, live, done, diverged) -> None:
        host = _fetch((states, hyper))  # every process takes part in the gather
        if jax.process_index() != 0:
            return
        states, hyper = host
        template = jax.tree.map(lambda a: np.zeros_like(a[0] if a.ndim else a),
                                _without_memory(states))
        waiting = [done.get(j, template) for j in range(len(diverged))]
        tree = {
            "states": _numbered(jax.tree.leaves(states)),
            "hyper": {k: np.asarray(getattr(hyper, k)) for k in ("rho", "beta", "lam")},
            "waiting": _numbered(jax.tree.leaves(
                jax.tree.map(lambda *a: np.stack(a), *waiting))),
            "is_waiting": np.isin(np.arange(len(diverged)), list(done)),
            "live": np.asarray(live), "diverged": np.asarray(diverged),
        }
        checkpointer = _checkpointer()
        checkpointer.save(self.directory / f"{step:08d}", tree, force=True)
        checkpointer.wait_until_finished()  # complete on disk before training goes on
        for old in self.steps()[:-self.keep]:
            shutil.rmtree(self.directory / f"{old:08d}", ignore_errors=True)

    def restore(self):
        """``(steps_done, states, hyper, live, done, diverged)`` of the latest checkpoint."""
        step = self.latest()
        tree = _checkpointer().restore(self.directory / f"{step:08d}")
        treedef = jax.tree.structure(self.like)
        unnumber = lambda d: [np.asarray(d[k]) for k in sorted(d)]  # noqa: E731
        states = jax.tree.unflatten(treedef, unnumber(tree["states"]))
        states = jax.tree.map(  # per member, but for the shared step and key of ``shared``
            lambda a: _put(a, self.by_member if a.ndim else self.replicated), states)
        if self.shared:  # the step and minibatch key are one for all members
            states = states.replace(step=_put(np.asarray(states.step), self.replicated),
                                    key=_put(np.asarray(states.key), self.replicated))
        hyper = Hyper(**{k: _put(np.asarray(v), self.by_member) for k, v in tree["hyper"].items()})
        waiting = jax.tree.unflatten(jax.tree.structure(_without_memory(self.like)),
                                     unnumber(tree["waiting"]))
        done = {int(j): jax.tree.map(lambda a, j=j: a[j], waiting)
                for j in np.flatnonzero(np.asarray(tree["is_waiting"]))}
        return (step, states, hyper, np.asarray(tree["live"]), done,
                np.asarray(tree["diverged"]).astype(bool))

    def finish(self) -> None:
        if jax.process_index() == 0:
            shutil.rmtree(self.directory, ignore_errors=True)
            if self.directory.parent.is_dir() and not any(self.directory.parent.iterdir()):
                self.directory.parent.rmdir()


def _numbered(leaves) -> dict:
    """Leaves as a dict with sortable keys (orbax restores dicts, not flax dataclasses)."""
    return {f"{i:04d}": np.asarray(a) for i, a in enumerate(leaves)}


def _probe(rows, params, data, labels, steps) -> None:
    """Adds each member's linear-probe accuracy (softmax on a2, half train / half test)."""
    half = len(data) // 2
    for i, row in enumerate(rows):
        if row["diverged"]:
            row["probe_accuracy"] = float("nan")
            continue
        member = {k: jnp.asarray(v[i]) for k, v in params.items()}
        features = np.asarray(encode(member, jnp.asarray(data, member["W1"].dtype))[1])
        theta, _ = train_softmax(features[:half], labels[:half], lam=1e-4, steps=steps)
        row["probe_accuracy"] = accuracy(theta, features[half:], labels[half:])


def _put(array: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A global array from a host array that every process holds whole (data, grid values)."""
    return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])


def _fetch(tree):
    """Host copies of (possibly multi-host) sharded arrays, gathered whole."""
    if jax.process_count() == 1:
        return jax.device_get(tree)
    from jax.experimental import multihost_utils

    return multihost_utils.process_allgather(tree, tiled=True)


def _member_counts(counts, j, config) -> dict:
    """Member j's iterations, evaluations and stop reason (shared minibatch steps: the budget)."""
    if counts is None:
        return {"iterations": config.steps, "evaluations": config.steps, "stop_reason": "budget"}
    return {k: v[j] for k, v in counts.items()}


def _member_results(terms, stats, j, diverged) -> dict:
    out = {
        "final_loss": float(terms["loss"][j]),
        "reconstruction": float(terms["reconstruction"][j]),
        "weight_decay": float(terms["weight_decay"][j]),
        "sparsity": float(terms["sparsity"][j]),
        "rho_hat_mean": float(stats["rho_hat_mean"][j]),
        "rho_hat_max": float(stats["rho_hat_max"][j]),
        "dead_fraction": float(stats["dead_fraction"][j]),
        "explained_variance": float(stats["explained_variance"][j]),
        "diverged": bool(diverged),
    }
    if diverged:  # a diverged member's numbers mean nothing: report NaN, never a stale value
        out.update({k: float("nan") for k in out if k != "diverged"})
    return out


def _fingerprint(data) -> str:
    """A short hash of the training data, so that a resume on other data is refused."""
    return hashlib.sha256(np.ascontiguousarray(data).tobytes()).hexdigest()[:16]


def _open_record(workdir, config, grid, mode, block, data, data_info, resume) -> list:
    """Writes a new sweep's config.json, or checks a resumed one's; returns the finished rows."""
    record = {"kind": "sweep", "config": asdict(config), "grid": asdict(grid), "mode": mode,
              "chunk_size": block, "data_fingerprint": _fingerprint(data),
              "data": {**(data_info or {}), "shape": list(data.shape),
                       "num_examples": int(data.shape[0])},
              "environment": rundir.environment()}
    if not resume:
        if jax.process_index() == 0:
            rundir.write_json(workdir / "config.json", record)
        return []
    saved = rundir.read_json(workdir / "config.json")
    saved["grid"] = {k: tuple(v) for k, v in saved.get("grid", {}).items()}
    record["grid"] = {k: tuple(v) for k, v in record["grid"].items()}
    for settings in (saved.get("config", {}), record["config"]):  # these may change on resume
        for key in RESUMABLE_CHANGES:
            settings.pop(key, None)
    changed = [k for k in ("config", "grid", "mode", "chunk_size", "data_fingerprint")
               if saved.get(k) != record[k]]
    if changed:
        detail = "; ".join(
            f"{k}: " + (", ".join(f"{f} {saved[k].get(f)!r} -> {v!r}" for f, v in record[k].items()
                                  if saved[k].get(f) != v)
                        if isinstance(record[k], dict) and isinstance(saved.get(k), dict)
                        else f"{saved.get(k)!r} -> {record[k]!r}")
            for k in changed)
        raise rundir.RunDirError(
            f"cannot resume the sweep in {workdir}: {detail}. A resumed sweep needs the same "
            "grid, settings, --chunk-size and data; use another --workdir for a new sweep.")
    if jax.process_index() == 0:  # what each resume ran on
        saved = rundir.read_json(workdir / "config.json")
        saved.setdefault("resumes", []).append(
            {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "environment": record["environment"]})
        rundir.write_json(workdir / "config.json", saved)
    path = workdir / "results.json"
    return rundir.read_json(path) if path.exists() else []


def _board_rows(workdir, config, rows, first) -> None:
    """Rows ``first`` on as TensorBoard scalars, a tag prefix per member (``tensorboard``)."""
    board = tblog.ScalarWriter(Path(workdir) / "tensorboard")
    for i, row in enumerate(rows[first:], start=first):
        board.scalars(config.steps, {k: row[k] for k in RESULT_KEYS if k in row},
                      prefix=f"member{i:04d} rho={row['rho']:.3g},beta={row['beta']:.3g}/")
    board.close()


def _finished_blocks(n_rows: int, n_members: int, block: int) -> int:
    return math.ceil(n_rows / block) if n_rows == n_members else n_rows // block


def _save_block(workdir, b, rows, params) -> None:
    """Block b's members' params (orbax, members/<b>), then all rows so far, atomically."""
    if jax.process_index() != 0:
        return
    checkpointer = _checkpointer()
    checkpointer.save(workdir.absolute() / "members" / f"{b:05d}", {"params": params}, force=True)
    checkpointer.wait_until_finished()
    fields = list(AXES) + list(RESULT_KEYS) + (["probe_accuracy"] if "probe_accuracy" in rows[0]
                                                else [])
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: r[k] for k in fields} for r in rows)
    rundir.write_text(workdir / "results.csv", table.getvalue())
    rundir.write_json(workdir / "results.json", rows)


def _checkpointer():
    """An orbax checkpointer of host arrays that this process uses alone: with several
    processes, process 0 saves the members and each process reads them back by itself, so no
    barrier waits for the others."""
    ocp = load_orbax()
    me = jax.process_index()
    return ocp.StandardCheckpointer(multiprocessing_options=ocp.options.MultiprocessingOptions(
        primary_host=me, active_processes={me}))


def _load_block(workdir, b) -> dict:
    target = Path(workdir).absolute() / "members" / f"{b:05d}"
    restored = _checkpointer().restore(target)
    return {k: np.asarray(v) for k, v in restored["params"].items()}


def _finish(workdir, config, grid, rows, params, summary) -> None:
    if jax.process_index() != 0:
        return
    record = rundir.read_json(workdir / "config.json")
    rundir.write_json(workdir / "config.json", {**record, "summary": summary})
    _figures(workdir, config, grid, rows, params)


def load_member(workdir: str | Path, index: int) -> dict:
    """Member ``index``'s trained params from a sweep's ``members/`` checkpoints."""
    workdir = Path(workdir)
    target = workdir.absolute() / "members"
    if not target.exists():
        raise FileNotFoundError(f"{target} not found: is {workdir} a sweep's run directory?")
    record = rundir.read_json(workdir / "config.json")
    g, block = len(record["grid"]["rho"]), record.get("chunk_size")
    if not 0 <= index < g:
        raise IndexError(f"member {index} is outside the sweep's {g} members.")
    if block is None or not (target / f"{index // block:05d}").exists():
        raise FileNotFoundError(f"member {index}'s block is not in {target}: the sweep has not "
                                "finished it yet (resume it with --resume).")
    params = _load_block(workdir, index // block)
    return {k: v[index % block] for k, v in params.items()}


HEATMAP_SECONDS = 30.0  # while a sweep runs, heatmaps.png is redrawn at most this often


def _heatmaps(workdir, config, grid, rows):
    """heatmaps.png from the rows so far; cells of members not yet trained are blank (NaN)."""
    from saejax import viz

    keys = ["reconstruction", "rho_hat_mean", "dead_fraction"]
    if "probe_accuracy" in rows[0]:
        keys.append("probe_accuracy")
    pending = [{**grid.member(i), **dict.fromkeys(keys, float("nan"))}
               for i in range(len(rows), len(grid))]
    rhos, betas, panels = viz.heatmap_arrays(rows + pending, keys)
    title = f"{config.optimizer}, {config.steps} steps"
    if pending:
        title += f" ({len(rows)} of {len(grid)} members)"
    count, spread = viz.cell_spread(rows + pending, "reconstruction")
    if count.max() > 1:  # several seeds, learning rates or lambdas share a cell
        widest = np.nanmax(spread) if np.isfinite(spread).any() else float("nan")
        title += (f"; each cell the mean of {count.max()} members, reconstruction spread "
                  f"(max - min) up to {widest:.3g}")
    viz.save_heatmaps(rhos, betas, panels, workdir / "heatmaps.png", title=title)
    return rhos, betas


def _figures(workdir, config, grid, rows, params) -> None:
    from saejax import viz

    rhos, betas = _heatmaps(workdir, config, grid, rows)
    n = params["W1"].shape[-1]
    if math.isqrt(n) ** 2 != n:
        return
    # The first member at each (rho, beta) cell.
    first = {}
    for i, r in enumerate(rows):
        first.setdefault((r["rho"], r["beta"]), i)
    h = params["W1"].shape[1]
    filters = np.zeros((len(rhos), len(betas), h, n))
    for (r, b), i in first.items():
        filters[np.searchsorted(rhos, r), np.searchsorted(betas, b)] = params["W1"][i]
    # A large grid's thumbnails would be too small to read: a subset of rows and columns
    rows_, cols_ = viz.montage_subset(len(rhos)), viz.montage_subset(len(betas))
    title = None
    if len(rows_) < len(rhos) or len(cols_) < len(betas):
        title = (f"{len(rows_)} of {len(rhos)} rho values x {len(cols_)} of {len(betas)} beta "
                 "values, evenly spaced (all in heatmaps.png)")
    viz.save_filter_grid(filters[np.ix_(rows_, cols_)], rhos[rows_], betas[cols_],
                         workdir / "filters_grid.png", title=title)
