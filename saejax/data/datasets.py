"""The training data of a run, from a config's dataset name and optional path."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from saejax.data.errors import DataError
from saejax.data.images import (
    COLOR_SHORT_SIDE,
    embedded_color_images,
    embedded_images,
    load_images,
)
from saejax.data.mnist import load_digits, load_mnist
from saejax.data.patches import sample_patches, ufldl_patches
from saejax.data.whiten import ZCA


def color_patches(num_patches: int = 20_000, patch_size: int = 8, seed: int = 0,
                  epsilon: float = 0.1) -> tuple[np.ndarray, ZCA, np.ndarray]:
    """ZCA-whitened colour patches of the embedded photographs (UFLDL's linear decoder data),
    each photograph scaled to STL-10's 96 pixels on its shorter side (``embedded_color_images``).

    Returns:
      ``(x_white, zca, raw)``: whitened patches (M, p*p*3), the fitted ``ZCA`` and the raw
      patches in [0, 1], each row flattened row-major over (p, p, 3).
    """
    raw = sample_patches(embedded_color_images(), num_patches, patch_size, seed)
    zca = ZCA.fit(raw, epsilon)
    return zca.apply(raw), zca, raw


def detect_format(path: str | Path) -> str:
    """``"mat"``, ``"sparsenet"`` or ``"mnist"`` for a data path; DataError otherwise."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".mat":
        return "mat"
    if path.is_dir() and (path / "image0").is_file():
        return "sparsenet"
    if path.is_dir() and any(path.glob("train-images-idx3-ubyte*")):
        return "mnist"
    what = "does not exist" if not path.exists() else "is not a recognized data source"
    raise DataError(
        f"{path}: {what}. --data takes an IMAGES.mat file, a directory of Olshausen's sparsenet "
        "files (image0, image1, ...) or an MNIST directory (train-images-idx3-ubyte[.gz], ...)."
    )


DIGITS = 1797  # scikit-learn's digits: all there are
DEFAULT_EXAMPLES = 10_000


def training_data(
    dataset: str, path=None, num_examples: int | None = None, patch_size: int = 8, seed: int = 0
) -> tuple[np.ndarray, dict]:
    """Loads a run's examples, shape (M, N), and a description for config.json.

    Args:
      dataset: ``"patches"`` (UFLDL-normalized natural patches), ``"mnist"``, ``"digits"`` or
        ``"color-patches"`` (ZCA-whitened colour patches, see ``color_patches``).
      path: for patches, an IMAGES.mat or sparsenet directory (None: the embedded photographs);
        for mnist, the MNIST directory (required); unused for digits.
      num_examples: patches to sample, or MNIST or digits images to take (the first ones);
        None: 10,000 (all 1,797 for digits). More digits than there are is a DataError.
      patch_size: patch side in pixels.
      seed: seeds the patch sample.

    Returns:
      ``(x, info)``: the examples and, for config.json, ``dataset``, ``source``, ``shape``
      and ``num_examples`` (the rows of x).
    """
    if num_examples is None:
        num_examples = DIGITS if dataset == "digits" else DEFAULT_EXAMPLES
    if dataset == "patches":
        if path is None:
            images, source = embedded_images(), "embedded scikit-image photographs, whitened"
        else:
            fmt = detect_format(path)
            if fmt == "mnist":
                raise DataError(f"{path} is an MNIST directory; use the mnist preset for it.")
            images, source = load_images(path), str(path)
        x = ufldl_patches(images, num_examples, patch_size, seed)
    elif dataset == "mnist":
        if path is None:
            raise DataError(
                "the mnist preset needs --data DIR, the directory holding "
                "train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz]."
            )
        if detect_format(path) != "mnist":
            raise DataError(f"{path} holds no MNIST training images (train-images-idx3-ubyte).")
        x, _ = load_mnist(path, "train", limit=num_examples)
        source = str(path)
    elif dataset == "digits":
        _check_digits(num_examples)
        x = load_digits()[0][:num_examples]
        source = "scikit-learn load_digits (8x8, scaled to [0, 1])"
    elif dataset == "color-patches":
        x, _, _ = color_patches(num_examples, patch_size, seed)
        source = ("seven embedded colour photographs (scikit-image, scikit-learn) scaled to a "
                  f"{COLOR_SHORT_SIDE}-pixel shorter side, {patch_size}x{patch_size}x3 patches, "
                  "ZCA epsilon 0.1")
    else:
        raise DataError(
            f"unknown dataset {dataset!r}; choose patches, mnist, digits or color-patches."
        )
    info = {"dataset": dataset, "source": source, "shape": list(x.shape),
            "num_examples": int(x.shape[0])}
    return x, info


def _check_digits(num_examples: int) -> None:
    if num_examples > DIGITS:
        raise DataError(
            f"the digits dataset holds {DIGITS} images, fewer than the {num_examples} asked "
            f"for; pass --num-examples {DIGITS} or fewer (the digits preset takes all {DIGITS})."
        )


def training_labels(dataset: str, path=None, num_examples: int | None = None) -> np.ndarray | None:
    """The class labels of a labelled dataset's training examples (mnist, digits), else None.

    They line up with the rows that ``training_data`` returns for the same arguments.
    """
    if dataset == "mnist":
        return load_mnist(path, "train", limit=num_examples or DEFAULT_EXAMPLES)[1]
    if dataset == "digits":
        num_examples = DIGITS if num_examples is None else num_examples
        _check_digits(num_examples)
        return load_digits()[1][:num_examples]
    return None


def data_of(config, dataset: str | None = None, path=None,
            num_examples: int | None = None) -> tuple[np.ndarray, dict]:
    """``training_data`` for a trained model's ``config``: its own data set, path, example
    count, patch size and seed, unless ``dataset``, ``path`` or ``num_examples`` pick others.

    A path is the model's own only when the data set is too; a digits config built in Python
    may carry the default 10,000 examples, so it takes the 1,797 there are.
    """
    dataset = dataset or config.dataset
    if path is None and dataset == config.dataset:
        path = config.data
    if num_examples is None:
        num_examples = config.num_examples
        if dataset == "digits":
            num_examples = min(num_examples, DIGITS)
    return training_data(dataset, path, num_examples, config.patch_size, config.seed)
