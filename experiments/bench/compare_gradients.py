"""Analytic against autodiff gradients of the sparse autoencoder: accuracy and speed.

Command:   .venv/bin/python -m experiments.bench.compare_gradients [--m 10000] [--quick] [--out DIR]
Run time:  about 5 minutes on 2 CPU cores (--quick: under a minute).
Expected:  analytic and autodiff agree to ~1e-16 in float64 and ~1e-7 in float32; against finite
           differences (64-25 only, on 100 examples) both agree to ~1e-10 in float64. The jitted
           analytic step is as fast as jax.value_and_grad, faster than the NumPy baseline
           (measured 1.9x at 64-25, 1.3x at 784-196), and at 784-196 reaches about 40-50% of
           the matmul throughput measured in the same process (10*m*n*h FLOPs per
           value-and-gradient step).

Writes compare_gradients.json, compare_gradients.md and compare_gradients.png to --out (default
experiments/results; runs/quick with --quick).
"""

from __future__ import annotations

import argparse
import json
import platform

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import saejax  # noqa: E402
from experiments.common import (  # noqa: E402
    add_out_argument,
    compile_seconds,
    count,
    interleaved_medians,
    matmul_peak_gflops,
    median_seconds,
    results_dir,
    run_script,
)
from experiments.peers import numpy_sae  # noqa: E402
from saejax import gradcheck, grads, losses  # noqa: E402

SIZES = [(64, 25), (784, 196), (784, 1024)]
HYPER = saejax.Hyper(rho=0.01, beta=3.0, lam=1e-4)  # the UFLDL exercise's settings


def analytic_step(params, x, hyper):
    terms, g = grads.terms_and_grad(params, x, hyper)
    return terms["loss"], g


def autodiff_step(params, x, hyper):
    return jax.value_and_grad(lambda p: losses.compute_terms(p, x, hyper)["loss"])(params)


def problem(n, h, m, dtype, seed=0):
    params, _ = gradcheck.problem(n, h, 1, dtype, seed)
    x = jax.random.uniform(jax.random.key(seed + 1), (m, n), dtype, 0.0, 1.0)
    return params, x


def measure(n, h, m, dtype, repeats):
    params, x = problem(n, h, m, dtype)
    row = {"size": f"{n}-{h}", "n": n, "h": h, "m": m, "dtype": jnp.dtype(dtype).name}

    # Accuracy at full size: analytic against autodiff.
    va, ga = saejax.value_and_analytic_grad(params, x, HYPER)
    vb, gb = jax.value_and_grad(saejax.loss)(params, x, HYPER)
    row["analytic~autodiff"] = gradcheck.relative_difference(ga, gb)
    row["value_difference"] = abs(float(va) - float(vb)) / abs(float(vb))
    # Finite differences cost 2 evaluations per parameter: only at 64-25, on 100 examples.
    if n * h <= 64 * 25:
        p_small, x_small = params, x[:100]
        result = gradcheck.check(p_small, x_small, HYPER)
        row["analytic~numerical"] = result["differences"]["analytic~numerical"]["all"]
        row["autodiff~numerical"] = result["differences"]["autodiff~numerical"]["all"]

    # Speed: compile apart, then medians of repeated runs taking turns.
    fns = {}
    for name, step in (("analytic", analytic_step), ("autodiff", autodiff_step)):
        row[f"{name}_compile_s"], compiled = compile_seconds(jax.jit(step), params, x, HYPER)
        fns[name] = lambda c=compiled: jax.block_until_ready(c(params, x, HYPER))
    for name, seconds in interleaved_medians(fns, repeats).items():
        row[f"{name}_s"] = seconds
    flops = 10.0 * m * n * h
    row["analytic_gflops"] = flops / row["analytic_s"] / 1e9
    row["matmul_gflops"] = matmul_peak_gflops(m, n, h, dtype)
    # NumPy is timed in a block of its own: OpenBLAS worker threads spin for a while after each
    # call and would slow down whichever JAX run came next.
    np_params = {k: np.asarray(v) for k, v in params.items()}
    np_x = np.asarray(x)
    row["numpy_s"] = median_seconds(
        lambda: numpy_sae.value_and_grad(np_params, np_x, 0.01, 3.0, 1e-4), repeats
    )
    row["fraction_of_matmul"] = row["analytic_gflops"] / row["matmul_gflops"]
    row["speedup_vs_numpy"] = row["numpy_s"] / row["analytic_s"]
    row["analytic_over_autodiff"] = row["analytic_s"] / row["autodiff_s"]
    return row


def fmt(v, spec):
    return "—" if v is None else format(v, spec)


def markdown(rows, machine):
    head = (
        "| size | dtype | analytic~autodiff | analytic~numerical | analytic ms | autodiff ms "
        "| NumPy ms | analytic/autodiff | NumPy/analytic | GFLOP/s | % of matmul peak | compile ms "
        "(analytic / autodiff) |\n|" + "---|" * 12 + "\n"
    )
    lines = [
        f"{r['size']} | {r['dtype']} | {r['analytic~autodiff']:.1e} | "
        f"{fmt(r.get('analytic~numerical'), '.1e')} | {1e3 * r['analytic_s']:.2f} | "
        f"{1e3 * r['autodiff_s']:.2f} | {1e3 * r['numpy_s']:.2f} | "
        f"{r['analytic_over_autodiff']:.2f} | {r['speedup_vs_numpy']:.1f}x | "
        f"{r['analytic_gflops']:.1f} | {100 * r['fraction_of_matmul']:.0f}% | "
        f"{1e3 * r['analytic_compile_s']:.0f} / {1e3 * r['autodiff_compile_s']:.0f} |"
        for r in rows
    ]
    m = rows[0]["m"]
    return (
        f"m = {m} examples; medians of repeated runs taking turns, compilation excluded; "
        "matmul peak = best of a 2048^3 matmul and the step's own three matmul shapes; "
        f"{machine}.\n\n" + head + "\n".join("| " + line for line in lines) + "\n"
    )


def plot(rows, path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    labels = [f"{r['size']}\n{r['dtype']}" for r in rows]
    xs = np.arange(len(rows))
    for i, (key, name) in enumerate(
        (("numpy_s", "NumPy"), ("autodiff_s", "jax.value_and_grad"), ("analytic_s", "analytic"))
    ):
        ax.bar(xs + (i - 1) * 0.27, [1e3 * r[key] for r in rows], 0.27, label=name)
    ax.set_xticks(xs, labels, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("ms per value-and-gradient (median)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--m", type=count("m"), default=10_000, help="examples per step")
    parser.add_argument("--repeats", type=count("repeats"), default=15)
    parser.add_argument("--quick", action="store_true", help="m=2000, 3 repeats")
    add_out_argument(parser, quick=True)
    args = parser.parse_args()
    m, repeats = (2000, 3) if args.quick else (args.m, args.repeats)
    machine = f"{platform.machine()}, {jax.device_count()} x {jax.devices()[0].device_kind}, " \
              f"{__import__('os').cpu_count()} CPU cores, jax {jax.__version__}"
    rows = []
    for n, h in SIZES:
        for dtype in (jnp.float32, jnp.float64):
            reps = repeats if n * h <= 784 * 196 else max(3, repeats // 2)
            row = measure(n, h, m, dtype, reps)
            rows.append(row)
            print(
                f"{row['size']:>9} {row['dtype']}: analytic~autodiff {row['analytic~autodiff']:.1e}"
                f"  analytic {1e3 * row['analytic_s']:.2f} ms  autodiff "
                f"{1e3 * row['autodiff_s']:.2f} ms  NumPy {1e3 * row['numpy_s']:.2f} ms  "
                f"{100 * row['fraction_of_matmul']:.0f}% of matmul", flush=True,
            )
    out = results_dir(args.out, args.quick)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare_gradients.json").write_text(
        json.dumps({"machine": machine, "rows": rows}, indent=2)
    )
    table = markdown(rows, machine)
    (out / "compare_gradients.md").write_text(table)
    plot(rows, out / "compare_gradients.png")
    print("\n" + table)
    print(f"wrote {out}/compare_gradients.{{json,md,png}}")


if __name__ == "__main__":
    run_script(main)
