"""An 8 x 8 sweep of rho and beta on natural image patches, as one compiled program.

Command:   .venv/bin/python -m experiments.reproduce.sweep_rho_beta [--data ../shared/data/IMAGES_sparsenet.mat]
Run time:  about 5 minutes on 2 CPU cores (measured 320 s for the 64 members, one program).
Reading (measured on the embedded images; docs/sweep_heatmaps.png):
           - Sparsity holds for beta >= about 1: mean rho_hat ends within 10-20% of rho. At
             beta = 0.1 the units run 1.1-3x more active than the target, most so for small rho.
           - Reconstruction error rises as rho falls (0.08 at rho = 0.2, 0.16-0.28 at
             rho = 0.014-0.024) and as beta rises. It collapses to about 0.465, a constant
             output, at rho = 0.005 with beta >= 5 and at rho = 0.0085 with beta = 10.
           - No unit dies anywhere on the grid (dead fraction 0): below rho the KL penalty's
             slope, -rho/rho_hat + (1-rho)/(1-rho_hat), grows without bound and revives units.

Settings: the UFLDL exercise (10,000 8x8 patches, 64-25-64, lambda = 1e-4, L-BFGS for 400
iterations) with rho log-spaced from 0.005 to 0.2 and beta log-spaced from 0.1 to 10. Writes
results.csv, heatmaps.png and filters_grid.png to --workdir.
"""

from __future__ import annotations

import argparse

import numpy as np

from experiments.common import add_arguments, count, run_script, workdir_of
from saejax import sweeps
from saejax.config import PRESETS
from saejax.data import training_data


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="IMAGES.mat or sparsenet directory (default: embedded)")
    add_arguments(parser, "sweep-rho-beta", kind="sweep")
    parser.add_argument("--steps", type=count("steps"), default=400)
    parser.add_argument("--chunk-size", type=count("chunk_size"), default=64)
    args = parser.parse_args()
    workdir = workdir_of(args)
    config = PRESETS["ufldl-patches"].replace(data=args.data, steps=args.steps)
    x, info = training_data("patches", args.data, config.num_examples, config.patch_size,
                            config.seed)
    rho = np.geomspace(0.005, 0.2, 8)
    beta = np.geomspace(0.1, 10, 8)
    result = sweeps.sweep(config, x, rho, beta, chunk_size=args.chunk_size,
                         workdir=workdir, data_info=info, resume=args.resume)
    print(f"{result.summary['members']} members in {result.summary['wall_seconds']:.1f} s")
    header = "rho \\ beta " + " ".join(f"{b:>8.3g}" for b in beta)
    for key in ("reconstruction", "rho_hat_mean", "dead_fraction"):
        print(f"\n{key}\n{header}")
        for r in rho:
            cells = [row[key] for row in result.rows if row["rho"] == r]
            print(f"{r:>10.3g} " + " ".join(f"{v:>8.3g}" for v in cells))
    print(f"\nheatmaps: {result.workdir}/heatmaps.png\nfilters: {result.workdir}/filters_grid.png")


if __name__ == "__main__":
    run_script(main)
