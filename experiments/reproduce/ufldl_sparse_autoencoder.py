"""The UFLDL sparse autoencoder exercise on natural image patches.

Command:   .venv/bin/python -m experiments.reproduce.ufldl_sparse_autoencoder [--data ../shared/data/IMAGES_sparsenet.mat]
Run time:  about 5 s on 2 CPU cores (400 L-BFGS iterations, 1-2 s of it compilation).
Expected:  on IMAGES_sparsenet.mat (Olshausen's ten whitened images) J ends near 0.445; a
           NumPy + SciPy L-BFGS-B reference reached 0.4448 on the same patches. On the embedded
           scikit-image photographs (no --data) J ends near 0.379. Either way the 25 filters in
           filters.png are localized, oriented edge detectors and mean rho_hat sits near 0.011.

The settings are the exercise's: 10,000 random 8x8 patches normalized as sampleIMAGES.m does,
64-25-64, rho = 0.01, beta = 3, lambda = 1e-4, L-BFGS for 400 iterations.
"""

from __future__ import annotations

import argparse

from experiments.common import add_arguments, count, run_script, workdir_of
from saejax import train
from saejax.config import PRESETS
from saejax.data import training_data


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="IMAGES.mat or sparsenet directory (default: embedded)")
    add_arguments(parser, "ufldl-sparse-autoencoder")
    parser.add_argument("--steps", type=count("steps"), default=400, help="L-BFGS iterations")
    args = parser.parse_args()
    workdir = workdir_of(args)
    config = PRESETS["ufldl-patches"].replace(data=args.data, steps=args.steps)
    x, info = training_data("patches", args.data, config.num_examples, config.patch_size,
                            config.seed)
    print(f"{x.shape[0]} patches of {info['source']}")
    result = train.run(config, x, workdir, resume=args.resume, data_info=info)
    s = result.summary
    print(f"J = {s['final_loss']:.4f}  (reconstruction {s['reconstruction']:.4f}, "
          f"weight decay {s['weight_decay']:.4f}, sparsity {s['sparsity']:.4f})")
    print(f"mean rho_hat {s['rho_hat_mean']:.4f} (target {config.rho}); "
          f"{s['wall_seconds']:.1f} s, compile {s['compile_seconds']:.1f} s")
    print(f"filters: {result.workdir}/filters.png")


if __name__ == "__main__":
    run_script(main)
