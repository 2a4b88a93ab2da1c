"""The newer UFLDL tutorial's RICA exercise (rica/runSoftICA.m): 50 features on whitened 9x9
patches of MNIST by L-BFGS, against the exercise's random start.

Command:   .venv/bin/python -m experiments.reproduce.rica_mnist --data ../shared/data/mnist
           [--steps 500] [--seed 0] [--workdir DIR]
Run time:  about a minute on 2 CPU cores.
Expected:  "localization: ..." and "kurtosis: ..." lines, the learned filters against the random
           start; the exercise shows its filters as a picture only (pen-stroke pieces), so the
           row measures that they are localized and respond sparsely: the mean share of each
           filter's energy in its strongest 4x4 block (``metrics.localization``) and the mean
           excess kurtosis of the responses W x on 10,000 held-out patches
           (``metrics.kurtosis``), each at least 1.5 times the random start's.

Settings, from runSoftICA.m (amaas/stanford_dl_ex): params.m = 10,000 random 9x9 patches of the
60,000 MNIST training images (samplePatches.m), ZCA-whitened (zca2.m: epsilon 1e-4, no mean
removal) and each divided by its norm (sqrt(||x||^2 + 1e-8)); numFeatures 50, lambda 5e-4,
epsilon 1e-2 in sqrt(a^2 + epsilon); W from 0.01 N(0, 1) with unit rows; minFunc's L-BFGS with
MaxIter 500 (``saejax.rica.train``: optax's L-BFGS with minFunc's 100 pairs, on RICA's
hand-written gradient, checked three ways by ``saejax gradcheck --rica``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from experiments.common import (
    add_arguments,
    claim_workdir,
    count,
    run_script,
    seed_type,
    workdir_of,
)
from experiments.reproduce.stl_rica import sample_patches
from saejax import metrics, rica, viz
from saejax.data import load_mnist
from saejax.records import files

SIDE, PATCH, PATCHES, HELD_OUT, FEATURES = 28, 9, 10_000, 10_000, 50
LAMBDA, EPSILON, ZCA_EPSILON = 5e-4, 1e-2, 1e-4


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="directory of the MNIST idx files")
    parser.add_argument("--steps", type=count("steps"), default=500,
                        help="L-BFGS iterations (MaxIter)")
    parser.add_argument("--seed", type=seed_type(), default=0)
    add_arguments(parser, "rica-mnist", resumes=False)
    args = parser.parse_args()
    workdir = workdir_of(args)
    x, _ = load_mnist(args.data, "train")
    images = x.reshape(-1, SIDE, SIDE).astype(np.float64)
    patches = sample_patches(images, PATCHES + HELD_OUT, PATCH, np.random.default_rng(args.seed))
    white, zca = rica.preprocess(patches[:PATCHES], ZCA_EPSILON)
    held = patches[PATCHES:] @ zca  # the held-out patches through the same whitening
    held = held / np.sqrt(np.sum(held**2, axis=1, keepdims=True) + 1e-8)
    t0 = time.perf_counter()
    W, values = rica.train(white.astype(np.float32), FEATURES, LAMBDA, EPSILON, args.steps,
                           args.seed)
    seconds = time.perf_counter() - t0
    W = np.asarray(W, np.float64)
    start = np.asarray(rica.initial_weights(PATCH * PATCH, FEATURES, args.seed), np.float64)
    local = {name: float(metrics.localization(w, PATCH).mean())
             for name, w in (("learned", W), ("random", start))}
    kurt = {name: float(metrics.kurtosis(w, held).mean())
            for name, w in (("learned", W), ("random", start))}
    claim_workdir(args, workdir)
    files.write_json(workdir / "config.json", {
        "kind": "run", "experiment": "rica-mnist", "steps": args.steps, "seed": args.seed,
        "results": {"seconds": seconds, "first_cost": float(values[0]),
                    "last_cost": float(values[-1]), "localization": local, "kurtosis": kurt}})
    path = viz.save_filters(W, workdir / "filters.png",
                            title=f"RICA's {FEATURES} filters on whitened 9x9 MNIST patches")
    print(f"RICA: {FEATURES} features, {args.steps} L-BFGS iterations on {PATCHES} patches in "
          f"{seconds:.0f} s, J {values[0]:.4f} -> {values[-1]:.4f}")
    print(f"localization: learned {local['learned']:.3f}, random {local['random']:.3f} (mean "
          "energy share in the strongest 4x4 block)")
    print(f"kurtosis: learned {kurt['learned']:.2f}, random {kurt['random']:.2f} (mean excess "
          f"kurtosis of the responses on {HELD_OUT} held-out patches)")
    print(f"filters: {path}")


if __name__ == "__main__":
    run_script(main)
