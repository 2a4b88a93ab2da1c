"""Digit datasets: MNIST from IDX files (raw or gzip) and scikit-learn's embedded 8x8 digits."""

import gzip
import logging
import zlib
from pathlib import Path

import numpy as np

from saejax.data.errors import DataError

logger = logging.getLogger(__name__)

IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
_PREFIX = {"train": "train", "test": "t10k"}


def _find(directory: Path, stem: str) -> Path:
    """Returns directory/stem or directory/stem.gz, preferring the raw file (no decompression)."""
    candidates = [directory / stem, directory / f"{stem}.gz"]
    for path in candidates:
        if path.is_file():
            return path
    raise DataError(
        f"{directory}: found neither {candidates[0].name} nor {candidates[1].name}. Pass the "
        "directory holding the MNIST IDX files (as downloaded, gzipped or not)."
    )


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:
        # gzip reports bad headers as OSError, cut-off streams as EOFError, bad data as zlib.error.
        raise DataError(
            f"{path}: could not be read ({type(err).__name__}: {err}). The file is corrupt or "
            "truncated; download it again."
        ) from err


def _parse_idx(path: Path, magic: int, ndim: int) -> np.ndarray:
    """Parses an IDX file of unsigned bytes, checking the magic number and payload size."""
    data = _read_bytes(path)
    header_bytes = 4 * (1 + ndim)
    if len(data) < header_bytes:
        raise DataError(
            f"{path}: only {len(data)} bytes, shorter than the {header_bytes}-byte IDX header. "
            "The file is truncated; download it again."
        )
    # IDX headers are big-endian int32: the magic number, then one size per dimension.
    header = np.frombuffer(data, dtype=">i4", count=1 + ndim)
    kind = "image" if magic == IMAGES_MAGIC else "label"
    if int(header[0]) != magic:
        raise DataError(
            f"{path}: expected magic number {magic} for an MNIST {kind} file, got "
            f"{int(header[0])}. Pass the directory holding the MNIST IDX files, unchanged."
        )
    dims = tuple(int(d) for d in header[1:])
    expected = int(np.prod(dims, dtype=np.int64))
    actual = len(data) - header_bytes
    if actual != expected:
        problem = "truncated" if actual < expected else "longer than its header says"
        raise DataError(
            f"{path}: header announces {dims} = {expected} payload bytes, but the file holds "
            f"{actual}; it is {problem}. Download it again."
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_bytes).reshape(dims)


def load_mnist(
    directory: str | Path, split: str = "train", limit: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Loads MNIST from the IDX files in `directory`.

    Reads {train,t10k}-images-idx3-ubyte and {train,t10k}-labels-idx1-ubyte, each raw or with a
    .gz suffix (the raw file wins when both exist).

    Args:
      directory: folder holding the IDX files.
      split: "train" (60000 examples) or "test" (10000 examples).
      limit: if given, keep only the first `limit` examples (at most all of them).

    Returns:
      images: float32 array (N, rows*cols) = (N, 784) with pixels scaled to [0, 1], each row an
        image flattened row-major.
      labels: uint8 array (N,) of digits 0-9.

    Raises:
      DataError: for a bad split or limit, a missing directory or file, a corrupt gzip stream, a
        wrong magic number, a payload that does not match its header, or mismatched counts.
    """
    if split not in _PREFIX:
        raise DataError(f"split must be 'train' or 'test', got {split!r}.")
    if limit is not None and limit < 1:
        raise DataError(f"limit must be a positive number of examples or None, got {limit}.")
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(
            f"{directory}: no such directory. Pass the directory holding "
            f"{_PREFIX[split]}-images-idx3-ubyte[.gz] and {_PREFIX[split]}-labels-idx1-ubyte[.gz]."
        )
    image_path = _find(directory, f"{_PREFIX[split]}-images-idx3-ubyte")
    label_path = _find(directory, f"{_PREFIX[split]}-labels-idx1-ubyte")
    images = _parse_idx(image_path, IMAGES_MAGIC, ndim=3)
    labels = _parse_idx(label_path, LABELS_MAGIC, ndim=1)
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{image_path} holds {images.shape[0]} images but {label_path} holds "
            f"{labels.shape[0]} labels. The two files come from different sets; use a matching pair."
        )
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    flat = images.reshape(images.shape[0], -1).astype(np.float32) / np.float32(255)
    logger.info("loaded %d MNIST %s examples from %s", flat.shape[0], split, directory)
    # frombuffer views are read-only; copy the labels so callers get an ordinary array.
    return flat, labels.copy()


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 handwritten digits (shipped with scikit-learn, no download).

    Returns:
      images: float64 array (1797, 64) with pixels scaled from 0..16 to [0, 1].
      labels: uint8 array (1797,) of digits 0-9.
    """
    import sklearn.datasets

    digits = sklearn.datasets.load_digits()
    return digits.data / 16.0, digits.target.astype(np.uint8)
