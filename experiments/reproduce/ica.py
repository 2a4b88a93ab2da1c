"""UFLDL's orthonormal ICA exercise: filters with sparse responses and orthonormal rows, learned
by projected gradient descent on ZCA-whitened patches (grayscale by default, not the exercise's
colour patches).

Command:   .venv/bin/python -m experiments.reproduce.ica [--patches stlSampledPatches.mat]
           [--steps 1000] [--workdir DIR]
Run time:  10-15 s on 2 CPU cores (grayscale; 1,000 steps in 7-13 s over two runs); with
           --patches, 121 features on 192 dimensions, about 4 minutes.
Expected:  "localization: ..." and "kurtosis: ..." lines, the learned filters against a random
           W with orthonormal rows (the row passes when the learned filters are at least 1.5
           times as localized and their held-out responses at least 1.5 times as kurtotic),
           the cost before and after, and filters.png, the rows of W as the exercise shows them.
           Measured 2026-12-04 (2 CPU cores, grayscale, seed 0): J 31.2124 -> 26.2837 in 1,000
           steps, never rising, 1.91 trials a step; max |W W^T - I| 2e-15; localization 0.880
           against 0.377 for random orthonormal rows; held-out kurtosis 28.59 against 9.63;
           tangent share of the gradient 6.3e-2 after the first step, 8e-6 after the last.

Settings, from the exercise (UFLDL wiki "Exercise:Independent Component Analysis",
independent_component_analysis_exercise.zip's ICAExercise.m and orthonormalICACost.m):
numPatches 20,000 8x8 patches (patchDim 8); epsilon = 1e-6 in sqrt((Wx)^2 + epsilon); the
patches divided by 255, each pixel's mean over the patches removed, ZCA-whitened without
regularization (U diag(1 / sqrt(s)) U^T); W starts at rand(numFeatures, visibleSize);
gradient descent with a backtracking line search (alpha 0.5, t shrinks by 0.9 and grows by 1.1
per step), W projected back to W W^T = I at every trial; the wiki asks for 1,000 iterations
("less than 15 minutes"; the starter's comment says 10,000 take about 2 hours).

The exercise's data, stlSampledPatches.mat (100,000 8x8x3 colour patches of STL-10, the
variable ``patches`` 192 x 100,000), comes with the linear decoder exercise
(UFLDL wiki "Exercise:Learning color features with Sparse Autoencoders"); it is not shipped
here. With --patches it is used as the exercise does: its first 20,000 patches, numFeatures 121
of the 192 dimensions, and the next 10,000 held out for the kurtosis. Without it the patches
are grayscale 8x8 patches of the nine embedded photographs (``data.embedded_raw_images``):
64 dimensions hold at most 64 orthonormal rows, so 49 features (7 x 7), undercomplete as the
exercise's 121 of 192 are; 20,000 patches to learn from and 10,000 held out.

Differences, both deliberate: J is the mean over patches and the whitening has unit covariance
(the exercise's sigma has no 1/m), so epsilon is the exercise's 1e-6 times its 20,000 patches,
0.02, which leaves the minimizer unchanged (saejax.ica's docstring); and the line search
(saejax.ica.line_search) puts the step t into the trial point and measures the decrease
against the step the projection actually takes, which the starter's loop does not (the
"tangent share" line shows why its test cannot pass here). The first trial step is t = 1 (the
exercise's 0.02 on its sum is 0.02 sqrt(20,000) = 2.8 on this mean); the search adapts it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import numpy as np

from experiments.common import (
    add_arguments,
    claim_workdir,
    count,
    run_script,
    seed_type,
    workdir_of,
)
from saejax import ica, metrics, viz
from saejax.data import PCA, embedded_raw_images, load_stl_patches, sample_patches
from saejax.records import files

PATCHES, HELD_OUT, SIDE, EPSILON = 20_000, 10_000, 8, 1e-6 * 20_000


def colour_patches(path, count: int = PATCHES + HELD_OUT):
    """stlSampledPatches.mat's first ``count`` patches (``data.load_stl_patches``), divided by
    255 as ICAExercise.m divides them (the file's patches are in [0, 1] already; the whitening
    undoes any scale)."""
    return load_stl_patches(path, count) / 255.0


def whiten(train, held):
    """ICAExercise.m's STEP 2: each pixel's mean removed, ZCA without regularization."""
    mean = train.mean(axis=0)
    Z = PCA.fit(train - mean).zca_matrix(0.0)
    return (train - mean) @ Z, (held - mean) @ Z


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patches", help="stlSampledPatches.mat, the exercise's colour patches "
                                          "(default: grayscale patches of the embedded "
                                          "photographs)")
    parser.add_argument("--steps", type=count("steps"), default=1000)
    parser.add_argument("--seed", type=seed_type(), default=0)
    add_arguments(parser, "ica", resumes=False)
    args = parser.parse_args()
    workdir = workdir_of(args)
    # float64: in float32 the rounding of J (a sum of 10^6 terms) hides the decrease of the
    # last steps, and the line search then backtracks to its limit on every step
    jax.config.update("jax_enable_x64", True)
    if args.patches:
        channels, features, raw = 3, 121, colour_patches(args.patches)
        source = f"{Path(args.patches).name}, colour"
    else:
        print("no --patches: grayscale patches of the embedded photographs, not the exercise's "
              "colour patches (stlSampledPatches.mat, from UFLDL's linear decoder exercise)")
        channels, features = 1, 49
        raw = sample_patches(embedded_raw_images(), PATCHES + HELD_OUT, SIDE, args.seed)
        source = "embedded photographs, grayscale"
    x, held = whiten(raw[:PATCHES], raw[PATCHES:])
    t0 = time.perf_counter()
    W, trace = ica.train(x, features, EPSILON, args.steps, seed=args.seed)
    seconds = time.perf_counter() - t0
    W = np.asarray(W)
    R = ica.random_orthonormal(x.shape[1], features, args.seed)
    local = {name: float(metrics.localization(w, SIDE, channels).mean()) for name, w in
             (("learned", W), ("random", R))}
    kurt = {name: float(metrics.kurtosis(w, held).mean()) for name, w in
            (("learned", W), ("random", R))}
    cost, share = trace["cost"], trace["tangent_share"]
    results = {"seconds": seconds, "first_cost": float(cost[0]), "last_cost": float(cost[-1]),
               "cost_rose": int(np.sum(np.diff(cost) > 0)), "mean_tries": float(np.mean(
                   trace["tries"])), "orthonormality": float(np.max(np.abs(W @ W.T - np.eye(
                       features)))), "tangent_share": [float(share[0]), float(share[-1])],
               "localization": local, "kurtosis": kurt}
    claim_workdir(args, workdir)
    files.write_json(workdir / "config.json", {"kind": "run", "experiment": "ica",
                                                "patches": source, "steps": args.steps,
                                                "seed": args.seed, "results": results})
    path = viz.save_filters(W, workdir / "filters.png", channels=channels,
                            title=f"orthonormal ICA, {features} filters, "
                                  f"{'colour' if channels == 3 else 'grayscale'}")
    print(f"{source}: {features} features on {PATCHES} whitened {SIDE}x{SIDE} patches; "
          f"{args.steps} steps in {seconds:.0f} s, J {cost[0]:.4f} -> {cost[-1]:.4f} (rose "
          f"{results['cost_rose']} times; {results['mean_tries']:.2f} trials a step); "
          f"max |W W^T - I| {results['orthonormality']:.1e}")
    print(f"tangent share of the gradient: {share[0]:.2e} after the first step, {share[-1]:.2e} "
          "after the last (the starter's test asks for alpha = 0.5 of ||g||^2)")
    print(f"localization: learned {local['learned']:.3f}, random {local['random']:.3f} (mean "
          "energy share in the strongest 4x4 block)")
    print(f"kurtosis: learned {kurt['learned']:.2f}, random {kurt['random']:.2f} (mean excess "
          f"kurtosis of the responses on {HELD_OUT} held-out patches)")
    print(f"filters: {path}")


if __name__ == "__main__":
    run_script(main)
