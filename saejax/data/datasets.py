"""The training data of a run, from a config's dataset name and optional path."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from saejax.data import activation_files
from saejax.data import normalize as normalization
from saejax.data.arrays import is_array_spec, load_array, split_spec
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

logger = logging.getLogger(__name__)


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
    """``"mat"``, ``"sparsenet"``, ``"mnist"``, or ``"npy"`` / ``"npz"`` (an array file, also as
    FILE.npz:NAME) for a data path; DataError otherwise."""
    if is_array_spec(path):
        file, _ = split_spec(path)
        if file.is_file():
            return file.suffix.lower()[1:]
        path = file
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".mat":
        return "mat"
    if path.is_dir() and (path / "image0").is_file():
        return "sparsenet"
    if path.is_dir() and any(path.glob("train-images-idx3-ubyte*")):
        return "mnist"
    what = "does not exist" if not path.exists() else "is not a recognized data source"
    raise DataError(
        f"{path}: {what}. --data takes an (M, N) array as FILE.npy, FILE.npz or FILE.npz:NAME, "
        "a directory of activations (`saejax activations`) or of a synthetic set (`saejax "
        "synth`), an IMAGES.mat file, a directory of Olshausen's sparsenet files (image0, "
        "image1, ...) or an MNIST directory (train-images-idx3-ubyte[.gz], ...)."
    )


DIGITS = 1797  # scikit-learn's digits: all there are
DEFAULT_EXAMPLES = 10_000


def training_data(
    dataset: str, path=None, num_examples: int | None = None, patch_size: int = 8, seed: int = 0,
    normalize: str = "none",
) -> tuple[np.ndarray, dict]:
    """Loads a run's examples, shape (M, N), and a description for config.json.

    Args:
      dataset: ``"patches"`` (UFLDL-normalized natural patches), ``"mnist"``, ``"digits"``,
        ``"color-patches"`` (ZCA-whitened colour patches, see ``color_patches``) or
        ``"array"`` (a user's array file, see ``arrays.load_array``).
      path: for patches, an IMAGES.mat or sparsenet directory (None: the embedded photographs);
        for mnist, the MNIST directory (required); for array, FILE.npy, FILE.npz or
        FILE.npz:NAME (required); unused for digits.
      num_examples: patches to sample, or MNIST or digits images to take (the first ones);
        None: 10,000 (all 1,797 for digits). More digits than there are is a DataError. For an
        array, None takes every row and fewer than its rows a seeded sample of them.
      patch_size: patch side in pixels.
      seed: seeds the patch sample (and an array's sample).
      normalize: a normalization fitted on these examples and applied to them (``normalize.fit``):
        ``"none"``, ``"ufldl"`` or ``"standardize"``.

    Returns:
      ``(x, info)``: the examples and, for config.json, ``dataset``, ``source``, ``shape``,
      ``num_examples`` (the rows of x) and ``normalization`` (the fitted record that encoding
      applies again); an array adds its file's path, size, sha256 and how its rows were taken.
    """
    if dataset == "array":
        if path is None:
            raise DataError("the array dataset needs --data FILE.npy, FILE.npz or FILE.npz:NAME "
                            "(an (M, N) array, one example per row).")
        x, info = load_array(path, num_examples, seed)
        return _normalized(x, info, normalize)
    if num_examples is None:
        num_examples = DIGITS if dataset == "digits" else DEFAULT_EXAMPLES
    if path is not None and dataset in ("digits", "color-patches"):
        raise DataError(f"the {dataset} data are embedded, so --data {path} would be ignored; "
                        "leave --data out, or give an array file (FILE.npy, FILE.npz) to train "
                        "on your own data.")
    if dataset == "patches":
        if path is None:
            images, source = embedded_images(), "embedded scikit-image photographs, whitened"
        else:
            fmt = detect_format(path)
            if fmt == "mnist":
                raise DataError(f"{path} is an MNIST directory; use the mnist preset for it.")
            if fmt in ("npy", "npz"):
                raise DataError(f"{path} is an array file: train on it as dataset array.")
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
            f"unknown dataset {dataset!r}; choose patches, mnist, digits, color-patches or array."
        )
    info = {"dataset": dataset, "source": source, "shape": list(x.shape),
            "num_examples": int(x.shape[0])}
    return _normalized(x, info, normalize)


def _normalized(x: np.ndarray, info: dict, kind: str) -> tuple[np.ndarray, dict]:
    """x with the normalization ``kind`` fitted on it and applied, and info with its record."""
    record = normalization.fit(kind, x)
    return normalization.apply(record, x), {**info, "normalization": record}


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


def data_name(spec) -> str | None:
    """The name a run directory takes from a user's ``--data``: an array file's stem (acts.npy,
    acts.npz:x -> acts), an activations cache's or synthetic set's directory name; None for a
    preset's data set (a path to MNIST or to images), which the preset names."""
    from saejax.data import synthetic

    if spec is None or not (is_array_spec(spec) or synthetic.is_synthetic(spec)):
        return None
    path = split_spec(spec)[0].resolve()
    return path.name if path.is_dir() else path.stem


def config_data(config, all_rows: bool = False):
    """``(config, x, info)``: a run's data as its ``config`` names it, normalized as
    ``config.normalize`` says; x is an ``ActivationStream`` when the run ``streams``. A .npy or .npz ``config.data`` makes the data set an array, whose
    rows are all taken when ``all_rows`` (the command line without --num-examples; a resumed
    run keeps its recorded count), else ``config.num_examples`` of them; the config returned
    records the number of rows actually used.

    A directory that ``saejax synth`` wrote trains on its x.npy, and ``info["synthetic"]``
    names the directory whenever the array is a set's x.npy, so that its known dictionary
    scores the model (``synthetic.truth_of``)."""
    from saejax.data import synthetic

    if config.data is not None and synthetic.is_synthetic(config.data):
        config = config.replace(data=str(Path(config.data) / synthetic.X_FILE))
    if is_array_spec(config.data):
        config = config.replace(dataset="array")
    array = config.dataset == "array"
    if array and streams(config):
        from saejax.data.stream import ActivationStream

        stream, info = ActivationStream.open(config.data, None if all_rows else
                                             config.num_examples, config.seed, config.normalize)
        _fewer_rows(config, len(stream), all_rows)
        return config.replace(num_examples=len(stream)), stream, info
    x, info = training_data(config.dataset, config.data,
                            None if array and all_rows else config.num_examples,
                            config.patch_size, config.seed, normalize=config.normalize)
    if array:
        _fewer_rows(config, int(x.shape[0]), all_rows)
        config = config.replace(num_examples=int(x.shape[0]))
        home = Path(info["path"]).parent
        if Path(info["path"]).name == synthetic.X_FILE and synthetic.is_synthetic(home):
            info["synthetic"] = str(home)
    return config, x, info


def _fewer_rows(config, rows: int, all_rows: bool) -> None:
    """Warns when an array holds fewer rows than --num-examples asked for (all are used)."""
    if not all_rows and rows < config.num_examples:
        logger.warning("%s holds %d rows, fewer than the %d asked for (--num-examples): all %d "
                       "are used", config.data, rows, config.num_examples, rows)


def streams(config) -> bool:
    """Whether a run reads its data a minibatch at a time (``data.stream``) instead of loading
    it: an activations cache trained by a minibatch optimizer."""
    return (activation_files.is_activations(config.data) and config.batch_size is not None
            and config.optimizer != "lbfgs")


def data_of(config, dataset: str | None = None, path=None, num_examples: int | None = None,
            recorded: dict | None = None) -> tuple[np.ndarray, dict]:
    """``training_data`` for a trained model's ``config``, unnormalized (the caller applies the
    model's recorded normalization): its own data set, path, example count, patch size and seed,
    unless ``dataset``, ``path`` or ``num_examples`` pick others.

    A path is the model's own only when the data set is too; a digits config built in Python
    may carry the default 10,000 examples, so it takes the 1,797 there are. A .npy or .npz
    ``path`` is an array, whatever the model's data set. An array is encoded whole unless
    ``num_examples`` asks for a sample. Without ``path``, a model trained on an array file reads
    that file again (its absolute path in ``recorded``, the model's data description), once its
    sha256 shows it unchanged; a model trained on an in-memory array needs ``path``.

    Raises:
      DataError: the model's array file is gone or changed, or it was never a file.
    """
    if is_array_spec(path):
        dataset = "array"
    dataset = dataset or config.dataset
    if dataset == "array":
        return _array_of(config, path, num_examples, recorded or {})
    if path is None and dataset == config.dataset:
        path = config.data
    if num_examples is None:
        num_examples = config.num_examples
        if dataset == "digits":
            num_examples = min(num_examples, DIGITS)
    return training_data(dataset, path, num_examples, config.patch_size, config.seed)


def _array_of(config, path, num_examples, recorded: dict) -> tuple[np.ndarray, dict]:
    """The array a model encodes: ``path``, or else the file it was trained on, unchanged."""
    if path is not None:
        return training_data("array", path, num_examples, seed=config.seed)
    if config.dataset != "array":
        raise DataError(f"the model was trained on {config.dataset}, not an array: pass --data "
                        "FILE.npy (or FILE.npz[:NAME]) holding the examples to encode.")
    if (recorded.get("path") or config.data) is None:
        raise DataError("the model was trained on an in-memory array, not a file: pass --data "
                        "FILE.npy (or FILE.npz[:NAME]) holding the examples to encode.")
    if recorded.get("path"):
        file, name = Path(recorded["path"]), recorded.get("npz_name")
    else:
        file, name = split_spec(config.data)
    trained_on = str(file)
    if not (file.is_file() or activation_files.is_activations(file)):
        raise DataError(f"the model was trained on an array at {trained_on}, which no longer "
                        "exists: pass --data FILE.npy (or FILE.npz[:NAME]) to encode.")
    spec = f"{trained_on}:{name}" if name and file.suffix.lower() == ".npz" else trained_on
    x, info = training_data("array", spec, num_examples, seed=config.seed)
    want, got = recorded.get("sha256"), info["sha256"]
    if want is not None and got != want:
        raise DataError(f"the model was trained on an array at {trained_on}, but the file has "
                        f"changed since (sha256 {got[:12]}..., recorded {want[:12]}...): pass "
                        f"--data {trained_on} to encode it as it is now, or another file.")
    return x, {**info, "reused": True}
