"""``run``: train one sparse autoencoder and write its run directory; orchestration only.

    data, hyper checked -> RunRecord.claim -> init_state -> record.begin (new or resumed)
    -> compiled chunks (train.step), each: metrics rows logged, divergence checked,
       a checkpoint when due -> summary -> record.finish -> figures (viz.figures)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from saejax import checks, health, metrics
from saejax.config import RUN_RESUMABLE, TrainConfig
from saejax.losses import hyper_of
from saejax.records.files import fingerprint
from saejax.records.run_record import RunRecord
from saejax.runtime import compile_cache, memory
from saejax.runtime.progress import prefetch_imports, progress_bar
from saejax.train.final import final_stats, recovery_of
from saejax.train.state import TrainState, init_state, resumed, run_counts, stopped
from saejax.train.step import chunk_lengths, jitted_train_chunk


class DivergenceError(RuntimeError):
    """The loss became NaN or Inf; the last good state stays in the checkpoints."""


@dataclass
class RunResult:
    """What ``run`` returns: the final state, the logged history and the summary."""

    state: TrainState
    history: list
    summary: dict
    workdir: Path | None

    def __repr__(self) -> str:  # a few lines in a REPL, never the arrays
        s = self.summary
        lines = [f"RunResult: J = {s['final_loss']:.6g} after {s['steps']} steps "
                 f"(stopped: {s['stop_reason']}), FVU {s.get('fvu', float('nan')):.4g}, "
                 f"dead {s['dead_fraction']:.0%}",
                 f"  healthy: {s.get('healthy', True)}"
                 + "".join(f"\n  problem: {p}" for p in s.get("problems", [])),
                 f"  workdir: {self.workdir}",
                 "  .state (params, optimizer state), .history (metrics rows), .summary"]
        return "\n".join(lines)


def run(
    config: TrainConfig,
    data,
    workdir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    data_info: dict | None = None,
    tensorboard: bool = False,
    truth=None,
) -> RunResult:
    """Trains the sparse autoencoder on ``data`` (M, N) and writes the run directory; returns
    ``RunResult(state, history, summary, workdir)``.

    Args:
      config: the run's settings (``TrainConfig``).
      data: training examples, shape (M, N), one per row, finite; or an activations cache
        read a minibatch at a time (``data.ActivationStream``; minibatch optimizers only), its
        J and summary taken on its evaluation rows.
      workdir: run directory for config.json, metrics.jsonl, summary.json, checkpoints/ and the
        figures, new or empty (``rundir.claim``); None trains in memory only.
      resume: continue from the latest checkpoint in ``workdir/checkpoints``.
      progress: show a tqdm bar with the loss and mean rho_hat.
      data_info: a description of the data, stored in config.json; None for an array made in
        Python, which config.json then records as dataset "array" with its shape, dtype and
        sha256 (``data.describe_array``), normalized first as ``config.normalize`` says.
      tensorboard: also write TensorBoard summaries to ``workdir/tensorboard``
        (``saejax.records.tensorboard``; needs the tensorboard package and a workdir).
      truth: the data's known dictionary and held-out codes (``saejax.data.synthetic.load``):
        the summary then reports ``schema.RECOVERY`` (``metrics.recovery``).

    Raises:
      ValueError: bad settings or data.
      CheckpointError: a checkpoint that cannot be used, or checkpoints without ``resume``.
      DivergenceError: a NaN or Inf loss.
    """
    config.check_k()
    config, data, feed, info = prepared(config, data, data_info)
    digest = None  # the data's fingerprint, which a resume must match: with a workdir only
    if workdir is not None:
        digest = fingerprint(data, feed.stream.info["sha256"] if feed else None)
    m, n_visible = info["shape"]
    compile_cache.enable()
    hyper = hyper_of(config)
    x_mean = np.mean(data, axis=0, dtype=np.float64)  # the family's decoder bias starts here
    data = jnp.asarray(data, jnp.dtype(config.dtype))  # on the device from here on
    start = init_state(config, n_visible, x_mean=x_mean)
    initial_loss = _initial_loss(start, data, hyper, config)
    record = RunRecord.claim(workdir, config, resume, tensorboard)
    try:  # from here on the directory is locked: every way out lets go of it (record.close)
        state, history = record.begin(start, n_visible, info, digest)
        state = resumed(state, config) if resume else state
        start_step = int(state.step)
        bar = progress_bar(config.steps, start_step, progress)
        t_start = time.perf_counter()
        try:
            chunks = Chunks(config, data, hyper, feed)
            state = _train(state, chunks, config, record, bar, history)
            compile_seconds = chunks.compile_seconds
            summary = _summary(state, data, hyper, config, time.perf_counter() - t_start,
                               compile_seconds, start_step)
            if truth is not None:
                summary.update(recovery_of(jax.device_get(state.params), config, truth,
                                           info.get("normalization")))
            summary["initial_loss"] = initial_loss
            if not np.isfinite(summary["final_loss"]):  # a checkpoint saved in that state
                raise DivergenceError(
                    f"training diverged: J is {summary['final_loss']} at the final params "
                    f"(step {summary['steps']}). {_advice(config, False)}")
            summary = health.record(summary, health.run_problems(summary, config))
            # the bar's last word: J after the last update, as the final row of metrics.jsonl
            bar.set_postfix(loss=f"{summary['final_loss']:.4g}",
                            rho_hat=f"{summary['rho_hat_mean']:.3g}")
        finally:
            bar.close()
        _finish(record, state, summary, history, config)
    finally:
        record.close()  # waits for the last checkpoint
    return RunResult(state=state, history=history, summary=summary, workdir=record.workdir)


def _initial_loss(start, data, hyper, config) -> float:
    """J where every run of these settings begins, on all the data (a stream's evaluation rows):
    what the final J is judged against (health.run_problems); taken before training, which may
    donate start's buffers. A ``DivergenceError`` when it is NaN or Inf."""
    initial_loss = float(final_stats(start.params, data, hyper, config.program())[0]["loss"])
    if not np.isfinite(initial_loss):  # no optimizer can start from there: nothing is written
        raise DivergenceError(
            f"training diverged: J is NaN or Inf ({initial_loss}) at the starting point (step 0), "
            f"so no state is worth keeping and nothing was written. {_advice(config, False)}")
    return initial_loss


def prepared(config: TrainConfig, data, data_info):
    """``(config, x, feed, info)``: the data checked, and on the host the rows J is evaluated on
    (all of them, or a stream's evaluation rows, ``data.stream``); ``feed`` (a ``train.feed.Feed``)
    reads a stream's minibatches, None for data in memory. ``info`` describes the data as
    trained on, whatever ``data_info`` says."""
    from saejax.data.stream import is_stream

    feed = None
    if is_stream(data):
        from saejax.train.feed import Feed, check_config

        check_config(config)
        data_info = data_info or data.info
        feed, data = Feed(data, config.batch_size, config.dtype), data.evaluation_rows()
    elif data_info is None:  # an array from Python: the records describe it, not a preset's
        config, data, data_info = in_memory(config, data)
    data = checks.check_training_data(data, config, rows=len(feed.stream) if feed else None)
    m, n_visible = feed.stream.shape if feed else data.shape
    memory.check_fits(config, data.shape[0], n_visible)  # before anything is written
    return config, data, feed, {**(data_info or {}), "shape": [m, n_visible], "num_examples": m}


def in_memory(config: TrainConfig, data) -> tuple[TrainConfig, np.ndarray, dict]:
    """The config, data and data description of training data passed in as an array: dataset
    "array", no path, every row an example, described by its shape, dtype and sha256 before
    ``config.normalize`` is fitted and applied (the description records the fitted numbers,
    which export carries and encode applies)."""
    from saejax.data import describe_array, normalize

    data = np.asarray(data)
    checks.check_x(data, data.shape[-1] if data.ndim == 2 else -1, name="training data")
    info = describe_array(data)
    info["normalization"] = normalize.fit(config.normalize, data)
    data = normalize.apply(info["normalization"], data)
    return (config.replace(dataset="array", data=None, num_examples=int(data.shape[0])), data,
            info)


def _finish(record, state, summary, history, config) -> None:
    """The final row, summary.json and the figures, drawn while the last checkpoint is being
    written. The rows hold J where each iteration began; the final row ends the curve at the
    final J, on all the data, after the last update."""
    history.append(record.finish(summary))
    if record.workdir is not None:
        from saejax.viz import figures

        figures.run_figures(record.workdir, state.params, summary, history, config,
                            record.resumed_at())


class Chunks:
    """``chunks(state, n) -> (state, rows)``: the compiled chunk of ``n`` steps on the data in
    memory, or on a stream's minibatches (``feed``) a piece at a time; each shape compiled once,
    the seconds spent compiling kept in ``compile_seconds``."""

    def __init__(self, config, data, hyper, feed=None):
        self.function, self.data, self.hyper, self.feed = (jitted_train_chunk(config), data,
                                                           hyper, feed)
        self.compiled, self.compile_seconds = {}, 0.0

    def _compiled(self, state, data, n):
        if n not in self.compiled:
            t0 = time.perf_counter()
            self.compiled[n] = self.function.lower(state, data, self.hyper, num_steps=n).compile()
            self.compile_seconds += time.perf_counter() - t0
        return self.compiled[n]

    def __call__(self, state, n):
        if self.feed is None:
            return self._compiled(state, self.data, n)(state, self.data, self.hyper)
        from saejax.train.feed import run_pieces

        return run_pieces(lambda s, b, h, length: self._compiled(s, b, length)(s, b, h),
                          state, self.feed, self.hyper, n)


def _train(state, chunks, config, record, bar, history):
    """The chunks from the state's step to the budget (or an L-BFGS stop); returns the final
    state."""
    first_chunk = True
    for n in chunk_lengths(int(state.step), config.steps, config.steps_per_call):
        if bool(stopped(state)):
            break
        first = int(state.step)
        new_state, rows = chunks(state, n)  # L-BFGS: state donated
        if record.workdir is not None and first_chunk:
            prefetch_imports()  # while the chunk runs
        first_chunk = False
        rows = jax.device_get(rows)
        valid = rows.pop("valid")
        rows = {k: v[valid] for k, v in rows.items()}
        # L-BFGS never accepts a non-finite point: its new state is the last good one.
        last_good = new_state if config.optimizer == "lbfgs" else state
        _check_finite(rows, new_state, first, last_good, record, config)
        state, step = new_state, int(new_state.step)
        logged = _log_rows(rows, first, config, last=bool(stopped(state)))
        history.extend(logged)
        record.log(logged)
        last = step == config.steps or bool(stopped(state))
        if last or record.due(step, first):
            record.checkpoint(step, state, wait=not last)
        bar.update(step - first)
        if logged:
            bar.set_postfix(loss=f"{logged[-1]['loss']:.4g}",
                            rho_hat=f"{logged[-1]['rho_hat_mean']:.3g}")
    return state


def _check_finite(rows, new_state, first, last_good, record, config):
    finite = np.isfinite(rows["loss"])
    if finite.all() and _is_good(new_state):
        return
    bad = first + (int(np.argmin(finite)) if not finite.all() else len(finite))
    if not _is_good(last_good):  # J was not finite where training began: nothing to keep
        raise DivergenceError(
            f"training diverged: J is NaN or Inf at the starting point (step {first}), so no "
            f"state is worth keeping and no checkpoint was written. {_advice(config, False)}")
    where = "no checkpoint was written"
    if record.workdir is not None:
        good = int(last_good.step)
        directory = record.checkpoint(good, last_good)  # if it is not saved already
        where = f"the last good state (step {good}) is saved in {directory}"
    raise DivergenceError(
        f"training diverged: the loss became NaN or Inf at step {bad}. Training stopped and "
        f"{where}. {_advice(config, record.workdir is not None)}")


def _is_good(state) -> bool:
    """Finite params, and for L-BFGS a finite J where they stand."""
    params_ok = all(np.isfinite(v).all() for v in jax.device_get(state.params).values())
    return params_ok and bool(np.isfinite(jax.device_get(getattr(state.opt_state, "value",
                                                                   0.0))))


def _advice(config, resumable: bool) -> str:
    """What to change after a divergence: L-BFGS has no learning rate, so its J overflows
    through the penalties' weights (or float32's range)."""
    if config.optimizer == "lbfgs":
        return (f"J overflows: lower beta (now {config.beta:g}) or lam (now {config.lam:g})"
                + (", or train in float64," if config.dtype == "float32" else ",")
                + " in a new run in another workdir=.")
    if resumable:
        return (f"Lower the learning rate (now {config.lr}) and run again with resume=True (a "
                f"resume may change only {', '.join(RUN_RESUMABLE)}), or start a new run in "
                "another workdir= with a smaller lam or beta.")
    return f"Lower the learning rate (now {config.lr}), lam or beta and run again."


def _log_rows(rows, first, config, last=False) -> list:
    """Every log_every-th row, the budget's last and, when the run stopped early, its last."""
    n = len(rows["loss"])
    out = []
    for i in range(n):
        step = first + i
        if step % config.log_every == 0 or step == config.steps - 1 or (last and i == n - 1):
            out.append({"step": step, **{k: float(v[i]) for k, v in rows.items()}})
    return out


def _summary(state, x, hyper, config, wall, compile_seconds, start_step) -> dict:
    terms, stats = jax.device_get(final_stats(state.params, x, hyper, config.program()))
    return {
        **metrics.results(terms, stats),
        "rho_hat": np.asarray(stats["rho_hat"]).tolist(),
        "steps": int(state.step),
        "steps_this_run": int(state.step) - start_step,
        **run_counts(state, config),
        "wall_seconds": wall,
        "compile_seconds": compile_seconds,
    }
