"""The older UFLDL tutorial's convolution and pooling exercise on its STL-10 subset: colour
features of a linear decoder convolved over 64x64 images of four classes, mean-pooled, and a
softmax on top. It runs when the user has the exercise's files; without them it says how to
get them and what it would run, and exits 0 having run nothing.

Command:   .venv/bin/python -m experiments.reproduce.stl10_convolution --stl DIR
           [--steps 400] [--num-patches N] [--workdir DIR]
           (DIR holds stlTrainSubset.mat and stlTestSubset.mat, from
           http://ufldl.stanford.edu/wiki/resources/stlSubset.zip, and optionally
           stlSampledPatches.mat, from http://ufldl.stanford.edu/wiki/resources/
           stl10_patches_100k.zip)
Run time:  with the files, about 15 minutes on 2 CPU cores (the linear decoder's 400 L-BFGS
           iterations on 100,000 patches, then 5,200 images convolved with 400 features);
           without them, a second.
Expected:  "test accuracy: NN.NN%" against the exercise's "about 80%" (Exercise:Convolution and
           Pooling, "you should get an accuracy of about 80%"). Not measured here: the files
           are not at hand on the machines this code was written on.
           Without the files: a line starting "not run:".

Settings (cnnExercise.m and linearDecoderExercise.m): 8x8x3 patches, 400 features, a linear
decoder with rho 0.035, beta 5, lambda 3e-3, ZCA whitening with epsilon 0.1 after removing
the mean patch, L-BFGS for 400 iterations, on the 100,000 patches of stlSampledPatches.mat
(without that file: 100,000 patches of the embedded colour photographs, as
``data.color_patches`` samples them). Each 64x64x3 image of stlTrainSubset.mat (2,000 images)
and stlTestSubset.mat (3,200) is convolved with every feature, sigmoid(W T (x - mean) + b)
at each of its 57 x 57 patch positions (``saejax.cnn.autoencoder_features``), and each 19 x 19
region is averaged: 400 x 3 x 3 = 3,600 features. Softmax: lambda 1e-4, 200 L-BFGS iterations.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from experiments.common import add_arguments, claim_workdir, count, run_script, workdir_of
from saejax import train
from saejax.cnn import autoencoder_features
from saejax.config import PRESETS
from saejax.data import ZCA, color_patches, load_stl_patches
from saejax.records import files
from saejax.softmax import accuracy, train_softmax

POOL, SOFTMAX_LAMBDA, SOFTMAX_STEPS, PATCHES = 19, 1e-4, 200, 100_000
SUBSET = ("stlTrainSubset.mat", "stlTestSubset.mat")
SUBSET_URL = "http://ufldl.stanford.edu/wiki/resources/stlSubset.zip"
PATCHES_FILE = "stlSampledPatches.mat"


def load_subset(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images (B, 64, 64, 3), labels 0-3) of stlTrainSubset.mat or stlTestSubset.mat, whose
    images are stored (64, 64, 3, B) and labels 1-4."""
    from scipy.io import loadmat

    mat = loadmat(path)
    keys = (f"{split}Images", f"{split}Labels")
    if any(k not in mat for k in keys):
        raise ValueError(f"{path} holds no {' and '.join(k for k in keys if k not in mat)}: it "
                         f"is not UFLDL's {path.name} ({SUBSET_URL}).")
    images = np.moveaxis(np.asarray(mat[keys[0]], np.float64), -1, 0)
    labels = np.asarray(mat[keys[1]]).reshape(-1).astype(np.int64) - 1
    if images.shape[1:] != (64, 64, 3) or len(labels) != len(images):
        raise ValueError(f"{path} holds {split}Images of shape {images.shape[1:]} and "
                         f"{len(labels)} labels; the exercise's file holds 64x64x3 images.")
    return images, labels


def pooled(images, W1, b1, zca: ZCA, batch: int = 25) -> np.ndarray:
    """The (B, H * 3 * 3) pooled features of the images, a batch at a time."""
    args = [jnp.asarray(a) for a in (W1, b1, zca.W, zca.mean)]
    out = [np.asarray(autoencoder_features(jnp.asarray(images[i:i + batch]), *args, pool=POOL))
           for i in range(0, len(images), batch)]
    return np.concatenate(out).reshape(len(images), -1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stl", type=Path, help="the directory holding stlTrainSubset.mat and "
                                                 "stlTestSubset.mat")
    parser.add_argument("--steps", type=count("steps"), default=400)
    parser.add_argument("--num-patches", type=count("num_patches"), default=PATCHES)
    add_arguments(parser, "stl10-convolution", resumes=False)
    args = parser.parse_args()
    missing = [n for n in SUBSET if args.stl is None or not (args.stl / n).is_file()]
    if missing:
        print(f"not run: needs {' and '.join(missing)} (UFLDL's STL-10 subset, {SUBSET_URL}) "
              "in --stl DIR; it would learn 400 colour features on 8x8x3 patches, convolve "
              "them over the subset's 2,000 training and 3,200 test images, mean-pool 19x19 "
              "regions and train a softmax (published: about 80% test accuracy).")
        return
    workdir = workdir_of(args)
    # the subset is read before the features train, so that a wrong file costs no training
    train_x, train_y = load_subset(args.stl / SUBSET[0], "train")
    test_x, test_y = load_subset(args.stl / SUBSET[1], "test")
    claim_workdir(args, workdir)
    t0 = time.perf_counter()
    if (args.stl / PATCHES_FILE).is_file():
        raw, source = load_stl_patches(args.stl / PATCHES_FILE, args.num_patches), PATCHES_FILE
        zca = ZCA.fit(raw, 0.1)
        x = zca.apply(raw)
    else:
        (x, zca, raw), source = color_patches(args.num_patches), "the embedded colour photographs"
    config = PRESETS["color-patches"].replace(num_examples=len(raw), steps=args.steps)
    run = train.run(config, x, workdir / "features", data_info={
        "source": source, "shape": list(x.shape)}, progress=False)
    print(f"features: 400 on {len(raw)} patches of {source}, J = "
          f"{run.summary['final_loss']:.4f}")
    W1, b1 = (np.asarray(run.state.params[k], np.float64) for k in ("W1", "b1"))
    f_train, f_test = pooled(train_x, W1, b1, zca), pooled(test_x, W1, b1, zca)
    fit = train_softmax(f_train, train_y, lam=SOFTMAX_LAMBDA, steps=SOFTMAX_STEPS)
    train_acc, test_acc = accuracy(fit, f_train, train_y), accuracy(fit, f_test, test_y)
    files.write_json(workdir / "result.json", {
        "kind": "run", "experiment": "stl10-convolution", "patches": source,
        "train_accuracy": train_acc, "test_accuracy": test_acc,
        "seconds": time.perf_counter() - t0})
    print(f"train accuracy: {100 * train_acc:.2f}%")
    print(f"test accuracy: {100 * test_acc:.2f}%")


if __name__ == "__main__":
    run_script(main)
