"""Training: the pure step, compiled chunks of steps, the run loop and its run directory.

Data flow::

    init_state(config, n_visible) -> TrainState(step, params, opt_state, key)
    train_step(state, batch, hyper) -> (state, metrics)        pure; one optimizer iteration
    train_chunk(state, data, hyper, num_steps) -> (state, metrics per step)
        minibatch optimizers: lax.scan of steps; L-BFGS: lax.while_loop of ticks (optim.py)
    run(config, data, workdir) -> RunResult   chunks, progress, metrics.jsonl, checkpoints, figures

A sweep vmaps ``train_chunk`` over ``state`` and ``hyper``; there is no second implementation.
The optimizers themselves live in ``optim.py``. The learning rate lives in the optimizer state
(``optax.inject_hyperparams``), so it is a traced leaf as well.

Names by role, the same across saejax: ``data`` is the whole training set (M, N); ``batch`` is
the rows one step trains on (all of ``data`` for a full-batch method); ``x`` is the examples J is
evaluated on, as in the loss and gradient functions.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import math
import threading
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from saejax import checks, compile_cache, grads, losses, optim, rundir, tblog
from saejax.checkpoint import Checkpointer, CheckpointError
from saejax.config import TrainConfig
from saejax.losses import Hyper
from saejax.metrics import activation_stats
from saejax.model import init_params
from saejax.pytree import pytree_dataclass

logger = logging.getLogger(__name__)

class DivergenceError(RuntimeError):
    """The loss became NaN or Inf; the last good state stays in the checkpoints."""


@pytree_dataclass
class TrainState:
    """Everything that changes during training, as a pytree (checkpointed whole)."""

    step: jax.Array  # int32 scalar: optimizer iterations done
    params: dict  # {"W1", "b1", "W2", "b2"}
    opt_state: Any  # optax state (holds the learning rate), or optim.LbfgsState for L-BFGS
    key: jax.Array  # uint32 key data; minibatch t is drawn with fold_in(key, t)


def init_state(config: TrainConfig, n_visible: int, seed=None, lr=None) -> TrainState:
    """UFLDL-initialized params, a fresh optimizer state and the minibatch key.

    Args:
      config: the run's settings.
      n_visible: input width N.
      seed: seeds the params and the minibatches (default ``config.seed``); may be traced, so a
        sweep vmaps this function over seeds.
      lr: learning rate stored in the optimizer state (default ``config.lr``); may be traced.

    One compiled program (rather than a dozen small eager ones) keeps a fresh run's start fast.
    """
    seed = config.seed if seed is None else seed
    lr = config.lr if lr is None else lr
    return _init_state(config.program(), n_visible, jnp.asarray(seed, jnp.int32),
                       jnp.asarray(lr))


@partial(jax.jit, static_argnums=(0, 1))
def _init_state(config: TrainConfig, n_visible: int, seed, lr) -> TrainState:
    k_params, k_batches = jax.random.split(jax.random.key(seed))
    params = init_params(k_params, n_visible, config.n_hidden, jnp.dtype(config.dtype),
                         tied=config.tied)
    if config.optimizer == "lbfgs":
        opt_state = optim.init_lbfgs(params, config.lbfgs_memory)
    else:
        opt_state = optim.make_optimizer(config).init(params)
    state = TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=opt_state,
                       key=jax.random.key_data(k_batches))
    return set_learning_rate(state, lr)


# Most examples per block of the analytic evaluation on large batches
# (grads.terms_and_grad_blocked, which splits the batch into equal blocks: 10,000 examples into
# 5 of 2,000): one member's, and each member's when a sweep evaluates many at once. Measured at
# 64-25-64 on 10,000 examples (2 CPU cores): one member 4.4-4.6 ms with blocks of 2,000-5,000,
# as fast as whole, and 5.4 ms with blocks of 1,000; 8-16 members 4.4-5.3 ms each with blocks
# of 1,000 against 8.6-9.0 ms whole. Equal blocks need no padding and no mask: 10-27% faster
# than blocks of 2,048 and 1,024 with a padded last one. At 784-196 all take the same time.
EVAL_BLOCK = 2048
EVAL_BLOCK_BATCHED = 1024


def make_evaluate(config: TrainConfig, batched: bool = False):
    """``evaluate(params, batch, hyper) -> (terms, grads)``: J, its terms and dJ/dparams.

    One evaluation: the hand-written forward and backward pass (``grad="analytic"``), or
    ``jax.value_and_grad`` of the loss (``grad="autodiff"``). The analytic pass runs over blocks
    of ``EVAL_BLOCK`` examples (``EVAL_BLOCK_BATCHED`` when ``batched``: many members at once
    under vmap) when the batch holds at least two blocks. ``terms`` holds loss,
    reconstruction, weight_decay, sparsity and the vector rho_hat.
    """
    penalty, decoder, tied = config.penalty, config.decoder, config.tied
    if config.grad == "analytic":
        block = EVAL_BLOCK_BATCHED if batched else EVAL_BLOCK
        whole = partial(grads.terms_and_grad, penalty=penalty, decoder=decoder, tied=tied)
        blocked = partial(grads.terms_and_grad_blocked, penalty=penalty, decoder=decoder,
                          tied=tied, block=block)
        # Many examples: two passes over blocks keep the (M, N) temporaries in cache.
        return lambda params, batch, hyper: (
            blocked if batch.shape[0] >= 2 * block else whole)(params, batch, hyper)

    def evaluate(params, batch, hyper):
        def f(p):
            terms = losses.compute_terms(p, batch, hyper, penalty, decoder, tied)
            return terms["loss"], terms

        (_, terms), g = jax.value_and_grad(f, has_aux=True)(params)
        return terms, g

    return evaluate


def make_train_step(config: TrainConfig):
    """Returns the pure ``train_step(state, batch, hyper) -> (state, metrics)``: one iteration.

    The metrics describe the params before the update (the loss at which the gradient was
    taken). For L-BFGS one iteration is a ``lax.while_loop`` of ticks (``optim``) until its line
    search ends; ``make_train_chunk`` instead loops over ticks directly, so that members of a
    sweep never wait for each other's line search.
    """
    evaluate = make_evaluate(config)
    if config.optimizer == "lbfgs":
        tick = optim.make_lbfgs_tick(evaluate, config.steps)

        def lbfgs_step(state: TrainState, batch, hyper: Hyper):
            def cond(carry):
                state, _, accepted = carry
                return ~accepted & (state.opt_state.stop == optim.RUNNING)

            def body(carry):
                state, _, _ = carry
                params, step, opt, row, accepted = tick(state.params, state.step,
                                                        state.opt_state, batch, hyper)
                return state.replace(params=params, step=step, opt_state=opt), row, accepted

            row0 = _empty_row(state.params)
            state, row, _ = jax.lax.while_loop(cond, body, (state, row0, jnp.zeros((), bool)))
            return state, row

        return lbfgs_step

    tx = optim.make_optimizer(config)

    def train_step(state: TrainState, batch, hyper: Hyper):
        terms, g = evaluate(state.params, batch, hyper)
        updates, opt_state = tx.update(g, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {**optim.scalar_terms(terms), "grad_norm": optax.tree.norm(g)}
        return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics

    return train_step


def _empty_row(params) -> dict:
    zero = jnp.zeros((), jax.tree.leaves(params)[0].dtype)
    return {**{k: zero for k in optim.TERM_KEYS}, "grad_norm": zero,
            "linesearch_steps": jnp.zeros((), jnp.int32)}


def stopped(state: TrainState) -> jax.Array:
    """Whether the run has stopped before its budget (L-BFGS only; minibatch runs never do)."""
    stop = getattr(state.opt_state, "stop", None)
    return jnp.zeros((), bool) if stop is None else stop != optim.RUNNING


def make_lbfgs_member(config: TrainConfig, batched: bool = False):
    """One L-BFGS member's loop pieces: ``(running, advance, rows0)``; ``batched`` when a sweep
    will vmap them (it picks the evaluation's block size, see ``make_evaluate``).

    ``running(state, end)``: the member has not stopped and its iterations are below ``end``.
    ``advance(state, rows, data, hyper, end, num_steps, active=True)``: one tick (one evaluation
    of J and its gradient); when an iteration finishes, its metrics go to row
    ``step - (end - num_steps)``. With ``active`` False the L-BFGS memory is left as it was.
    ``rows0(params, num_steps)``: empty metric rows. A standalone run loops ``advance`` while
    ``running``; a sweep advances all its members at once (``sweeps.make_sweep_chunk``).
    """
    tick = optim.make_lbfgs_tick(make_evaluate(config, batched), config.steps)

    def running(state: TrainState, end):
        return (state.opt_state.stop == optim.RUNNING) & (state.step < end)

    def advance(state: TrainState, rows, data, hyper: Hyper, end, num_steps: int, active=True):
        params, step, opt, row, accepted = tick(state.params, state.step, state.opt_state,
                                                data, hyper, active)
        i = jnp.clip(state.step - (end - num_steps), 0, num_steps - 1)
        row = {**row, "valid": jnp.ones((), bool)}
        rows = {k: v.at[i].set(jnp.where(accepted, row[k], v[i])) for k, v in rows.items()}
        return state.replace(params=params, step=step, opt_state=opt), rows

    def rows0(params, num_steps: int):
        rows = {k: jnp.zeros((num_steps,), v.dtype) for k, v in _empty_row(params).items()}
        return {**rows, "valid": jnp.zeros((num_steps,), bool)}

    return running, advance, rows0


def make_train_chunk(config: TrainConfig):
    """Returns ``train_chunk(state, data, hyper, num_steps) -> (state, metrics)``.

    Minibatch optimizers: ``num_steps`` iterations of ``train_step`` in one ``lax.scan``; each
    minibatch is drawn from ``data`` (M, N) with ``fold_in(key, step)`` (uniform, with
    replacement), so a run resumed at any step sees the same batches.

    L-BFGS: a ``lax.while_loop`` of ticks (one evaluation each) until ``num_steps`` more
    iterations are done or the run stops. It ends on an iteration boundary, so a run resumed
    there replays the same computation.

    Metrics come back stacked, one row per iteration, with ``valid`` marking the rows of
    iterations that ran (all of them, unless an L-BFGS run stopped inside the chunk).
    """
    if config.optimizer == "lbfgs":
        running, advance, rows0 = make_lbfgs_member(config)

        def lbfgs_chunk(state: TrainState, data, hyper: Hyper, num_steps: int):
            end = state.step + num_steps
            return jax.lax.while_loop(
                lambda carry: running(carry[0], end),
                lambda carry: advance(*carry, data, hyper, end, num_steps),
                (state, rows0(state.params, num_steps)))

        return lbfgs_chunk

    train_step = make_train_step(config)
    batch_size = config.batch_size

    def train_chunk(state: TrainState, data, hyper: Hyper, num_steps: int):
        def body(state, _):
            if batch_size is None:
                batch = data
            else:
                key = jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step)
                idx = jax.random.randint(key, (batch_size,), 0, data.shape[0])
                batch = jnp.take(data, idx, axis=0)
            state, metrics = train_step(state, batch, hyper)
            return state, {**metrics, "valid": jnp.ones((), bool)}

        return jax.lax.scan(body, state, None, length=num_steps)

    return train_chunk


_PROGRAM_CACHES: list = []


def program_cache(build):
    """Caches ``build(program, ...)``, a factory of compiled programs; see ``clear_program_cache``.

    Callers pass ``config.program()``, so configs that differ only in traced values, data or
    logging share one compiled program.
    """
    cached = functools.lru_cache(maxsize=32)(build)
    _PROGRAM_CACHES.append(cached)
    return cached


def clear_program_cache() -> None:
    """Forgets every cached program (training and sweeps), so the next run traces afresh.

    For benchmarks that time compilation and tests that count traces; training never needs it.
    """
    for cached in _PROGRAM_CACHES:
        cached.cache_clear()


@program_cache
def _jitted_chunk(program: TrainConfig):
    # The L-BFGS state (its memory of past steps) is donated: the chunk updates it in place.
    donate = (0,) if program.optimizer == "lbfgs" else ()
    return jax.jit(make_train_chunk(program), static_argnames="num_steps", donate_argnums=donate)


def jitted_train_chunk(config: TrainConfig):
    """``jax.jit(make_train_chunk(config))``, one per compiled program (``config.program()``)."""
    return _jitted_chunk(config.program())


def set_learning_rate(state: TrainState, lr: float) -> TrainState:
    """The state with its injected learning rate replaced (no-op for L-BFGS)."""
    hp = getattr(state.opt_state, "hyperparams", None)
    if hp is None or "learning_rate" not in hp:
        return state
    new_hp = dict(hp, learning_rate=jnp.asarray(lr, hp["learning_rate"].dtype))
    return state.replace(opt_state=state.opt_state._replace(hyperparams=new_hp))


@dataclass
class RunResult:
    """What ``run`` returns: the final state, the logged history and the summary."""

    state: TrainState
    history: list
    summary: dict
    workdir: Path | None


def _chunk_lengths(start: int, steps: int, chunk: int):
    """Chunk lengths from ``start`` to ``steps``, ending on multiples of ``chunk``."""
    step = start
    while step < steps:
        n = min(chunk - step % chunk, steps - step)
        yield n
        step += n


def run(
    config: TrainConfig,
    data,
    workdir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    data_info: dict | None = None,
    tensorboard: bool = False,
) -> RunResult:
    """Trains the sparse autoencoder on ``data`` (M, N) and writes the run directory.

    Args:
      config: the run's settings (``TrainConfig``).
      data: training examples, shape (M, N), one per row, finite.
      workdir: run directory for config.json, metrics.jsonl, summary.json, checkpoints/ and the
        figures; None trains in memory only.
      resume: continue from the latest checkpoint in ``workdir/checkpoints``.
      progress: show a tqdm bar with the loss and mean rho_hat.
      data_info: a description of the data, stored in config.json.
      tensorboard: also write TensorBoard summaries to ``workdir/tensorboard`` (``saejax.tblog``;
        needs the tensorboard package and a workdir).

    Returns:
      ``RunResult(state, history, summary, workdir)``.

    Raises:
      ValueError: bad settings or data. CheckpointError: a checkpoint that cannot be used, or
      checkpoints present without ``resume``. DivergenceError: a NaN or Inf loss.
    """
    if config.dtype == "float64" and not jax.config.jax_enable_x64:
        raise ValueError("dtype float64 needs jax_enable_x64: call "
                         "jax.config.update('jax_enable_x64', True) first.")
    dtype = jnp.dtype(config.dtype)
    data = np.asarray(data)
    checks.check_x(data, data.shape[-1] if data.ndim == 2 else -1, name="training data")
    m, n_visible = data.shape
    compile_cache.enable()
    if config.batch_size is not None and config.batch_size > m:
        raise ValueError(f"batch_size {config.batch_size} exceeds the {m} training examples.")
    hyper = Hyper(rho=config.rho, beta=config.beta, lam=config.lam)
    if tensorboard:
        if workdir is None:
            raise ValueError("tensorboard=True needs a workdir to write its summaries to.")
        tblog.check_available()
    data = jnp.asarray(data, dtype)  # on the device from here on

    state = init_state(config, n_visible)
    history: list = []
    ckpt = None
    if workdir is not None:
        workdir = rundir.claim(workdir, "run", resume)  # nothing is written before this check
        ckpt = Checkpointer(workdir / "checkpoints", config.keep_checkpoints)
        # the data as trained on, whatever the description says
        data_info = {**(data_info or {}), "shape": [m, n_visible], "num_examples": m}
        state, history = _start(config, workdir, ckpt, state, resume, n_visible, data_info)

    board = tblog.ScalarWriter(workdir / "tensorboard") if tensorboard else None
    train_chunk = jitted_train_chunk(config)
    compiled, compile_seconds = {}, 0.0
    start_step = int(state.step)
    bar = progress_bar(config.steps, start_step, progress)
    saves = SaveClock(config.checkpoint_seconds)
    t_start = time.perf_counter()
    try:
        for n in _chunk_lengths(start_step, config.steps, config.steps_per_call):
            if bool(stopped(state)):
                break
            if n not in compiled:
                t0 = time.perf_counter()
                compiled[n] = train_chunk.lower(state, data, hyper, num_steps=n).compile()
                compile_seconds += time.perf_counter() - t0
                if workdir is not None and len(compiled) == 1:
                    prefetch_imports()  # while the chunks run
            first = int(state.step)
            new_state, metrics = compiled[n](state, data, hyper)  # L-BFGS: state donated
            metrics = jax.device_get(metrics)
            valid = metrics.pop("valid")
            metrics = {k: v[valid] for k, v in metrics.items()}
            # L-BFGS never accepts a non-finite point: its new state is the last good one.
            last_good = new_state if config.optimizer == "lbfgs" else state
            _check_finite(metrics, new_state, first, last_good, ckpt, config)
            state = new_state
            step = int(state.step)
            rows = _log_rows(metrics, first, config, last=bool(stopped(state)))
            history.extend(rows)
            if workdir is not None:
                with open(workdir / "metrics.jsonl", "a") as f:
                    f.writelines(json.dumps(r) + "\n" for r in rows)
                for r in rows if board is not None else ():
                    board.scalars(r["step"], r)
                if step == config.steps or bool(stopped(state)) or (
                        step % config.checkpoint_every == 0 and saves.due()):
                    ckpt.save(step, state)
                    saves.saved()
            bar.update(step - first)
            if rows:
                bar.set_postfix(loss=f"{rows[-1]['loss']:.4g}",
                                rho_hat=f"{rows[-1]['rho_hat_mean']:.3g}")
        wall = time.perf_counter() - t_start
        summary = _summary(state, data, hyper, config, wall, compile_seconds, start_step)
        # the bar's last word: J after the last update, as the final row below
        bar.set_postfix(loss=f"{summary['final_loss']:.4g}",
                        rho_hat=f"{summary['rho_hat_mean']:.3g}")
    finally:
        bar.close()
        if ckpt is not None:
            ckpt.close()
        if board is not None:  # a run that diverged keeps what it logged
            board.flush()
    # The rows above hold J where each iteration began; the last one ends the curve at the
    # final J, on all the data, after the last update.
    history.append(final_row(summary))
    if workdir is not None:
        with open(workdir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(history[-1]) + "\n")
        if board is not None:  # the final values, and what only the summary holds
            board.scalars(summary["steps"], {
                **{f"final/{k}": v for k, v in history[-1].items() if k != "step"},
                **{f"final/{k}": summary[k] for k in ("rho_hat_min", "rho_hat_max",
                                                       "dead_fraction")}})
            board.close()
        rundir.write_json(workdir / "summary.json", summary)
        _figures(state, summary, history, config, workdir)
    return RunResult(state=state, history=history, summary=summary, workdir=workdir)


# Settings a resumed run may change; every other one must match the run it continues.
RESUMABLE_CHANGES = ("lr", "steps", "log_every", "checkpoint_every", "checkpoint_seconds",
                     "keep_checkpoints")


class SaveClock:
    """Whether a checkpoint is due: ``seconds`` have passed since the last one (or the start).

    A checkpoint costs about the same whatever the run (orbax: 50-100 ms of CPU on 2 cores), so
    on a run of milliseconds a step, every ``checkpoint_every`` steps would cost a tenth of
    the training; a run that is killed loses at most ``seconds`` and a chunk. Where the
    checkpoints fall never changes the result: a run resumed from any chunk end replays the same
    computation.
    """

    def __init__(self, seconds: float, clock=time.perf_counter):
        self.seconds, self.clock = seconds, clock
        self.last = clock()

    def due(self) -> bool:
        return self.clock() - self.last >= self.seconds

    def saved(self) -> None:
        self.last = self.clock()


def saved_config(workdir: str | Path) -> TrainConfig:
    """The TrainConfig recorded in a run directory's config.json (to resume it)."""
    path = Path(workdir) / "config.json"
    if not path.is_file():
        raise CheckpointError(f"cannot resume: {path} is missing. Start a new run instead.")
    try:
        return TrainConfig(**json.loads(path.read_text())["config"])
    except (ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"cannot resume: {path} is unreadable ({err}).") from err


def _read_metrics(path: Path) -> list:
    """The rows of metrics.jsonl; a last line cut short by a kill is dropped."""
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            logger.warning("%s: dropped a line cut short by an interrupted write", path)
    return rows


def _segment_settings(config: TrainConfig) -> dict:
    return {k: getattr(config, k) for k in RESUMABLE_CHANGES}


def _start(config, workdir, ckpt, state, resume, n_visible, data_info):
    """Writes config.json, or on resume checks it and restores the latest checkpoint.

    config.json's ``segments`` list every start and resume: the step it began at and the
    settings a resume may change (learning rate, budget, logging), so the record says which
    steps ran with which settings. ``config`` holds the latest segment's settings.
    """
    config_path = workdir / "config.json"
    record = {"kind": "run", "config": asdict(config), "n_visible": n_visible,
              "data": data_info or {}, "segments": [rundir.segment(0, _segment_settings(config))]}
    if not resume:
        rundir.write_json(config_path, record)
        rundir.write_text(workdir / "metrics.jsonl", "")
        return state, []
    saved_record = rundir.read_json(config_path)
    saved = asdict(saved_config(workdir))
    n_saved = saved_record.get("n_visible")
    changed = {k: (saved[k], v) for k, v in asdict(config).items()
               if k not in RESUMABLE_CHANGES and saved.get(k) != v}
    if changed or n_saved != n_visible:
        if n_saved != n_visible:
            changed["n_visible"] = (n_saved, n_visible)
        listing = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changed.items())
        raise CheckpointError(
            f"cannot resume {workdir}: this run's settings differ from the saved run's "
            f"({listing}). Only {', '.join(RESUMABLE_CHANGES)} may change on resume; use "
            "another --workdir for a different run."
        )
    latest = ckpt.latest_step()
    if latest is not None and config.steps < latest:
        raise CheckpointError(
            f"cannot resume {workdir} with steps {config.steps}: the run is already at step "
            f"{latest}. Pass --steps above {latest} to train on, or leave it out."
        )
    state = set_learning_rate(ckpt.restore(state), config.lr)
    stop = getattr(state.opt_state, "stop", None)
    if stop is not None and int(stop) == optim.BUDGET and int(state.step) < config.steps:
        # an L-BFGS run that used up its budget continues when resumed with a larger one
        state = state.replace(opt_state=state.opt_state.replace(stop=jnp.asarray(optim.RUNNING,
                                                                                 stop.dtype)))
    step = int(state.step)
    logger.info("resumed from checkpoint %d in %s", step, ckpt.directory)
    history = []
    metrics_path = workdir / "metrics.jsonl"
    if metrics_path.is_file():
        # Lines written after the checkpoint were from steps that will be run again.
        history = [r for r in _read_metrics(metrics_path) if r["step"] < step]
        rundir.write_text(metrics_path, "".join(json.dumps(r) + "\n" for r in history))
    # Segments that began after this checkpoint are replayed from here: the new one replaces them.
    segments = [g for g in saved_record.get("segments", []) if g["start_step"] < step]
    record["segments"] = segments + [rundir.segment(step, _segment_settings(config))]
    record["resumed_from"] = step
    rundir.write_json(config_path, record)
    return state, history


def _check_finite(metrics, new_state, first, last_good, ckpt, config):
    finite = np.isfinite(metrics["loss"])
    params_ok = all(np.isfinite(v).all() for v in jax.device_get(new_state.params).values())
    value_ok = np.isfinite(jax.device_get(getattr(new_state.opt_state, "value", 0.0)))
    if finite.all() and params_ok and value_ok:
        return
    bad = first + (int(np.argmin(finite)) if not finite.all() else len(finite))
    where = "no checkpoint was written"
    if ckpt is not None:
        good = int(last_good.step)
        ckpt.save(good, last_good)  # the last good state, if it is not saved already
        where = f"the last good state (step {good}) is saved in {ckpt.directory}"
    raise DivergenceError(
        f"training diverged: the loss became NaN or Inf at step {bad}. Training stopped and "
        f"{where}. "
        + (f"Lower the learning rate (now {config.lr}) and run again with --resume (a resume "
           f"may change only {', '.join(RESUMABLE_CHANGES)}), or start a new run in another "
           "--workdir with a smaller lam or beta."
           if ckpt is not None else
           f"Lower the learning rate (now {config.lr}), lam or beta and run again.")
    )


def _log_rows(metrics, first, config, last=False) -> list:
    """Every log_every-th row, the budget's last and, when the run stopped early, its last."""
    n = len(metrics["loss"])
    rows = []
    for i in range(n):
        step = first + i
        if step % config.log_every == 0 or step == config.steps - 1 or (last and i == n - 1):
            rows.append({"step": step, **{k: float(v[i]) for k, v in metrics.items()}})
    return rows


@partial(jax.jit, static_argnames=("penalty", "decoder", "tied"))
def final_stats(params, x, hyper, penalty, decoder="sigmoid", tied=False):
    """J's terms and the activation statistics of trained params on the data (jitted)."""
    return (losses.compute_terms(params, x, hyper, penalty, decoder, tied),
            activation_stats(params, x, hyper.rho, decoder, tied))


def count_arrays(state: TrainState) -> tuple:
    """``(step, evaluations, stop)`` of a state: the arrays ``run_counts`` reads (L-BFGS's two
    counters are None for a minibatch optimizer). A sweep gathers just these across hosts."""
    opt = state.opt_state
    return state.step, getattr(opt, "evaluations", None), getattr(opt, "stop", None)


def run_counts(state, config: TrainConfig) -> dict:
    """Iterations, evaluations of J and its gradient, and why the run stopped.

    ``state`` is a TrainState or its ``count_arrays``; a sweep's stacked states give lists, one
    value per member.
    """
    step, evals, stop = jax.device_get(count_arrays(state) if isinstance(state, TrainState)
                                       else state)
    step = np.asarray(step)
    if config.optimizer == "lbfgs":
        evals, stop = np.asarray(evals), np.asarray(stop)
    else:  # one evaluation per step; a minibatch run stops only at its budget
        evals = step
        stop = np.where(step >= config.steps, optim.BUDGET, optim.RUNNING)
    reasons = np.vectorize(optim.STOP_REASONS.__getitem__, otypes=[object])(stop)
    return {"iterations": step.tolist(), "evaluations": evals.tolist(),
            "stop_reason": reasons.tolist()}


def final_row(summary: dict) -> dict:
    """metrics.jsonl's last row: J and its terms at the final params (``"final": true``)."""
    return {"step": summary["steps"], "loss": summary["final_loss"],
            **{k: summary[k] for k in ("reconstruction", "weight_decay", "sparsity",
                                       "rho_hat_mean")},
            "final": True}


def _summary(state, x, hyper, config, wall, compile_seconds, start_step) -> dict:
    terms, stats = jax.device_get(
        final_stats(state.params, x, hyper, config.penalty, config.decoder, config.tied))
    return {
        "final_loss": float(terms["loss"]),
        "reconstruction": float(terms["reconstruction"]),
        "weight_decay": float(terms["weight_decay"]),
        "sparsity": float(terms["sparsity"]),
        "rho_hat_mean": float(stats["rho_hat_mean"]),
        "rho_hat_min": float(stats["rho_hat_min"]),
        "rho_hat_max": float(stats["rho_hat_max"]),
        "dead_fraction": float(stats["dead_fraction"]),
        "explained_variance": float(stats["explained_variance"]),
        "rho_hat": np.asarray(stats["rho_hat"]).tolist(),
        "steps": int(state.step),
        "steps_this_run": int(state.step) - start_step,
        **run_counts(state, config),
        "wall_seconds": wall,
        "compile_seconds": compile_seconds,
    }


def prefetch_imports() -> threading.Thread:
    """Imports matplotlib (through saejax.viz) and orbax in a background thread.

    Each takes a second or more to import. The training loop leaves the interpreter idle while
    XLA computes, so a thread started before training hides that cost from the checkpoints and
    figures that need them.
    """

    def load():
        try:
            importlib.import_module("orbax.checkpoint")
            importlib.import_module("saejax.viz")
        except Exception:  # the main thread imports them itself when it needs them
            logger.debug("background import failed", exc_info=True)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    return thread


def _figures(state, summary, history, config, workdir) -> None:
    from saejax import viz

    n_visible = state.params["W1"].shape[1]
    side = math.isqrt(n_visible)
    if config.dataset == "color-patches":  # rows of W1 in the ZCA-whitened colour domain
        viz.save_filters(state.params["W1"], workdir / "filters.png", channels=3,
                         title=f"W1 rows (ZCA domain), rho={config.rho}, beta={config.beta}")
    elif side * side == n_visible:
        viz.save_filters(state.params["W1"], workdir / "filters.png",
                         title=f"W1 rows, rho={config.rho}, beta={config.beta}")
    if history:
        segments = rundir.read_json(workdir / "config.json").get("segments", [])
        viz.save_curves(history, workdir / "curves.png", title=f"{config.optimizer}, {config.grad}",
                        resumed_at=[g["start_step"] for g in segments if g["start_step"] > 0])
    viz.save_rho_hat_histogram(np.asarray(summary["rho_hat"]), config.rho, workdir / "rho_hat.png")


def progress_bar(total, initial, enabled):
    from tqdm import tqdm  # plain text bar: also fine in notebooks, with no widget needed

    return tqdm(total=total, initial=initial, disable=not enabled, unit="step",
                dynamic_ncols=True, leave=True)
