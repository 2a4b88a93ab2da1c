"""data.datasets: choosing and loading a run's training data from a dataset name and a path, and the
colour patches' ZCA."""

import gzip
import struct

import numpy as np
import pytest
import scipy.io

from saejax.data import DataError, color_patches, detect_format, training_data, training_labels


def test_detect_format(tmp_path):
    mat = tmp_path / "IMAGES.mat"
    scipy.io.savemat(mat, {"IMAGES": np.zeros((16, 16, 2))})
    assert detect_format(mat) == "mat"
    sparse = tmp_path / "sparsenet"
    sparse.mkdir()
    (sparse / "image0").write_bytes(b"")
    assert detect_format(sparse) == "sparsenet"
    mnist = tmp_path / "mnist"
    mnist.mkdir()
    (mnist / "train-images-idx3-ubyte.gz").write_bytes(b"")
    assert detect_format(mnist) == "mnist"
    with pytest.raises(DataError, match="does not exist") as err:
        detect_format(tmp_path / "missing")
    for source in ("FILE.npy", "saejax activations", "saejax synth", "IMAGES.mat", "sparsenet",
                   "MNIST"):  # every kind of --data, as --help lists them
        assert source in str(err.value), source
    with pytest.raises(DataError, match="not a recognized data source"):
        detect_format(tmp_path)


def test_patches_from_a_mat_file(tmp_path):
    rng = np.random.default_rng(0)
    mat = tmp_path / "IMAGES.mat"
    scipy.io.savemat(mat, {"IMAGES": rng.normal(size=(32, 32, 3))})
    x, info = training_data("patches", mat, num_examples=50, patch_size=8, seed=1)
    assert x.shape == (50, 64) and x.min() >= 0.1 - 1e-12 and x.max() <= 0.9 + 1e-12
    assert info == {"dataset": "patches", "source": str(mat), "shape": [50, 64],
                    "num_examples": 50, "normalization": {"kind": "none"}}
    with pytest.raises(DataError, match="smaller than|patch"):
        training_data("patches", mat, num_examples=5, patch_size=40)


def test_mnist_dataset(tmp_path):
    images = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">iiii", 2051, 3, 28, 28) + images.tobytes())
    with gzip.open(tmp_path / "train-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">ii", 2049, 3) + bytes([1, 2, 3]))
    x, info = training_data("mnist", tmp_path, num_examples=2)
    assert x.shape == (2, 784)
    np.testing.assert_allclose(x, images[:2].reshape(2, -1) / 255.0, rtol=1e-6)
    with pytest.raises(DataError, match="needs --data"):
        training_data("mnist", None)
    with pytest.raises(DataError, match="use the mnist preset"):
        training_data("patches", tmp_path)


def test_digits_and_embedded():
    x, info = training_data("digits")
    assert x.shape == (1797, 64) and 0 <= x.min() and x.max() <= 1
    assert info["num_examples"] == 1797
    # --num-examples takes the first digits, with their labels; more than there are is refused
    first, info = training_data("digits", None, 500)
    np.testing.assert_array_equal(first, x[:500])
    assert info["num_examples"] == 500 and info["shape"] == [500, 64]
    labels = training_labels("digits", None, 500)
    np.testing.assert_array_equal(labels, training_labels("digits")[:500])
    with pytest.raises(DataError, match="holds 1797 images.*--num-examples 1797 or fewer"):
        training_data("digits", None, 1798)
    x, info = training_data("patches", None, num_examples=100, patch_size=8, seed=0)
    assert x.shape == (100, 64) and "embedded" in info["source"]


def test_shared_mnist_first_10000(shared_data):
    x, info = training_data("mnist", shared_data / "mnist", num_examples=10_000)
    assert x.shape == (10_000, 784) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0


def test_color_patches_zca_round_trip():
    x, zca, raw = color_patches(num_patches=500, patch_size=4, seed=0)
    assert raw.shape == (500, 48) and 0.0 <= raw.min() and raw.max() <= 1.0
    np.testing.assert_allclose(zca.invert(x), raw, atol=1e-10)
    # UFLDL's ZCA with epsilon: the whitened covariance is U diag(S / (S + eps)) U^T, where
    # U S U^T is the covariance of the raw patches (computed here with NumPy's eigh).
    centred = raw - raw.mean(0)
    S, U = np.linalg.eigh(centred.T @ centred / len(raw))
    want = U @ np.diag(S / (S + 0.1)) @ U.T
    np.testing.assert_allclose(x.T @ x / len(x), want, atol=1e-10)
