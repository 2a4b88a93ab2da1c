"""The UFLDL sparse autoencoder on MNIST: 784-196-784 on the first 10,000 training digits.

Command:   .venv/bin/python -m experiments.reproduce.ufldl_mnist --data ../shared/data/mnist
Run time:  about 50 s on 2 CPU cores (400 L-BFGS iterations; measured 46 s and 53 s).
Expected:  J ends near 12.11 (measured 12.113: reconstruction 7.38, weight decay 4.60, sparsity 0.14;
           still falling slowly at 400 iterations); the 196 filters in
           filters.png look like pen strokes: short arcs and bars, localized on the digit area;
           mean rho_hat sits near the target 0.1.

Settings (UFLDL's MNIST exercise): rho = 0.1, beta = 3, lambda = 3e-3, L-BFGS for 400 iterations.
"""

from __future__ import annotations

import argparse

from experiments.common import add_arguments, count, run_script, workdir_of
from saejax import train
from saejax.config import PRESETS
from saejax.data import training_data


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="directory of the MNIST idx files")
    add_arguments(parser, "ufldl-mnist")
    parser.add_argument("--steps", type=count("steps"), default=400)
    args = parser.parse_args()
    workdir = workdir_of(args)
    config = PRESETS["mnist"].replace(data=args.data, steps=args.steps)
    x, info = training_data("mnist", args.data, config.num_examples, seed=config.seed)
    print(f"{x.shape[0]} MNIST digits from {info['source']}")
    result = train.run(config, x, workdir, resume=args.resume, data_info=info)
    s = result.summary
    print(f"J = {s['final_loss']:.4f}  (reconstruction {s['reconstruction']:.4f}, "
          f"weight decay {s['weight_decay']:.4f}, sparsity {s['sparsity']:.4f})")
    print(f"mean rho_hat {s['rho_hat_mean']:.4f} (target {config.rho}), dead "
          f"{100 * s['dead_fraction']:.0f}%; {s['wall_seconds']:.1f} s")
    print(f"filters: {result.workdir}/filters.png")


if __name__ == "__main__":
    run_script(main)
