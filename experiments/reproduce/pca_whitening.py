"""UFLDL's PCA and whitening exercise (pca_gen) on 12x12 patches of the raw embedded photographs.

Command:   .venv/bin/python -m experiments.reproduce.pca_whitening [--workdir DIR]
Run time:  a few seconds.
Expected:  the lines below; reproduce_ufldl's row passes when the checks hold:
           "components for 99% of the variance: K of 144" (114 on these photographs),
           "x_rot covariance: largest off-diagonal X of its largest entry" (rounding, < 1e-10),
           "PCA whitening, epsilon 0: retained components' covariance within X of I" (< 1e-8),
           "ZCA whitening, epsilon 0.1: covariance within X of U diag(s/(s+eps)) U^T" (< 1e-10),
           and pictures in the run directory: raw.png, pca_99.png, pca_90.png, zca.png,
           covariances.png.

Settings, from the exercise (UFLDL wiki "Exercise:PCA and Whitening", pca_exercise.zip's
pca_gen.m and sampleIMAGESRAW.m): 10,000 random 12x12 patches of raw (unwhitened) natural
images; Step 0b subtracts each patch's own mean; Step 2 keeps the fewest components with at
least 99% of the variance; Step 3 shows x_hat at 99% and 90%; Step 4 whitens with
epsilon = 0.1 (and checks epsilon = 0, or 1e-10, for the identity); Step 5 ZCA-whitens with
epsilon = 0.1. IMAGES_RAW.mat is not shipped here, so the patches come from the nine
photographs inside scikit-image (``data.embedded_raw_images``), grayscale, as 8-bit pixel values
0-255 (the scale of a raw image file; epsilon's effect depends on it: on these patches the
regularized whitened variance s / (s + 0.1) stays above 0.99, where the exercise's picture of
IMAGES_RAW shows it falling further).

UFLDL publishes the checks, not numbers: x_rot's covariance is diagonal, PCA whitening without
regularization gives the identity, with epsilon its diagonal falls from near 1 (s / (s + eps)),
and ZCA-whitened patches show enhanced edges. The ZCA check also measures the mistake one
public port makes, scaling by 1 / (s + epsilon) instead of 1 / sqrt(s + epsilon).
"""

from __future__ import annotations

import argparse

import numpy as np

from experiments.common import add_arguments, claim_workdir, run_script, workdir_of
from saejax import viz
from saejax.data import PCA, embedded_raw_images, sample_patches, zero_mean_patches
from saejax.records import files
from saejax.viz.canvas import new_figure, save_png

PATCHES, SIDE, EPSILON, PIXEL_SCALE = 10_000, 12, 0.1, 255.0


def covariance(z: np.ndarray) -> np.ndarray:
    """z^T z / m: the covariance pca_gen checks (the data are zero-mean by construction)."""
    return z.T @ z / z.shape[0]


def checks(pca: PCA, x: np.ndarray, k: int) -> dict:
    """The exercise's checks, as numbers."""
    rot = covariance(pca.rotate(x))
    off = rot - np.diag(np.diag(rot))
    white0 = covariance(pca.white(x, 0.0, k))
    white = covariance(pca.white(x, EPSILON))
    zca = covariance(pca.zca(x, EPSILON))
    want_zca = (pca.U * (pca.s / (pca.s + EPSILON))) @ pca.U.T
    # the port's mistake: U diag(1 / (s + eps)) U^T x, whose covariance is U diag(s/(s+eps)^2) U^T
    wrong = x @ ((pca.U / (pca.s + EPSILON)) @ pca.U.T)
    return {
        "k99": k, "k90": pca.components_for(0.90), "n": int(pca.s.size),
        "rot_off_diagonal": float(np.max(np.abs(off)) / np.max(np.abs(rot))),
        "white0_from_identity": float(np.max(np.abs(white0 - np.eye(k)))),
        # over the components with variance: each patch's own mean removal takes out one
        # direction (the constant patch), whose eigenvalue is 0 to rounding
        "white_diagonal": [float(np.max(np.diag(white))),
                           float(np.min(np.diag(white)[pca.s > 1e-9 * pca.s[0]]))],
        "zero_eigenvalues": int(np.sum(pca.s <= 1e-9 * pca.s[0])),
        "zca_from_formula": float(np.max(np.abs(zca - want_zca))),
        "wrong_zca_from_formula": float(np.max(np.abs(covariance(wrong) - want_zca))),
    }


def pictures(workdir, pca: PCA, x: np.ndarray, k: int, k90: int) -> None:
    show = np.random.default_rng(1).choice(len(x), 196, replace=False)
    viz.save_filters(x[show], workdir / "raw.png", title="raw patches, each zero-meaned")
    for name, kk, label in (("pca_99.png", k, "99%"), ("pca_90.png", k90, "90%")):
        viz.save_filters(pca.recover(pca.rotate(x[show], kk)), workdir / name,
                         title=f"x_hat, {kk} components ({label} of the variance)")
    viz.save_filters(pca.zca(x[show], EPSILON), workdir / "zca.png",
                     title=f"ZCA-whitened, epsilon {EPSILON}")
    fig = new_figure(11, 3.6)
    for i, (title, c) in enumerate((
            ("x_rot", covariance(pca.rotate(x))),
            (f"PCA-white, epsilon {EPSILON}", covariance(pca.white(x, EPSILON))),
            (f"PCA-white, epsilon 0, {k} components", covariance(pca.white(x, 0.0, k))))):
        ax = fig.add_subplot(1, 3, i + 1)
        ax.imshow(c, cmap="jet", interpolation="nearest")
        ax.set_title(f"covariance of {title}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    save_png(fig, workdir / "covariances.png")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, "pca-whitening", resumes=False)
    args = parser.parse_args()
    workdir = workdir_of(args)
    claim_workdir(args, workdir)
    raw = [PIXEL_SCALE * image for image in embedded_raw_images()]
    x = zero_mean_patches(sample_patches(raw, PATCHES, SIDE, seed=0))
    pca = PCA.fit(x)
    k = pca.components_for(0.99)
    found = checks(pca, x, k)
    files.write_json(workdir / "config.json", {"kind": "run", "experiment": "pca-whitening",
                                                "patches": PATCHES, "side": SIDE,
                                                "pixel_scale": PIXEL_SCALE,
                                                "epsilon": EPSILON, "results": found})
    pictures(workdir, pca, x, k, found["k90"])
    print(f"components for 99% of the variance: {k} of {found['n']} (90%: {found['k90']})")
    print(f"x_rot covariance: largest off-diagonal {found['rot_off_diagonal']:.1e} of its "
          "largest entry")
    print(f"PCA whitening, epsilon 0: retained components' covariance within "
          f"{found['white0_from_identity']:.1e} of I")
    hi, lo = found["white_diagonal"]
    print(f"PCA whitening, epsilon {EPSILON}: covariance diagonal from {hi:.4f} down to {lo:.4f} "
          f"({found['zero_eigenvalues']} component of no variance, the constant patch, left out)")
    print(f"ZCA whitening, epsilon {EPSILON}: covariance within {found['zca_from_formula']:.1e} "
          f"of U diag(s/(s+eps)) U^T (scaling by 1/(s+eps) instead: "
          f"{found['wrong_zca_from_formula']:.1e})")
    print(f"pictures: {workdir}/raw.png, pca_99.png, pca_90.png, zca.png, covariances.png")


if __name__ == "__main__":
    run_script(main)
