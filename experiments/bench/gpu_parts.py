"""The parts of experiments.bench.gpu_check that time pieces: an L-BFGS tick and its parts at
784-196, a language model's forward pass, and the launches of saejax.kernel."""

from __future__ import annotations

import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from experiments.common import matmul_gflops, median_seconds
from saejax import kernel, optim, sweeps, train
from saejax.losses import Hyper


def _sizes(mnist, xm):
    return xm.shape[0], xm.shape[1], mnist.n_hidden


def tick_parts(mnist, xm, quick):
    """Evaluation and two-loop times of one L-BFGS tick for 16 members at 784-196."""
    m, n, h = _sizes(mnist, xm)
    g = 4 if quick else 16
    states = jax.vmap(lambda s: train.init_state(mnist, n, seed=s))(jnp.arange(g))
    hyper = Hyper(jnp.full(g, 0.1), jnp.full(g, 3.0), jnp.full(g, mnist.lam))
    data = jnp.asarray(xm, jnp.float32)
    evaluate = jax.jit(jax.vmap(train.make_evaluate(mnist, batched=True), (0, None, 0)))
    t_eval = median_seconds(
        lambda: jax.block_until_ready(evaluate(states.params, data, hyper)), 11, warmup=2)
    opt = states.opt_state
    flat = jax.vmap(lambda p: ravel_pytree(p)[0])(states.params)
    memory = jax.random.normal(jax.random.key(0), opt.S.shape, opt.S.dtype)
    two_loop = jax.jit(jax.vmap(optim.two_loop))
    gram = memory @ jnp.swapaxes(memory, 1, 2)
    args_ = (flat, memory, 0.5 * memory, jnp.full(opt.rho.shape, 0.01),
             jnp.full((g,), 150, jnp.int32), jnp.ones((g,)), 0.5 * gram, 0.25 * gram)
    t_two = median_seconds(lambda: jax.block_until_ready(two_loop(*args_)), 11, warmup=2)
    bytes_two = 2 * 2 * memory.size * memory.dtype.itemsize  # S and Y read twice
    return (f"{g} members: evaluation {1e3 * t_eval:.1f} ms "
            f"({10.0 * m * n * h * g / t_eval / 1e9:.0f} GFLOP/s); two-loop over "
            f"{opt.S.shape[1]} pairs {1e3 * t_two:.1f} ms "
            f"({bytes_two / t_two / 1e9:.0f} GB/s of S and Y read twice)")

def tick_time(mnist, xm, quick, members):
    """One tick in the sweep's chunk against a plain loop of vmapped ticks."""
    n = xm.shape[1]
    out = []
    data = jnp.asarray(xm, jnp.float32)
    config = mnist.replace(steps=1000)  # no member reaches its budget here
    driver = train.make_lbfgs_driver(config, batched=True)
    advance, rows0 = driver.step, driver.init
    for g in ((2, 4) if quick else members):
        states = jax.vmap(lambda s: train.init_state(config, n, seed=s))(jnp.arange(g))
        hyper = Hyper(jnp.full(g, 0.1), jnp.full(g, 3.0), jnp.full(g, config.lam))
        chunk = jax.jit(sweeps.make_sweep_chunk(config), static_argnames="num_steps",
                        donate_argnums=0)
        states = chunk(states, data, hyper, num_steps=3)[0]  # compiles; fills some memory
        jax.block_until_ready(states)
        before = int(jnp.sum(states.opt_state.evaluations))
        t0 = time.perf_counter()
        states = jax.block_until_ready(chunk(states, data, hyper, num_steps=3)[0])
        ticks = (int(jnp.sum(states.opt_state.evaluations)) - before) / g
        t_chunk = (time.perf_counter() - t0) / max(ticks, 1)
        # the same ticks without the sweep's holding of stopped members
        def plain(states, hyper, ticks_):
            rows = jax.vmap(lambda p: rows0(p, 8))(states.params)
            end = states.step + 8
            step = jax.vmap(advance, in_axes=(0, 0, None, 0, 0, None))
            return jax.lax.fori_loop(
                0, ticks_, lambda i, c: step(*c, data, hyper, end, 8), (states, rows))[0]

        plain = jax.jit(plain, static_argnums=2, donate_argnums=0)
        states = jax.block_until_ready(plain(states, hyper, 4))
        t0 = time.perf_counter()
        states = jax.block_until_ready(plain(states, hyper, 4))
        t_plain = (time.perf_counter() - t0) / 4
        out.append(f"{g} members: {1e3 * t_chunk:.1f} ms per tick in the sweep's chunk, "
                   f"{1e3 * t_plain:.1f} ms in a plain loop of vmapped ticks")
        del states
    return "; ".join(out)


def lm_forward(quick: bool) -> str:
    """Tokens/s of SmolLM2's forward pass in bfloat16, and its GFLOP/s against a bfloat16
    matmul in this process (the FLOPs: 2 per weight per token, and the attention's QK and PV)."""
    from saejax.models import llama

    try:
        lm = llama.load("smollm2", dtype="bfloat16")
        c, params, source = lm.config, lm.params, "the file's weights"
    except Exception as error:  # noqa: BLE001 - the timing needs the shapes, not the weights
        c, params = SMOLLM2_135M, random_params(SMOLLM2_135M)
        source = f"random weights of its shapes ({type(error).__name__}: the file is not here)"
    batch, context = (2, 128) if quick else (64, 512)
    tokens = jax.random.randint(jax.random.key(0), (batch, context), 0, c.vocab_size)
    run = jax.jit(lambda p, t: llama.logits(p, t, c))
    t0 = time.perf_counter()
    jax.block_until_ready(run(params, tokens))
    compile_s = time.perf_counter() - t0
    seconds = median_seconds(lambda: jax.block_until_ready(run(params, tokens)), 11, warmup=2)
    weights = sum(int(np.prod(w.shape[1:])) for w in params["blocks"].values()
                  if w.ndim == 3) * c.n_layers + c.vocab_size * c.d_model
    flops = batch * context * (2.0 * weights + 4.0 * c.n_layers * context * c.d_model / 2)
    peak = matmul_gflops(*((2048,) * 3 if quick else (8192,) * 3), dtype=jnp.bfloat16)
    rate = flops / seconds / 1e9
    return (f"**{batch * context / seconds:,.0f} tokens/s** ({batch} x {context}); "
            f"{rate:,.0f} GFLOP/s, {100 * rate / peak:.1f}% of a bfloat16 matmul's "
            f"{peak:,.0f}; compile {compile_s:.1f} s; {source}")


def _smollm2_135m():
    from saejax.models.gguf_file import LlamaConfig

    return LlamaConfig(n_layers=30, d_model=576, d_ff=1536, n_heads=9, n_kv_heads=3, head_dim=64,
                       rope_base=100000.0, rms_eps=1e-5, vocab_size=49152, context_length=8192,
                       tied=True)


SMOLLM2_135M = _smollm2_135m()  # the shapes SmolLM2-135M-Instruct.Q4_1.gguf states


def random_params(c) -> dict:
    """Params of a model of config ``c`` with random bfloat16 weights (float32 norms), in the
    layout ``llama.to_params`` gives: a forward pass takes as long as with the real ones."""
    shapes = {"attn_norm": (c.d_model,), "attn_q": (c.n_heads * c.head_dim, c.d_model),
              "attn_k": (c.n_kv_heads * c.head_dim, c.d_model),
              "attn_v": (c.n_kv_heads * c.head_dim, c.d_model),
              "attn_output": (c.d_model, c.n_heads * c.head_dim), "ffn_norm": (c.d_model,),
              "ffn_gate": (c.d_ff, c.d_model), "ffn_up": (c.d_ff, c.d_model),
              "ffn_down": (c.d_model, c.d_ff)}
    keys = iter(jax.random.split(jax.random.key(0), len(shapes) + 1))
    blocks = {k: (jnp.ones((c.n_layers, *s), jnp.float32) if k.endswith("norm") else
                  0.02 * jax.random.normal(next(keys), (c.n_layers, *s), jnp.bfloat16))
              for k, s in shapes.items()}
    return {"embed": 0.02 * jax.random.normal(next(keys), (c.vocab_size, c.d_model), jnp.bfloat16),
            "norm": jnp.ones((c.d_model,), jnp.float32), "blocks": blocks}


def kernel_tuning(exercise, x, quick: bool, best: dict | None = None) -> str:
    """saejax.kernel's evaluation of the exercise's members (1,024; 4 with --quick) at each
    block of examples and number of warps (with --quick the default launch and one other), in
    ms and GFLOP/s; the best first, also left in ``best`` as {"block": b, "num_warps": w}."""
    g = 4 if quick else 1024
    states = jax.vmap(lambda s: train.init_state(exercise, x.shape[1], seed=s))(jnp.arange(g))
    hyper = Hyper(jnp.full(g, 0.1), jnp.full(g, 3.0), jnp.full(g, exercise.lam))
    data = jnp.asarray(x, jnp.float32)
    flops = 10.0 * data.shape[0] * data.shape[1] * exercise.n_hidden * g
    times, failed = {}, []
    # the default (kernel.BLOCK, kernel.NUM_WARPS) and its neighbours; 64 rows at 4 warps (the
    # earlier default) spills registers at this size (experiments/bench/kernel_registers.py)
    launches = [(b, w) for b in (16, 32, 64) for w in (4, 8)]
    default = (kernel.BLOCK, kernel.NUM_WARPS)
    other = next(launch for launch in ((32, 4), (16, 8)) if launch != default)
    for block, warps in [default, other] if quick else launches:
        evaluate = jax.jit(partial(kernel.kernel_terms_and_grad, block=block,
                                   num_warps=warps))
        try:  # a setting that fails to compile is reported beside the others' times
            times[block, warps] = median_seconds(
                lambda e=evaluate: jax.block_until_ready(e(states.params, data, hyper)), 11,
                warmup=2)
        except Exception as error:  # noqa: BLE001 - reported in the row
            failed.append(f"block {block}, {warps} warps: FAILED {type(error).__name__}: "
                          f"{str(error)[:150]}")
    ranked = sorted(times.items(), key=lambda item: item[1])
    if ranked and best is not None:
        best.update(block=ranked[0][0][0], num_warps=ranked[0][0][1])
    return "; ".join([f"block {b}, {w} warps: {1e3 * t:.2f} ms ({flops / t / 1e9:.0f} GFLOP/s)"
                      for (b, w), t in ranked] + failed)
