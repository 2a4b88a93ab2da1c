"""TopK with k traced (a sort, saejax's until 2708021; one program for every k) against k static
(``jax.lax.top_k``, one program per k) and a sort-free traced k (bisection, saejax's since), for a
64-member sweep, in one process.

Command:   .venv/bin/python -m experiments.bench.topk [--repeats 21] [--quick]
Needs:     nothing beyond saejax.
Run time:  about 3 minutes on 2 CPU cores (--quick: about a minute, 5 repeats).
Expected:  a table of per-step milliseconds and compile seconds (bench_topk.md and .json in
           --out, default experiments/results; runs/quick with --quick).

The design question: k changes shapes. Either the members are grouped by k into blocks, each
compiled with a static k and ``jax.lax.top_k``, or top-k becomes a masked operation with k a
traced leaf, so that one compiled program covers every k, which is what saejax does: first
with a sort along the latents (the k-th largest as a threshold), since 2708021 with a sort-free
bisection (``saejax.architectures.common.kth_largest``). Measured here, 64 members of
64-256-64 (k in {4, 8, 16, 32}, 16 members each, their own initializations), one shared batch
of 256 rows of standardized 8x8 patches of the embedded photographs, float32, no auxiliary
loss:
- k traced, sort: the topk forward and its hand-written gradient (``topk.grad_given``) with the
  threshold from a sort, vmapped over the 64 members, k one of the mapped leaves: one program;
- k static: the same math with the threshold taken from ``jax.lax.top_k(pre, k)[0][:, -1]``
  (then ``topk.grad_given``, the same gradient code), vmapped over 16 members: 4 programs, one
  per k, called one after another;
- k traced, bisection: ``saejax.architectures.terms_and_grad`` as it is now, the exact k-th
  largest by bisection on the float32 bit patterns (32 passes of a compare and a count per
  example): one program. (The numbers in docs/benchmarks.md were measured before 2708021, with
  this script's own copy of the same bisection in this column and saejax's sort in the first.)
- the same three as a whole Adam step (the evaluation, optax's adam, decoder columns back to unit
  norm);
- the selection alone: the three thresholds, over the 64 members' (256, 256) pre-activations.
Times are medians of interleaved rounds (``experiments.common.interleaved_medians``); compile
times are lowering and compiling each program once (the 4 static programs added up).
"""

from __future__ import annotations

import argparse
import os
import platform
from dataclasses import dataclass, field
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments.common import (
    add_out_argument,
    compile_seconds,
    count,
    interleaved_medians,
    measured_at,
    measured_label,
    results_dir,
    run_script,
    save_results,
)
from saejax import architectures
from saejax.architectures import common, topk
from saejax.losses import Hyper

KS = (4, 8, 16, 32)
PER_K = 16
N, H, BATCH = 64, 256, 256
OPTIONS = architectures.Options(aux_coeff=0.0)


def static_terms_and_grad(params, x_MxN, hyper, k: int):
    """topk's terms and hand-written gradient with k static: the threshold from lax.top_k."""
    pre = common.pre_activation(params, x_MxN)
    threshold_M = jax.lax.top_k(pre, k)[0][:, -1]
    kept = ((pre >= threshold_M[:, None]) & (pre > 0)).astype(pre.dtype)
    return topk.grad_given(params, x_MxN, hyper, OPTIONS, None, pre, kept)


def kth_largest_sort(values, k):
    """The k-th largest entry along the last axis (k traced) by a sort: saejax's
    ``common.kth_largest`` until 2708021 replaced it by the bisection below."""
    n = values.shape[-1]
    idx = jnp.clip(n - jnp.asarray(k).astype(jnp.int32), 0, n - 1)
    return jnp.take(jnp.sort(values, axis=-1), idx, axis=-1)


def traced_terms_and_grad(params, x_MxN, hyper):
    """topk's terms and hand-written gradient, k traced, the threshold by a sort."""
    pre = common.pre_activation(params, x_MxN)
    kept = ((pre >= kth_largest_sort(pre, hyper.k)[:, None]) & (pre > 0)).astype(pre.dtype)
    return topk.grad_given(params, x_MxN, hyper, OPTIONS, None, pre, kept)


# saejax's own selection since 2708021: the exact k-th largest by bisection (radix select) on
# the float bits, k traced, no sort.
kth_largest_bisect = common.kth_largest


def bisect_terms_and_grad(params, x_MxN, hyper):
    """saejax's own: ``architectures.terms_and_grad``, k traced, the threshold by bisection."""
    return architectures.terms_and_grad(params, x_MxN, hyper, "topk", OPTIONS)


TX = optax.adam(1e-3)


def adam_step(evaluate, state, x_MxN, hyper):
    """One Adam step of one member: evaluate, update, decoder columns back to unit norm."""
    params, opt_state = state
    terms, g = evaluate(params, x_MxN, hyper)
    updates, opt_state = TX.update(g, opt_state, params)
    return common.project(optax.apply_updates(params, updates)), opt_state, terms["loss"]


def members(x_mean, count: int, first: int = 0):
    keys = jax.random.split(jax.random.key(0), first + count)[first:]
    params = jax.vmap(lambda key: architectures.init_params(key, N, H, "topk", x_mean))(keys)
    return params, jax.vmap(TX.init)(params)


def data():
    from saejax.data import embedded_images, sample_patches

    x = sample_patches(embedded_images(), 10_000, 8, seed=0)
    x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)
    return jnp.asarray(x[:BATCH]), jnp.asarray(x.mean(0))


def hyper_of(k):
    g = k.shape[0]
    zero = jnp.zeros((g,), jnp.float32)
    return Hyper(rho=zero + 0.01, beta=zero, lam=zero, l1=zero, k=k)


def block(tree, i):
    """Members i * PER_K ... of a stacked tree: the block of the i-th k."""
    return jax.tree.map(lambda a: a[i * PER_K:(i + 1) * PER_K], tree)


@dataclass
class Setup:
    """The 64 members, their batch and their k, and each program compiled once."""

    x: jax.Array
    params: dict
    state: tuple
    hyper: Hyper
    k_all: jax.Array
    pre: jax.Array
    compiled: dict = field(default_factory=dict)
    compile_s: dict = field(default_factory=dict)
    hyper_blocks: list = field(init=False)

    def __post_init__(self):
        self.hyper_blocks = self.split(self.hyper)  # sliced once, outside what is timed

    @classmethod
    def make(cls):
        x, x_mean = data()
        params, opt_state = members(x_mean, PER_K * len(KS))
        k_all = jnp.repeat(jnp.asarray(KS, jnp.int32), PER_K)
        pre = jax.jit(jax.vmap(common.pre_activation, in_axes=(0, None)))(params, x)
        return cls(x, params, (params, opt_state), hyper_of(k_all), k_all, pre)

    def compile(self) -> None:
        """Evaluation and Adam step, k traced (one program over 64; by a sort and by bisection)
        and k static (one program per k, 16 members each)."""
        def mapped(fn):
            return jax.jit(jax.vmap(fn, in_axes=(0, None, 0)))

        for name, evaluate in (("traced", traced_terms_and_grad),
                               ("bisect", bisect_terms_and_grad)):
            for kind, fn, first in (("eval", evaluate, self.params),
                                    ("step", partial(adam_step, evaluate), self.state)):
                key = f"{kind} {name}"
                self.compile_s[key], self.compiled[key] = compile_seconds(
                    mapped(fn), first, self.x, self.hyper)
        for kind, first in (("eval", self.params), ("step", self.state)):
            key = f"{kind} static"
            self.compiled[key], self.compile_s[key] = {}, 0.0
            for i, k in enumerate(KS):
                fn = partial(static_terms_and_grad, k=k)
                fn = fn if kind == "eval" else partial(adam_step, fn)
                s, self.compiled[key][k] = compile_seconds(mapped(fn), block(first, i), self.x,
                                                           self.hyper_blocks[i])
                self.compile_s[key] += s

    def static(self, key, blocks):
        """All four static programs, one after another, on ``blocks`` (``split``)."""
        return [self.compiled[key][k](blocks[i], self.x, self.hyper_blocks[i])
                for i, k in enumerate(KS)]

    def split(self, tree) -> list:
        """The blocks of ``tree``, one per k, sliced once (outside what is timed)."""
        return [block(tree, i) for i in range(len(KS))]


SELECT_SORT = jax.jit(jax.vmap(kth_largest_sort))
SELECT_BISECT = jax.jit(jax.vmap(kth_largest_bisect))
SELECT_STATIC = {k: jax.jit(lambda p, k=k: jax.lax.top_k(p, k)[0][..., -1]) for k in KS}


def agreement(s: Setup) -> dict:
    """lax.top_k's and the bisection's losses and dW1 against the sort's (relative; dW1 to its
    largest entry), and whether the bisection's thresholds equal the sort's."""
    t_terms, t_grads = s.compiled["eval traced"](s.params, s.x, s.hyper)
    s_out = s.static("eval static", s.split(s.params))
    b_terms, b_grads = s.compiled["eval bisect"](s.params, s.x, s.hyper)

    def apart(loss, dW1):
        return {"loss": float(jnp.max(jnp.abs(loss - t_terms["loss"])
                                      / jnp.abs(t_terms["loss"]))),
                "dW1": float(jnp.max(jnp.abs(dW1 - t_grads["W1"]))
                             / jnp.max(jnp.abs(t_grads["W1"])))}

    static = apart(jnp.concatenate([o[0]["loss"] for o in s_out]),
                   jnp.concatenate([o[1]["W1"] for o in s_out]))
    return {"static": static, "bisect": apart(b_terms["loss"], b_grads["W1"]),
            "threshold_bisect_equal_sort": bool(jnp.all(SELECT_BISECT(s.pre, s.k_all)
                                                        == SELECT_SORT(s.pre, s.k_all)))}


def timed(s: Setup, repeats: int) -> dict:
    """Milliseconds per call, medians of interleaved rounds."""
    blocks_pre = [s.pre[i * PER_K:(i + 1) * PER_K] for i in range(len(KS))]
    blocks_params, blocks_state = s.split(s.params), s.split(s.state)

    def one(key, first):
        return lambda: jax.block_until_ready(s.compiled[key](first, s.x, s.hyper))

    fns = {
        "eval traced": one("eval traced", s.params),
        "eval static": lambda: jax.block_until_ready(s.static("eval static", blocks_params)),
        "step traced": one("step traced", s.state),
        "step static": lambda: jax.block_until_ready(s.static("step static", blocks_state)),
        "eval bisect": one("eval bisect", s.params),
        "step bisect": one("step bisect", s.state),
        "select bisect": lambda: jax.block_until_ready(SELECT_BISECT(s.pre, s.k_all)),
        "select traced": lambda: jax.block_until_ready(SELECT_SORT(s.pre, s.k_all)),
        "select static": lambda: jax.block_until_ready(
            [SELECT_STATIC[k](blocks_pre[i]) for i, k in enumerate(KS)]),
    }
    return {name: 1e3 * t for name, t in interleaved_medians(fns, repeats, warmup=2,
                                                              burst=3).items()}


ROWS = (("evaluation: topk forward + hand-written gradient", "eval", True),
        ("Adam step: evaluation, adam, unit-norm decoder columns", "step", True),
        ("selection alone: the k-th largest of each example's pre-activations", "select", False))


def render(result: dict) -> str:
    ms, compile_s, agree = result["ms"], result["compile_seconds"], result["agreement"]

    def compile_cell(key):
        return " / ".join(f"{compile_s[f'{key} {v}']:.2f}" for v in ("traced", "static",
                                                                     "bisect"))

    return (f"TopK in a 64-member sweep, k traced against k static ({result['setting']}); "
            f"{result['machine']}; medians of {result['repeats']} interleaved rounds; measured "
            f"{measured_label(result['measured_at'])}.\n\n"
            "| what | k traced, sort: 1 program of 64, ms | k static, lax.top_k: 4 "
            "programs of 16, ms | k traced, bisection (saejax): 1 program of 64, ms | "
            "sort / top_k | sort / bisection | compile s (sort / top_k, 4 added / bisection) |\n"
            "|---|---|---|---|---|---|---|\n"
            + "".join(f"| {label} | {ms[f'{key} traced']:.2f} | {ms[f'{key} static']:.2f} | "
                      f"{ms[f'{key} bisect']:.2f} | "
                      f"{ms[f'{key} traced'] / ms[f'{key} static']:.2f}x | "
                      f"{ms[f'{key} traced'] / ms[f'{key} bisect']:.2f}x | "
                      + (compile_cell(key) if has_compile else "—") + " |\n"
                      for label, key, has_compile in ROWS)
            + f"\nThe three evaluations agree: lax.top_k's losses and dW1 differ from the "
            f"sort's by {agree['static']['loss']:.1e} and {agree['static']['dW1']:.1e}, the "
            f"bisection's by {agree['bisect']['loss']:.1e} and {agree['bisect']['dW1']:.1e} "
            "(relative, dW1 to its largest entry); the bisection's thresholds equal the sort's "
            f"exactly: {agree['threshold_bisect_equal_sort']}.\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=count("repeats"), default=21)
    parser.add_argument("--quick", action="store_true", help="5 repeats")
    add_out_argument(parser, quick=True)
    args = parser.parse_args(argv)
    repeats = 5 if args.quick else args.repeats
    s = Setup.make()
    s.compile()
    machine = (f"{platform.machine()}, {os.cpu_count()} CPU cores, "
               f"{len(jax.devices())} x {jax.devices()[0].platform}, jax {jax.__version__}")
    setting = (f"64 members of 64-{H}-64 (k in {{{', '.join(map(str, KS))}}}, {PER_K} each), one "
               f"shared batch of {BATCH}, float32, no auxiliary loss")
    result = {"machine": machine, "setting": setting, "ms": timed(s, repeats),
              "compile_seconds": s.compile_s, "agreement": agreement(s), "repeats": repeats,
              "measured_at": measured_at()}
    save_results(results_dir(args.out, args.quick), "bench_topk", result, render(result))


if __name__ == "__main__":
    run_script(main)
