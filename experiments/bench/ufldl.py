"""Benchmark: the UFLDL exercise (10,000 patches, 400 L-BFGS iterations) in saejax and in NumPy+SciPy.

Command:   .venv/bin/python -m experiments.bench.ufldl [--data ../shared/data/IMAGES_sparsenet.mat]
Run time:  about 1 minute on 2 CPU cores (most of it the SciPy reference).
Expected:  saejax (float32, jitted, minFunc-style L-BFGS with strong-Wolfe search) finishes the 400
           iterations faster than the NumPy + SciPy L-BFGS-B reference (float64, maxcor 100, as
           minFunc): measured 10.7 s with compilation included (2.5x faster), 3.9 s when JAX's
           persistent compilation cache already holds the program (6.8x), against 26.4 s.
           Both reach J within a percent of each other.

All runs happen in this process, side by side, on the same patches. Writes bench_ufldl.json
and bench_ufldl.md to --out (default experiments/results).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import jax
import numpy as np
import scipy.optimize

from experiments.common import add_out_argument, count, results_dir, run_script, save_results
from experiments.peers import numpy_sae
from saejax import train
from saejax.config import PRESETS
from saejax.data import training_data
from saejax.runtime.compile_cache import clear_program_cache


def scipy_reference(x, config) -> dict:
    """The exercise with NumPy cost/gradient and SciPy's L-BFGS-B, float64, as minFunc does."""
    state = train.init_state(config.replace(dtype="float32"), x.shape[1])
    theta0 = numpy_sae.ravel({k: np.asarray(v) for k, v in state.params.items()})
    n, h = x.shape[1], config.n_hidden

    def fun(theta):
        J, g = numpy_sae.value_and_grad(numpy_sae.unravel(theta, n, h), x, config.rho,
                                        config.beta, config.lam)
        return J, numpy_sae.ravel(g)

    t0 = time.perf_counter()
    res = scipy.optimize.minimize(fun, theta0, jac=True, method="L-BFGS-B",
                                  options={"maxiter": config.steps, "maxcor": 100})
    return {"seconds": time.perf_counter() - t0, "final_loss": float(res.fun),
            "iterations": int(res.nit), "evaluations": int(res.nfev)}


def saejax_run(x, config) -> dict:
    # Forget the programs compiled in this process, so each run compiles as a fresh process
    # would: from scratch, or from JAX's persistent compilation cache when it holds them.
    clear_program_cache()
    jax.clear_caches()
    t0 = time.perf_counter()
    result = train.run(config, x, progress=False)
    wall = time.perf_counter() - t0
    return {"seconds": wall, "compile_seconds": result.summary["compile_seconds"],
            "final_loss": result.summary["final_loss"], "iterations": result.summary["steps"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="IMAGES.mat or sparsenet directory (default: embedded)")
    parser.add_argument("--repeats", type=count("repeats"), default=3,
                        help="warm saejax runs (median)")
    add_out_argument(parser)
    args = parser.parse_args()
    config = PRESETS["ufldl-patches"]
    x, info = training_data("patches", args.data, config.num_examples, config.patch_size,
                            config.seed)

    with tempfile.TemporaryDirectory() as cache:
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        cold = saejax_run(x, config)  # empty persistent cache: compilation included
        warm = [saejax_run(x, config) for _ in range(args.repeats)]  # the cache holds it now
        # inside: JAX keeps writing its cache here for the rest of the process
        ref = scipy_reference(x.astype(np.float64), config)
    warm_s = float(np.median([w["seconds"] for w in warm]))

    machine = (f"{platform.machine()}, {os.cpu_count()} CPU cores, jax {jax.__version__}, "
               f"scipy {scipy.__version__}, numpy {np.__version__}")
    results = {"machine": machine, "data": info["source"], "saejax_cold": cold,
               "saejax_warm_median_seconds": warm_s, "saejax_warm": warm, "scipy": ref,
               "ratio_cold": ref["seconds"] / cold["seconds"],
               "ratio_warm": ref["seconds"] / warm_s}
    table = (
        f"UFLDL exercise, {x.shape[0]} patches of {info['source']}, 64-25-64, 400 L-BFGS "
        f"iterations; {machine}.\n\n"
        "| implementation | wall s | compile s | final J | SciPy / this |\n|---|---|---|---|---|\n"
        f"| saejax, float32, empty compilation cache | {cold['seconds']:.2f} | "
        f"{cold['compile_seconds']:.2f} | {cold['final_loss']:.4f} | {results['ratio_cold']:.1f}x |\n"
        f"| saejax, float32, persistent compilation cache (median of {args.repeats}) | {warm_s:.2f} | "
        f"{np.median([w['compile_seconds'] for w in warm]):.2f} | {warm[0]['final_loss']:.4f} | "
        f"{results['ratio_warm']:.1f}x |\n"
        f"| NumPy + SciPy L-BFGS-B, float64, maxcor 100 | {ref['seconds']:.2f} | — | "
        f"{ref['final_loss']:.4f} | 1.0x |\n"
    )
    save_results(results_dir(args.out), "bench_ufldl", results, table)


if __name__ == "__main__":
    run_script(main)
