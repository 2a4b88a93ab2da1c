"""UFLDL's topographic sparse coding exercise: 121 features on 8x8 patches of whitened natural
images, grouped over 3x3 neighbourhoods of an 11x11 torus.

Command:   .venv/bin/python -m experiments.reproduce.sparse_coding [--images IMAGES.mat]
           [--rounds 200] [--workdir DIR]
Run time:  about a minute on 2 CPU cores.
Expected:  the objective's terms after the last round, "topography: neighbours' mean |cosine|
           X against Y for the others" (reproduce_ufldl's row passes when neighbours are at least
           1.5 times as alike as the others; measured 0.223 against 0.103), "codes: N% of the
           coefficients above a tenth of their patch's largest", and bases.png, the bases in
           their places on the torus.

Settings, from the exercise (UFLDL wiki "Exercise:Sparse Coding", sparseCodingExercise.m):
20,000 patches of 8x8 from the whitened images (IMAGES.mat; without --images the embedded
photographs, whitened the same way), taken as sampled; 121 features, grouping over 3x3 on the
11 x 11 torus; lambda = 5e-5, epsilon = 1e-5, gamma = 1e-2; minibatches of 2,000 patches, 200
rounds; each round starts the codes at A^T X over the basis vectors' squared norms and takes 20
iterations on them (the exercise uses minFunc's conjugate gradient; L-BFGS here, on the
hand-written gradient of saejax.sparse_coding), then the basis in closed form; the basis starts
uniform in [0, 1) (rand).
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
from saejax import sparse_coding, viz
from saejax.data import embedded_images, load_images, sample_patches
from saejax.records import files

PATCHES, SIDE, FEATURES = 20_000, 8, 121


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", help="IMAGES.mat or sparsenet directory (default: the "
                                          "embedded photographs)")
    parser.add_argument("--rounds", type=count("rounds"), default=200)
    parser.add_argument("--seed", type=seed_type(), default=0)
    add_arguments(parser, "sparse-coding", resumes=False)
    args = parser.parse_args()
    workdir = workdir_of(args)
    images = load_images(args.images) if args.images else embedded_images()
    patches = sample_patches(images, PATCHES, SIDE, args.seed)
    t0 = time.perf_counter()
    A, S, X, history = sparse_coding.learn(patches, FEATURES, rounds=args.rounds, seed=args.seed)
    seconds = time.perf_counter() - t0
    S = np.abs(np.asarray(S))
    active = float(np.mean(S > 0.1 * S.max(axis=0, keepdims=True)))
    topo = sparse_coding.topography(A)
    last = history[-1]
    claim_workdir(args, workdir)
    files.write_json(workdir / "config.json", {
        "kind": "run", "experiment": "sparse-coding", "images": args.images,
        "rounds": args.rounds, "seed": args.seed,
        "results": {"seconds": seconds, "last": last, "first": history[0],
                    "topography": topo, "active_fraction": active}})
    path = viz.save_filters(np.asarray(A).T, workdir / "bases.png",
                            title="121 bases on the 11 x 11 torus")
    print(f"{args.rounds} rounds in {seconds:.0f} s; objective {last['objective']:.4f} "
          f"(residue {last['residue']:.4f}, sparsity {last['sparsity']:.4f}, weight "
          f"{last['weight']:.4f}); first round {history[0]['objective']:.4f}")
    print(f"topography: neighbours' mean |cosine| {topo['neighbours']:.3f} against "
          f"{topo['others']:.3f} for the others")
    print(f"codes: {100 * active:.1f}% of the coefficients above a tenth of their patch's largest")
    print(f"bases: {path}")


if __name__ == "__main__":
    run_script(main)
