"""What both exercise peers share, without saejax and without PyTorch: the data and the command line.

sampleIMAGES.m in NumPy (10,000 random 8x8 patches, zero mean per patch, clipped to +-3 standard
deviations, rescaled to [0.1, 0.9]) and UFLDL's initialization, so that torch_exercise.py
and scipy_exercise.py train on the same patches from the same start, and neither
process pays for importing the other's library.
"""

from __future__ import annotations

import argparse

import numpy as np
import scipy.io

from experiments.extras import existing_file, positive, whole

N_VISIBLE, N_HIDDEN, RHO, BETA, LAM = 64, 25, 0.01, 3.0, 1e-4


def sample_patches(images: np.ndarray, m: int, side: int, rng) -> np.ndarray:
    """sampleIMAGES.m: m random side x side patches as rows, normalized to [0.1, 0.9]."""
    h, w, k = images.shape
    i = rng.integers(0, h - side + 1, m)
    j = rng.integers(0, w - side + 1, m)
    which = rng.integers(0, k, m)
    rows = np.arange(side)[None, :, None] + i[:, None, None]
    cols = np.arange(side)[None, None, :] + j[:, None, None]
    patches = images[rows, cols, which[:, None, None]].reshape(m, side * side)
    patches = patches - patches.mean(axis=1, keepdims=True)
    pstd = 3 * patches.std()
    patches = np.clip(patches, -pstd, pstd) / pstd
    return (patches + 1) * 0.4 + 0.1


def parse_args(description: str):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", type=existing_file, required=True,
                        help="IMAGES.mat (UFLDL layout)")
    parser.add_argument("--steps", type=positive, default=400)
    parser.add_argument("--seed", type=whole, default=0)
    return parser.parse_args()


def exercise_data(path: str, seed: int):
    """The 10,000 patches of IMAGES.mat at ``path`` and the generator that drew them."""
    rng = np.random.default_rng(seed)
    return sample_patches(scipy.io.loadmat(path)["IMAGES"], 10_000, 8, rng), rng
