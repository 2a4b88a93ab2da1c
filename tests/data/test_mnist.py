"""data.mnist: the shared MNIST files, hand-made IDX files (raw and gzip) and every way they can be
wrong, and scikit-learn's digits."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from helpers import MNIST_DIR
from helpers import require as _require

from saejax.data import DataError, load_digits, load_mnist


def test_mnist_train_and_test():
    _require(MNIST_DIR)
    images, labels = load_mnist(MNIST_DIR, "train")
    assert images.shape == (60000, 784) and images.dtype == np.float32
    assert labels.shape == (60000,) and labels.dtype == np.uint8
    assert labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert images.min() == 0.0 and images.max() == 1.0
    assert images.mean(dtype=np.float64) == pytest.approx(0.1307, abs=1e-4)
    assert np.bincount(labels).tolist() == [
        5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949,
    ]  # fmt: skip

    test_images, test_labels = load_mnist(MNIST_DIR, "test")
    assert test_images.shape == (10000, 784)
    assert test_labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert test_images.mean(dtype=np.float64) == pytest.approx(0.1325, abs=1e-4)

    first, first_labels = load_mnist(MNIST_DIR, "test", limit=5)
    assert first.shape == (5, 784)
    np.testing.assert_array_equal(first, test_images[:5])
    np.testing.assert_array_equal(first_labels, test_labels[:5])


def _idx_images(pixels: np.ndarray, magic: int = 2051) -> bytes:
    n, rows, cols = pixels.shape
    return struct.pack(">iiii", magic, n, rows, cols) + pixels.astype(np.uint8).tobytes()


def _idx_labels(labels, magic: int = 2049) -> bytes:
    return struct.pack(">ii", magic, len(labels)) + bytes(labels)


def _write(path: Path, payload: bytes, compress: bool) -> None:
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)


@pytest.fixture
def tiny_pixels():
    # Three 28x28 images whose pixels are all different mod 256, to catch any reordering.
    return (np.arange(3 * 28 * 28) % 256).reshape(3, 28, 28).astype(np.uint8)


@pytest.mark.parametrize("compress", [False, True])
def test_tiny_idx_pair(tmp_path, tiny_pixels, compress):
    _write(tmp_path / "t10k-images-idx3-ubyte", _idx_images(tiny_pixels), compress)
    _write(tmp_path / "t10k-labels-idx1-ubyte", _idx_labels([3, 1, 4]), compress)
    images, labels = load_mnist(tmp_path, split="test")
    assert images.shape == (3, 784) and images.dtype == np.float32
    # Row-major flattening: pixel (row 2, col 5) of image 1 sits at column 2 * 28 + 5.
    assert images[1, 2 * 28 + 5] == pytest.approx(tiny_pixels[1, 2, 5] / 255)
    np.testing.assert_allclose(images, tiny_pixels.reshape(3, -1) / 255, rtol=1e-6)
    assert labels.tolist() == [3, 1, 4] and labels.dtype == np.uint8
    images, labels = load_mnist(tmp_path, split="test", limit=2)
    assert images.shape == (2, 784) and labels.tolist() == [3, 1]


def test_idx_wrong_magic(tmp_path, tiny_pixels):
    _write(tmp_path / "train-images-idx3-ubyte", _idx_images(tiny_pixels, magic=1234), False)
    _write(tmp_path / "train-labels-idx1-ubyte", _idx_labels([3, 1, 4]), False)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.*2051.*1234"):
        load_mnist(tmp_path)


def test_idx_labels_wrong_magic(tmp_path, tiny_pixels):
    _write(tmp_path / "train-images-idx3-ubyte", _idx_images(tiny_pixels), True)
    # An image header where labels should be: the classic swapped-files mistake.
    _write(tmp_path / "train-labels-idx1-ubyte", _idx_labels([3, 1, 4], magic=2051), True)
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz.*2049.*2051"):
        load_mnist(tmp_path)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_truncated(tmp_path, tiny_pixels, compress):
    payload = _idx_images(tiny_pixels)[:-100]
    _write(tmp_path / "train-images-idx3-ubyte", payload, compress)
    _write(tmp_path / "train-labels-idx1-ubyte", _idx_labels([3, 1, 4]), compress)
    expected, actual = 3 * 784, 3 * 784 - 100
    with pytest.raises(DataError, match=rf"train-images-idx3-ubyte.*{expected}.*{actual}"):
        load_mnist(tmp_path)


def test_idx_count_mismatch(tmp_path, tiny_pixels):
    _write(tmp_path / "train-images-idx3-ubyte", _idx_images(tiny_pixels), False)
    _write(tmp_path / "train-labels-idx1-ubyte", _idx_labels([3, 1]), False)
    with pytest.raises(DataError, match=r"3 images.*train-labels-idx1-ubyte.*2 labels"):
        load_mnist(tmp_path)


def test_idx_missing_file(tmp_path, tiny_pixels):
    _write(tmp_path / "train-images-idx3-ubyte", _idx_images(tiny_pixels), False)
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte.*train-labels-idx1-ubyte\.gz"):
        load_mnist(tmp_path)
    with pytest.raises(DataError, match="no such directory"):
        load_mnist(tmp_path / "nowhere")
    with pytest.raises(DataError, match="split"):
        load_mnist(tmp_path, split="validation")


def test_idx_corrupt_gzip(tmp_path, tiny_pixels):
    compressed = gzip.compress(_idx_images(tiny_pixels))
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(compressed[: len(compressed) // 2])
    _write(tmp_path / "train-labels-idx1-ubyte", _idx_labels([3, 1, 4]), True)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz.*corrupt"):
        load_mnist(tmp_path)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"not a gzip stream at all")
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz"):
        load_mnist(tmp_path)


def test_load_digits():
    images, labels = load_digits()
    assert images.shape == (1797, 64) and images.dtype == np.float64
    assert labels.shape == (1797,)
    assert images.min() == 0.0 and images.max() == 1.0
    assert set(labels.tolist()) == set(range(10))
