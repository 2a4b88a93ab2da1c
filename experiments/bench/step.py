"""One value-and-gradient step at 64-25-64, m = 10,000: saejax against PyTorch, with its bounds.

Command:   .venv/bin/python -m experiments.bench.step [--repeats 50] [--no-compile] [--quick]
Needs:     PyTorch (pip install -e '.[bench]'; a CPU build suffices).
Run time:  about 1 minute on 2 CPU cores, half of it torch.compile's compilation (30 s
           measured on a busy machine) (--quick: 5 repeats, no torch.compile, about 20 s).
Expected:  a table of milliseconds per step (bench_step.md and .json in --out, default
           experiments/results; runs/quick with --quick); the goal is PyTorch eager / saejax
           >= 1.5x.

One evaluation of J and dJ/dparams on the 10,000 embedded 8x8 patches (the ufldl-patches preset:
64-25-64, rho = 0.01, beta = 3, lambda = 1e-4), float32, full batch, side by side in this process:
- saejax ``train.make_evaluate(config)``, jitted: the hand-written backprop that training runs
  (on m >= 2,048 it is the blocked two-pass version);
- saejax ``jax.value_and_grad(losses.loss)``, jitted (autodiff);
- PyTorch eager autograd: the forward pass and J, ``J.backward()``, grads set to None first;
- the same PyTorch function under ``torch.compile`` (unless --no-compile; its first call, which
  compiles, is timed on its own).
The contenders take turns (experiments.common.interleaved_medians): each turn times 5 calls after one untimed
call, since PyTorch's OpenMP threads keep spinning on the cores for a while after its last call
and would be charged to the next contender. Warm-up is excluded, and the
same starting params (``train.init_state(config, 64, seed=0)``) are used by all.

The arithmetic. FLOPs: 5 matmuls of 2 m n h each (z2, z3, dW2, W2^T delta3, dW1). Bytes: the
arrays a straightforward (unfused) implementation reads and writes, 4 bytes each element:
  forward  read x, write a2; read a2, write a3              2 (m x n) + 2 (m x h)
  rho_hat  read a2                                          1 (m x h)
  delta3   read a3 and x, write delta3 (J comes along)      3 (m x n)
  dW2      read delta3 and a2                               1 (m x n) + 1 (m x h)
  delta2   read delta3 and a2, write delta2                 1 (m x n) + 2 (m x h)
  dW1      read delta2 and x                                1 (m x n) + 1 (m x h)
in all 8 (m x n) + 7 (m x h) arrays (z2 and z3 are never stored; params are negligible), and the
compulsory minimum: x read once. Bandwidth is that of a 256 MB NumPy copy (read + write counted,
write-allocate not), the matmul peak the best of a 2048^3 matmul and the step's own three shapes
(experiments.common.matmul_peak_gflops). Both bounds are lower bounds for data in main memory; x is 2.56 MB
and all the arrays together 27.5 MB, which a large L3 cache may hold, so a step can beat the
bandwidth bound of the straightforward count.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from experiments.common import (
    add_out_argument,
    count,
    interleaved_medians,
    matmul_peak_gflops,
    results_dir,
    run_script,
    save_results,
)
from experiments.extras import import_torch
from saejax import losses, train
from saejax.config import PRESETS
from saejax.data import training_data

torch = import_torch()


def copy_bandwidth(megabytes: int = 256, repeats: int = 7) -> float:
    """GB/s of a NumPy copy of ``megabytes`` MB, counting the read and the write."""
    src = np.ones(megabytes * 2**20 // 4, np.float32)
    dst = np.empty_like(src)
    times = []
    for _ in range(repeats + 1):  # the first copy (page faults) is not counted
        t0 = time.perf_counter()
        np.copyto(dst, src)
        times.append(time.perf_counter() - t0)
    return 2 * src.nbytes / statistics.median(times[1:]) / 1e9


def torch_loss(W1, b1, W2, b2, x, rho: float, beta: float, lam: float):
    """sparseAutoencoderCost.m in PyTorch: reconstruction + weight decay + beta sum_j KL."""
    a2 = torch.sigmoid(x @ W1.T + b1)
    a3 = torch.sigmoid(a2 @ W2.T + b2)
    rho_hat = a2.mean(0)
    kl = rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))
    return (0.5 * ((a3 - x) ** 2).sum() / x.shape[0]
            + 0.5 * lam * ((W1**2).sum() + (W2**2).sum()) + beta * kl.sum())


def torch_step(loss_fn, params, x, hyper):
    """Zeroed grads, J, J.backward(); returns J (the grads are left in params)."""
    for p in params:
        p.grad = None
    J = loss_fn(*params, x, *hyper)
    J.backward()
    return J


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=count("repeats"), default=50)
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument("--quick", action="store_true", help="5 repeats, no torch.compile")
    add_out_argument(parser, quick=True)
    args = parser.parse_args()
    repeats = 5 if args.quick else args.repeats
    config = PRESETS["ufldl-patches"]
    data = np.asarray(training_data("patches")[0], np.float32)
    m, n, h = data.shape[0], data.shape[1], config.n_hidden
    hyper = (config.rho, config.beta, config.lam)
    params = train.init_state(config, n, seed=0).params
    x = jnp.asarray(data)
    jhyper = losses.Hyper(*(jnp.float32(v) for v in hyper))
    evaluate = jax.jit(train.make_evaluate(config))
    autodiff = jax.jit(jax.value_and_grad(losses.loss))
    tparams = [torch.tensor(np.asarray(params[k])).requires_grad_()
               for k in ("W1", "b1", "W2", "b2")]
    tx = torch.from_numpy(data)
    contenders = {
        "saejax make_evaluate (analytic), jit": lambda: jax.block_until_ready(
            evaluate(params, x, jhyper)),
        "saejax value_and_grad(loss), jit": lambda: jax.block_until_ready(
            autodiff(params, x, jhyper)),
        "PyTorch eager autograd": lambda: torch_step(torch_loss, tparams, tx, hyper),
    }
    compile_s = None
    if not (args.quick or args.no_compile):
        compiled = torch.compile(torch_loss)
        t0 = time.perf_counter()
        torch_step(compiled, tparams, tx, hyper)
        compile_s = time.perf_counter() - t0
        contenders["PyTorch torch.compile"] = lambda: torch_step(compiled, tparams, tx, hyper)
    terms, grads = evaluate(params, x, jhyper)
    J = {"saejax": float(terms["loss"]),
         "PyTorch": float(torch_step(torch_loss, tparams, tx, hyper).detach())}
    gs = np.concatenate([np.ravel(grads[k]) for k in ("W1", "b1", "W2", "b2")])
    gt = np.concatenate([p.grad.numpy().ravel() for p in tparams])
    grad_diff = float(np.linalg.norm(gt - gs) / np.linalg.norm(gt + gs))  # UFLDL's measure
    # turns of 5 timed calls, each after one untimed call (PyTorch's OpenMP threads spin on)
    seconds = interleaved_medians(contenders, repeats=max(1, repeats // 5), warmup=3, burst=5)

    flops = 10.0 * m * n * h
    bytes_straight = 4.0 * (8 * m * n + 7 * m * h)
    bytes_min = 4.0 * m * n
    bandwidth = copy_bandwidth()
    peak = matmul_peak_gflops(m, n, h)
    base = seconds["saejax make_evaluate (analytic), jit"]
    eager = seconds["PyTorch eager autograd"]
    machine = (f"{platform.machine()}, {os.cpu_count()} CPU cores, jax {jax.__version__}, "
               f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    r = {"machine": machine, "m": m, "n": n, "h": h, "repeats": repeats, "J": J,
         "grad_relative_difference": grad_diff,
         "seconds": seconds, "torch_compile_first_call_s": compile_s,
         "torch_eager_over_saejax": eager / base, "flops": flops,
         "bytes_straightforward": bytes_straight, "bytes_compulsory": bytes_min,
         "copy_bandwidth_gbs": bandwidth, "matmul_peak_gflops": peak}
    table = (
        f"One value-and-gradient step, 64-25-64, m = {m}, float32, J = {J['saejax']:.6f} "
        f"(PyTorch {J['PyTorch']:.6f}, gradients apart by {grad_diff:.1e}); medians of {repeats} taking turns; {machine}.\n\n"
        "| step | ms | GFLOP/s | this / saejax analytic |\n|---|---|---|---|\n"
        + "".join(f"| {name} | {1e3 * s:.3f} | {flops / s / 1e9:.1f} | {s / base:.2f}x |\n"
                  for name, s in seconds.items())
        + f"| lower bound: compute, {flops / 1e6:.0f} MFLOP at the matmul peak {peak:.0f} GFLOP/s"
        f" | {1e3 * flops / peak / 1e9:.3f} | {peak:.0f} | {flops / peak / 1e9 / base:.2f}x |\n"
        f"| lower bound: bandwidth, straightforward traffic {bytes_straight / 1e6:.1f} MB at "
        f"{bandwidth:.1f} GB/s | {1e3 * bytes_straight / bandwidth / 1e9:.3f} | — | "
        f"{bytes_straight / bandwidth / 1e9 / base:.2f}x |\n"
        f"| lower bound: bandwidth, x read once {bytes_min / 1e6:.2f} MB at {bandwidth:.1f} GB/s"
        f" | {1e3 * bytes_min / bandwidth / 1e9:.3f} | — | "
        f"{bytes_min / bandwidth / 1e9 / base:.2f}x |\n"
        f"\nPyTorch eager / saejax analytic: **{eager / base:.2f}x** (goal >= 1.5x)."
        + (f" torch.compile's first call (compilation): {compile_s:.1f} s." if compile_s else "")
        + "\n")
    save_results(results_dir(args.out, args.quick), "bench_step", r, table)


if __name__ == "__main__":
    run_script(main)
