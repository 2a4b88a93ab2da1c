"""UFLDL's linear decoder exercise on 8x8x3 colour patches of the embedded photographs.

Command:   .venv/bin/python experiments/linear_decoder_color.py
Run time:  about 45 s on 2 CPU cores (measured 41.9 s of training for 20,000 patches).
Expected:  J = 1.904 (reconstruction 1.047), mean rho_hat 0.0353 (measured). In
           features_color.png (docs/features_color.png) about a third of the 400 features are
           oriented edges, grey or coloured; most of the rest are colour-opponent blobs of one
           hue (green, magenta, violet). Only four colour photographs feed the patches, which
           favours colour features over UFLDL's mostly-edge STL-10 result.

Settings (UFLDL's linearDecoderExercise.m): 192-400-192 with a linear decoder, rho = 0.035,
beta = 5, lambda = 3e-3, ZCA whitening with epsilon = 0.1, L-BFGS for 400 iterations. STL-10 is
not available, so the patches come from the colour photographs that ship with scikit-image.
The features are shown through the whitening, as (W1 ZCA)^T, in colour.
"""

from __future__ import annotations

import argparse

import numpy as np

from saejax import rundir, train, viz
from saejax.config import PRESETS
from saejax.data import color_patches


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-patches", type=int, default=20_000)
    parser.add_argument("--steps", type=int, default=400)
    rundir.add_arguments(parser, "linear-decoder-color")
    args = parser.parse_args()
    workdir = rundir.workdir_of(args)
    config = PRESETS["color-patches"].replace(num_examples=args.num_patches, steps=args.steps)
    x, zca, raw = color_patches(config.num_examples, config.patch_size, config.seed)
    roundtrip = np.max(np.abs(zca.invert(x) - raw))
    print(f"{len(x)} colour patches, ZCA epsilon {zca.epsilon}; round trip error {roundtrip:.1e}")
    result = train.run(config, x, workdir, resume=args.resume,
                       data_info={"source": "embedded colour photographs", "shape": list(x.shape)})
    s = result.summary
    print(f"J = {s['final_loss']:.4f} (reconstruction {s['reconstruction']:.4f}, sparsity "
          f"{s['sparsity']:.4f}); mean rho_hat {s['rho_hat_mean']:.4f}; {s['wall_seconds']:.1f} s")
    # Each feature as an image patch: W1 applied after the whitening is (W1 ZCA) in pixel space.
    features = np.asarray(result.state.params["W1"]) @ zca.W
    path = viz.save_filters(features, workdir / "features_color.png", channels=3,
                            title="(W1 ZCA)^T, linear decoder on colour patches")
    print(f"features: {path}")


if __name__ == "__main__":
    rundir.run_script(main)
