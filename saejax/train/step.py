"""One evaluation, one step and one compiled chunk of steps: the pure functions a run and a
sweep both train with.

    make_evaluate(config)    (params, batch, hyper) -> (terms, grads): J, its terms, dJ/dparams
    make_train_step(config)  (state, batch, hyper) -> (state, metrics): one minibatch iteration
    make_train_chunk(config) (state, data, hyper, num_steps) -> (state, metrics per step)
        minibatch optimizers: lax.scan of steps; L-BFGS: lax.while_loop of ticks (optim.lbfgs)

Names by role, the same across saejax: ``data`` is the whole training set (M, N); ``batch`` is
the rows one step trains on (all of ``data`` for a full-batch method); ``x`` is the examples J
is evaluated on, as in the loss and gradient functions.
"""

from __future__ import annotations

import warnings
from functools import partial

import jax
import jax.numpy as jnp
import optax

from saejax import architectures, folded, grads, losses, optim
from saejax.config import AUTO, TrainConfig
from saejax.losses import Hyper
from saejax.runtime.compile_cache import program_cache
from saejax.train.state import TrainState

# Most examples per block of the analytic evaluation of a large batch
# (grads.terms_and_grad_blocked splits it into equal blocks: 10,000 examples into 5 of 2,000),
# for one member, and for each member when a sweep evaluates many at once: two passes over
# blocks keep the (M, N) temporaries in cache. docs/benchmarks.md has the measurements.
EVAL_BLOCK = 2048
EVAL_BLOCK_BATCHED = 1024
# member_eval="auto": the sweep's evaluation on each platform, as measured (docs/gpu.md). On 2
# CPU cores, 64 members at 64-25 (m = 10,000) took 172 ms blocked, 229 ms whole and 477 ms
# folded; 16 at 784-196, 1,046, 1,443 and 2,226 ms. On one H200, 1,024 members at 64-25 took
# 9.9, 8.2 and 9.7 ms, 64 at 784-196 13.1, 10.7 and 11.7 ms, and the 1,024-member exercise
# sweep 6.2, 5.4 and 5.8 s. Blocks keep the CPU's caches warm; an accelerator does better
# without them. TPU: not measured, taken as the GPU.
MEMBER_EVAL_RULE = {"cpu": "blocked", "gpu": "whole", "tpu": "whole"}


def member_eval_of(config: TrainConfig, platform: str | None = None) -> str:
    """The sweep's member evaluation: ``config.member_eval``, or for "auto" the rule of
    ``platform`` (default: JAX's default backend's) in ``MEMBER_EVAL_RULE``."""
    if config.member_eval != AUTO:
        return config.member_eval
    return MEMBER_EVAL_RULE.get(platform or jax.default_backend(), "blocked")


def settled(config: TrainConfig) -> TrainConfig:
    """``config`` with its "auto" choices that depend on the machine made (``member_eval``):
    what a run or sweep records in config.json and compiles."""
    return config.replace(member_eval=member_eval_of(config))


def make_evaluate(config: TrainConfig, batched: bool = False):
    """``evaluate(params, batch, hyper, dead=None) -> (terms, grads)``: J, its terms and
    dJ/dparams.

    One evaluation: the hand-written forward and backward pass (``grad="analytic"``), or
    ``jax.value_and_grad`` of the loss (``grad="autodiff"``). For the sigmoid network the
    analytic pass runs over blocks of ``EVAL_BLOCK`` examples when the batch holds at least
    two blocks. ``batched``: a sweep will vmap it over its members, evaluated as
    ``member_eval_of(config)`` says: "blocked" (blocks of ``EVAL_BLOCK_BATCHED``), "whole"
    (all examples at once), "folded" (``saejax.folded``: all members in wide products
    when they share the batch) or "kernel" (``saejax.kernel``: one GPU kernel per member
    when they share the batch). ``terms`` holds loss, reconstruction, weight_decay, sparsity,
    the vector rho_hat, mean_l0 and fvu. ``dead`` (bool, (H,)) names the latents topk's and
    batchtopk's auxiliary loss may use (the sigmoid network ignores it).
    """
    if config.arch != "sigmoid":
        return _family_evaluate(config)
    penalty, decoder, tied = config.penalty, config.decoder, config.tied
    if config.grad == "analytic":
        how = member_eval_of(config) if batched else "blocked"
        block = EVAL_BLOCK_BATCHED if batched else EVAL_BLOCK
        whole = partial(grads.terms_and_grad, penalty=penalty, decoder=decoder, tied=tied)
        blocked = partial(grads.terms_and_grad_blocked, penalty=penalty, decoder=decoder,
                          tied=tied, block=block)
        if how == "blocked":
            return lambda params, batch, hyper, dead=None: (
                blocked if batch.shape[0] >= 2 * block else whole)(params, batch, hyper)
        if how in ("folded", "kernel"):
            if how == "kernel" and jax.default_backend() != "gpu":
                warnings.warn(f"member_eval 'kernel' is a GPU kernel: on {jax.default_backend()} "
                              "it runs in Pallas's interpreter, correct but slow (member_eval "
                              "'auto' picks this platform's own).", stacklevel=2)
            if how == "kernel":  # Pallas imported only where a sweep asks for it
                from saejax.kernel import kernel_terms_and_grad as stack
            else:
                stack = folded.folded_terms_and_grad
            evaluate = folded.member_vmap(whole, partial(stack, penalty=penalty, decoder=decoder,
                                                         tied=tied))
            return lambda params, batch, hyper, dead=None: evaluate(params, batch, hyper)
        return lambda params, batch, hyper, dead=None: whole(params, batch, hyper)

    return _autodiff(lambda p, batch, hyper, dead: losses.compute_terms(
        p, batch, hyper, penalty, decoder, tied))


def _family_evaluate(config: TrainConfig):
    arch, options = config.arch, architectures.options_of(config)
    if config.grad == "analytic":
        return lambda params, batch, hyper, dead=None: architectures.terms_and_grad(
            params, batch, hyper, arch, options, dead)
    return _autodiff(lambda p, batch, hyper, dead: architectures.terms(
        p, batch, hyper, arch, options, dead))


def _autodiff(terms_of):
    """``evaluate`` by ``jax.value_and_grad`` of ``terms_of(params, batch, hyper, dead)``'s J."""

    def evaluate(params, batch, hyper, dead=None):
        def f(p):
            terms = terms_of(p, batch, hyper, dead)
            return terms["loss"], terms

        (_, terms), g = jax.value_and_grad(f, has_aux=True)(params)
        return terms, g

    return evaluate


def make_train_step(config: TrainConfig, batched: bool = False):
    """Returns the pure ``train_step(state, batch, hyper) -> (state, metrics)``: one iteration
    of a minibatch optimizer (adam, sgd, momentum); ``batched`` when a sweep will vmap it (its
    evaluation is then ``member_eval_of(config)``'s, see ``make_evaluate``).

    The metrics describe the params before the update (the loss at which the gradient was
    taken). L-BFGS has no such step: an iteration is as many evaluations as its line search
    takes, so it advances by ticks (``make_lbfgs_driver``).
    """
    if config.optimizer == "lbfgs":
        raise ValueError("L-BFGS advances by ticks, not steps: use make_train_chunk or "
                         "make_lbfgs_driver.")
    evaluate = make_evaluate(config, batched)
    tx = optim.make_optimizer(config)
    family = config.arch != "sigmoid"

    def train_step(state: TrainState, batch, hyper: Hyper):
        dead = state.since_fired >= config.dead_window
        terms, g = evaluate(state.params, batch, hyper, dead)
        updates, opt_state = tx.update(g, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        if family:  # unit-norm decoder columns, batchtopk's threshold
            params = architectures.after_update(params, terms, config.arch, state.step == 0)
        since_fired = jnp.where(terms["rho_hat"] > 0, 0, jnp.minimum(
            state.since_fired + batch.shape[0], config.dead_window)).astype(jnp.int32)
        metrics = {**losses.scalar_terms(terms), "grad_norm": optax.tree.norm(g)}
        return state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                             since_fired=since_fired), metrics

    return train_step


def make_lbfgs_driver(config: TrainConfig, batched: bool = False) -> optim.LbfgsDriver:
    """One L-BFGS member's ``LbfgsDriver(init, step, cond)`` on a ``TrainState``; ``batched``
    when a sweep will vmap it (it picks the evaluation's block size, see ``make_evaluate``)."""
    if config.lbfgs_memory_dtype == "bfloat16" and jax.default_backend() == "cpu":
        warnings.warn("lbfgs_memory_dtype 'bfloat16' is meant for a GPU: on the CPU, XLA widens "
                      "the memory into float32 copies at every tick, which takes more memory "
                      "and time than 'same'.", stacklevel=2)
    return optim.make_driver(make_evaluate(config, batched), config.steps)


def make_train_chunk(config: TrainConfig, batched: bool = False):
    """Returns ``train_chunk(state, data, hyper, num_steps) -> (state, metrics)``; ``batched``
    when a sweep will vmap it (``make_evaluate``).

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
        driver = make_lbfgs_driver(config, batched)

        def lbfgs_chunk(state: TrainState, data, hyper: Hyper, num_steps: int):
            end = state.step + num_steps
            return jax.lax.while_loop(
                lambda carry: driver.cond(carry[0], end),
                lambda carry: driver.step(*carry, data, hyper, end, num_steps),
                (state, driver.init(state.params, num_steps)))

        return lbfgs_chunk

    train_step = make_train_step(config, batched)
    batch_size = config.batch_size

    def train_chunk(state: TrainState, data, hyper: Hyper, num_steps: int):
        # (num_steps, B, N): the chunk's minibatches, read on the host from a stream
        # (saejax.train.feed) at the indices minibatch_indices gives, so the run is the same
        drawn = data.ndim == 3

        def body(state, batch):
            if not drawn and batch_size is None:
                batch = data
            elif not drawn:
                idx = minibatch_indices(state.key, state.step, batch_size, data.shape[0])
                batch = jnp.take(data, idx, axis=0)
            state, metrics = train_step(state, batch, hyper)
            return state, {**metrics, "valid": jnp.ones((), bool)}

        return jax.lax.scan(body, state, data if drawn else None, length=num_steps)

    return train_chunk


def minibatch_indices(key_data, step, batch_size: int, m: int):
    """The rows of step ``step``'s minibatch: ``batch_size`` uniform draws from ``m`` rows, with
    replacement, keyed by ``fold_in(key, step)`` (a resumed run draws the same ones)."""
    key = jax.random.fold_in(jax.random.wrap_key_data(key_data), step)
    return jax.random.randint(key, (batch_size,), 0, m)


@program_cache
def _jitted_chunk(program: TrainConfig):
    # The L-BFGS state (its memory of past steps) is donated: the chunk updates it in place.
    donate = (0,) if program.optimizer == "lbfgs" else ()
    return jax.jit(make_train_chunk(program), static_argnames="num_steps", donate_argnums=donate)


def jitted_train_chunk(config: TrainConfig):
    """``jax.jit(make_train_chunk(config))``, one per compiled program (``config.program()``)."""
    return _jitted_chunk(config.program())


def chunk_lengths(start: int, steps: int, chunk: int):
    """Chunk lengths from step ``start`` to ``steps``, each ending on a multiple of ``chunk``
    (or at ``steps``), so a resumed run's chunks end where the uninterrupted run's did."""
    step = start
    while step < steps:
        n = min(chunk - step % chunk, steps - step)
        yield n
        step += n
