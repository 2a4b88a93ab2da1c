"""Tests for saejax.data: loaders on real and hand-made files, patches, whitening, ZCA."""

import gzip
import os
import socket
import struct
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from saejax.data import (
    ZCA,
    DataError,
    check_finite,
    embedded_color_images,
    embedded_images,
    load_digits,
    load_images,
    load_images_mat,
    load_mnist,
    load_sparsenet,
    normalize_patches,
    sample_patches,
    ufldl_patches,
    whiten_image,
    whiten_images,
)

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("SAEJAX_DATA", REPO.parent / "shared" / "data"))
MAT_FILE = DATA / "IMAGES_sparsenet.mat"
SPARSENET_DIR = DATA / "olshausen_sparsenet_trainset"
MNIST_DIR = DATA / "mnist"


def _require(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path} not found; set SAEJAX_DATA to the shared data directory to run this")


# ---------------------------------------------------------------------------------------------
# Real files (figures from the data README).


@pytest.fixture(scope="module")
def sparsenet_images():
    _require(SPARSENET_DIR)
    return load_sparsenet(SPARSENET_DIR)


def test_sparsenet_dir_matches_readme(sparsenet_images):
    images = sparsenet_images
    assert images.shape == (10, 512, 512)
    assert images.dtype == np.float64
    assert images.std() == pytest.approx(0.2812, abs=1e-4)
    assert images.min() == pytest.approx(-2.0323, abs=1e-4)
    assert images.max() == pytest.approx(2.8599, abs=1e-4)
    per_image_var = images.var(axis=(1, 2))
    assert per_image_var.min() == pytest.approx(0.0139, abs=1e-4)
    assert per_image_var.max() == pytest.approx(0.2004, abs=1e-4)
    assert per_image_var.mean() == pytest.approx(0.0791, abs=1e-4)
    # Independent decode of one file, straight from the README's recipe.
    raw = np.fromfile(SPARSENET_DIR / "image3", dtype=">f4").reshape(512, 512)
    np.testing.assert_array_equal(images[3], raw)


def test_images_mat_agrees_with_sparsenet_dir(sparsenet_images):
    _require(MAT_FILE)
    from_mat = load_images_mat(MAT_FILE)
    assert from_mat.shape == (10, 512, 512)
    np.testing.assert_array_equal(from_mat, sparsenet_images)
    # The file is H x W x K: image k is IMAGES[:, :, k], which must be from_mat[k] unchanged
    # (no transpose of rows and columns).
    stored = scipy.io.loadmat(MAT_FILE)["IMAGES"]
    np.testing.assert_array_equal(from_mat[7], stored[:, :, 7])
    np.testing.assert_array_equal(load_images(MAT_FILE), from_mat)
    np.testing.assert_array_equal(load_images(SPARSENET_DIR), sparsenet_images)


def test_ufldl_patches_on_real_images(sparsenet_images):
    patches = ufldl_patches(sparsenet_images, num_patches=10000, patch_size=8, seed=0)
    assert patches.shape == (10000, 64)
    assert patches.min() >= 0.1 and patches.max() <= 0.9
    # After removing each patch's mean the data is symmetric about 0.5 on average.
    assert patches.mean() == pytest.approx(0.5, abs=0.01)


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


# ---------------------------------------------------------------------------------------------
# Hand-made MNIST files.


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


# ---------------------------------------------------------------------------------------------
# Hand-made .mat files and sparsenet directories.


def test_mat_layout_and_single_image(tmp_path):
    # Pixel value encodes (row, col, image) so any transpose mistake shows up.
    rows, cols, k = np.meshgrid(np.arange(4), np.arange(6), np.arange(3), indexing="ij")
    stored = 100.0 * rows + 10.0 * cols + k
    scipy.io.savemat(tmp_path / "imgs.mat", {"IMAGES": stored})
    images = load_images_mat(tmp_path / "imgs.mat")
    assert images.shape == (3, 4, 6)
    assert images[2, 3, 5] == 100 * 3 + 10 * 5 + 2
    scipy.io.savemat(tmp_path / "one.mat", {"IMG": stored[:, :, 0]})
    one = load_images_mat(tmp_path / "one.mat", variable="IMG")
    assert one.shape == (1, 4, 6)
    np.testing.assert_array_equal(one[0], stored[:, :, 0])


def test_mat_wrong_variable(tmp_path):
    scipy.io.savemat(tmp_path / "x.mat", {"PICS": np.zeros((4, 4, 2)), "other": 1.0})
    with pytest.raises(DataError, match=r"x\.mat.*'IMAGES'.*\['PICS', 'other'\]"):
        load_images_mat(tmp_path / "x.mat")


def test_mat_wrong_rank(tmp_path):
    scipy.io.savemat(tmp_path / "x.mat", {"IMAGES": np.zeros((2, 3, 4, 5))})
    with pytest.raises(DataError, match=r"x\.mat.*\(2, 3, 4, 5\)"):
        load_images_mat(tmp_path / "x.mat")


def test_mat_nan(tmp_path):
    stored = np.zeros((4, 4, 2))
    stored[1, 2, 1] = np.nan
    stored[0, 0, 0] = np.inf
    scipy.io.savemat(tmp_path / "x.mat", {"IMAGES": stored})
    with pytest.raises(DataError, match=r"x\.mat.*1 NaN and 1 Inf"):
        load_images_mat(tmp_path / "x.mat")


def test_mat_missing_or_garbage(tmp_path):
    with pytest.raises(DataError, match=r"absent\.mat.*no such file"):
        load_images_mat(tmp_path / "absent.mat")
    (tmp_path / "junk.mat").write_bytes(b"this is not MATLAB" * 20)
    with pytest.raises(DataError, match=r"junk\.mat.*not a readable MATLAB"):
        load_images_mat(tmp_path / "junk.mat")


def _write_sparsenet(directory: Path, count: int) -> np.ndarray:
    directory.mkdir()
    rng = np.random.default_rng(1)
    images = rng.standard_normal((count, 512, 512)).astype(np.float32)
    for k in range(count):
        images[k].astype(">f4").tofile(directory / f"image{k}")
    (directory / "header").write_text("512 512 32 0 3 genheader\n")
    return images


def test_sparsenet_handmade(tmp_path):
    written = _write_sparsenet(tmp_path / "set", count=2)
    images = load_sparsenet(tmp_path / "set")
    assert images.shape == (2, 512, 512) and images.dtype == np.float64
    np.testing.assert_array_equal(images, written)
    np.testing.assert_array_equal(load_images(tmp_path / "set"), written)


def test_sparsenet_truncated(tmp_path):
    _write_sparsenet(tmp_path / "set", count=2)
    path = tmp_path / "set" / "image1"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataError, match=r"image1.*1048576.*1000"):
        load_sparsenet(tmp_path / "set")


def test_sparsenet_errors(tmp_path):
    with pytest.raises(DataError, match="no such directory"):
        load_sparsenet(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty.*no files named image0"):
        load_sparsenet(tmp_path / "empty")
    _write_sparsenet(tmp_path / "gap", count=3)
    (tmp_path / "gap" / "image1").unlink()
    with pytest.raises(DataError, match=r"image1"):
        load_sparsenet(tmp_path / "gap")
    bad = _write_sparsenet(tmp_path / "nan", count=1)
    bad[0, 5, 5] = np.nan
    bad[0].astype(">f4").tofile(tmp_path / "nan" / "image0")
    with pytest.raises(DataError, match=r"image0.*1 NaN"):
        load_sparsenet(tmp_path / "nan")


def test_load_images_rejects_other_formats(tmp_path):
    (tmp_path / "picture.png").write_bytes(b"\x89PNG")
    with pytest.raises(DataError, match=r"picture\.png.*\.mat.*image0"):
        load_images(tmp_path / "picture.png")
    with pytest.raises(DataError, match="does not exist"):
        load_images(tmp_path / "absent")


def test_check_finite_counts():
    check_finite(np.arange(5), "ints")  # integers cannot be NaN
    with pytest.raises(DataError, match=r"weights: found 2 NaN and 1 Inf values out of 6"):
        check_finite(np.array([1.0, np.nan, np.nan, -np.inf, 0.0, 2.0]), "weights")


# ---------------------------------------------------------------------------------------------
# Patch sampling and normalization.


def _coordinate_images(k: int, h: int, w: int) -> np.ndarray:
    # Pixel value = 1e6 * image + 1e3 * row + col, so a patch says where it came from.
    kk, rr, cc = np.meshgrid(np.arange(k), np.arange(h), np.arange(w), indexing="ij")
    return 1e6 * kk + 1e3 * rr + cc


def _decode(value: float) -> tuple[int, int, int]:
    value = int(value)
    return value // 1_000_000, (value // 1000) % 1000, value % 1000


def test_patches_are_subwindows():
    images = _coordinate_images(3, 20, 30)
    p = 5
    patches = sample_patches(images, num_patches=400, patch_size=p, seed=7)
    assert patches.shape == (400, 25) and patches.dtype == np.float64
    corners = set()
    for patch in patches:
        k, r, c = _decode(patch[0])
        np.testing.assert_array_equal(patch, images[k, r : r + p, c : c + p].reshape(-1))
        corners.add((k, r, c))
    ks, rs, cs = zip(*corners, strict=True)
    assert set(ks) == {0, 1, 2}
    # Corners reach both edges: 0 and the last fitting position H - p / W - p.
    assert min(rs) == 0 and max(rs) == 20 - p
    assert min(cs) == 0 and max(cs) == 30 - p


def test_patches_from_images_of_differing_sizes():
    small = _coordinate_images(1, 6, 6)[0]
    large = _coordinate_images(2, 60, 90)[1]  # image index 1 encoded in the values
    patches = sample_patches([small, large], num_patches=4000, patch_size=6, seed=3)
    which = np.array([_decode(v)[0] for v in patches[:, 0]])
    # The small image has a single position, so its patches are all the whole image.
    np.testing.assert_array_equal(
        patches[which == 0], np.tile(small.reshape(-1), (4000, 1))[which == 0]
    )
    # Images are drawn uniformly, not in proportion to area: about half the patches each.
    assert abs((which == 0).mean() - 0.5) < 0.05


def test_colour_patches_flatten_over_rows_cols_channels():
    rng = np.random.default_rng(0)
    colour = rng.standard_normal((2, 12, 14, 3))
    p = 4
    patches = sample_patches(colour, num_patches=50, patch_size=p, seed=1)
    assert patches.shape == (50, p * p * 3)
    # Find each patch by brute force over every image and corner.
    windows = {
        (k, r, c): colour[k, r : r + p, c : c + p, :].reshape(-1)
        for k in range(2)
        for r in range(12 - p + 1)
        for c in range(14 - p + 1)
    }
    for patch in patches:
        assert any(np.array_equal(patch, w) for w in windows.values())
    as_list = sample_patches(list(colour), num_patches=50, patch_size=p, seed=1)
    np.testing.assert_array_equal(as_list, patches)


def test_sampling_reproducible_from_seed():
    images = np.random.default_rng(0).standard_normal((4, 32, 32))
    a = sample_patches(images, 100, 8, seed=11)
    b = sample_patches(images, 100, 8, seed=11)
    c = sample_patches(images, 100, 8, seed=12)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_sampling_errors():
    images = np.zeros((2, 10, 10))
    with pytest.raises(DataError, match=r"images\[1\] has shape \(10, 7\)"):
        sample_patches([np.zeros((10, 10)), np.zeros((10, 7))], 5, 8, seed=0)
    with pytest.raises(DataError, match="num_patches"):
        sample_patches(images, 0, 4, seed=0)
    with pytest.raises(DataError, match="patch_size"):
        sample_patches(images, 5, 0, seed=0)
    bad = images.copy()
    bad[1, 2, 3] = np.nan
    with pytest.raises(DataError, match="1 NaN"):
        sample_patches(bad, 5, 4, seed=0)
    with pytest.raises(DataError, match="all 2-D"):
        sample_patches([np.zeros((10, 10)), np.zeros((10, 10, 3))], 5, 4, seed=0)


def test_normalize_matches_ufldl_formula():
    rng = np.random.default_rng(5)
    patches = rng.standard_normal((500, 64)) * 2.0 + rng.standard_normal((500, 1))
    # normalizeData from sampleIMAGES.m, written out on (num_patches, 64) rows.
    x = patches - patches.mean(axis=1, keepdims=True)
    pstd = 3 * np.std(x, ddof=1)
    x = np.maximum(np.minimum(x, pstd), -pstd) / pstd
    expected = (x + 1) * 0.4 + 0.1

    got = normalize_patches(patches)
    assert got.dtype == np.float64 and got.shape == patches.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-15)
    assert got.min() >= 0.1 and got.max() <= 0.9
    # Heavy tails make clipping happen, so both ends of the range are reached.
    assert got.min() == pytest.approx(0.1) and got.max() == pytest.approx(0.9)


def test_normalize_hand_worked():
    # Row means 2 and 0; centred data [-1, 1, -1, 1] has std (ddof=1) 2/sqrt(3), pstd = 2*sqrt(3).
    patches = np.array([[1.0, 3.0], [-1.0, 1.0]])
    value = 1 / (2 * np.sqrt(3))
    expected = np.array([[-value, value], [-value, value]]) * 0.4 + 0.5
    np.testing.assert_allclose(normalize_patches(patches), expected, atol=1e-15)
    with pytest.raises(DataError, match="constant"):
        normalize_patches(np.ones((3, 4)))


# ---------------------------------------------------------------------------------------------
# Whitening.


def _radial_power(image: np.ndarray, bands) -> list[float]:
    power = np.abs(np.fft.fft2(image)) ** 2
    f = np.hypot(
        *np.meshgrid(np.fft.fftfreq(image.shape[0]), np.fft.fftfreq(image.shape[1]), indexing="ij")
    )
    return [power[(f >= lo) & (f < hi)].mean() for lo, hi in bands]


def test_whitening_flattens_one_over_f_spectrum():
    rng = np.random.default_rng(0)
    n = 256
    fy, fx = np.meshgrid(np.fft.fftfreq(n), np.fft.fftfreq(n), indexing="ij")
    f = np.hypot(fx, fy)
    amplitude = np.where(f > 0, 1.0 / np.where(f > 0, f, 1.0), 0.0)
    phases = np.exp(2j * np.pi * rng.random((n, n)))
    image = np.real(np.fft.ifft2(amplitude * phases))

    bands = [(0.02, 0.05), (0.15, 0.25)]
    low, mid = _radial_power(image, bands)
    white_low, white_mid = _radial_power(whiten_image(image), bands)
    # 1/f amplitude: power ratio about (0.2 / 0.035)^2, more than an order of magnitude.
    assert low / mid > 15
    # Whitened: the ramp cancels 1/f, leaving only the gentle exp(-2 (f/f0)^4) roll-off.
    expected = np.exp(-2 * (0.035 / 0.4) ** 4) / np.exp(-2 * (0.2 / 0.4) ** 4)
    assert white_low / white_mid == pytest.approx(expected, rel=0.3)


@pytest.mark.parametrize(("ky", "kx"), [(5, 7), (0, 3), (11, 0), (20, 30)])
def test_filter_response_on_cosines(ky, kx):
    # A cosine at an exact FFT frequency comes out scaled by the filter at that frequency.
    h, w = 48, 64  # non-square on purpose
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    image = 3.0 + np.cos(2 * np.pi * (ky * rows / h + kx * cols / w))  # mean 3 is removed
    f = np.hypot(ky / h, kx / w)
    gain = f * np.exp(-((f / 0.4) ** 4))
    np.testing.assert_allclose(whiten_image(image), gain * (image - 3.0), atol=1e-12)
    f0 = 0.1
    gain = f * np.exp(-((f / f0) ** 4))
    np.testing.assert_allclose(whiten_image(image, f0=f0), gain * (image - 3.0), atol=1e-12)


def test_whiten_images_variance_and_shapes():
    rng = np.random.default_rng(2)
    images = [rng.standard_normal((40, 50)), 5 * rng.standard_normal((64, 32))]
    out = whiten_images(images, variance=0.1)
    assert [o.shape for o in out] == [(40, 50), (64, 32)]
    assert np.mean([o.var(ddof=1) for o in out]) == pytest.approx(0.1, rel=1e-12)
    # One shared scale factor: relative contrast between images survives.
    ratio = out[1].std() / out[0].std()
    plain = [whiten_image(im) for im in images]
    assert ratio == pytest.approx(plain[1].std() / plain[0].std(), rel=1e-12)
    with pytest.raises(DataError):
        whiten_images([])


def test_embedded_images_offline(monkeypatch):

    def no_network(*args, **kwargs):
        raise AssertionError("embedded_images tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    from saejax.data import images as images_module

    images_module._embedded_images.cache_clear()
    images_module._embedded_color_images.cache_clear()
    images = embedded_images()
    assert len(images) >= 6
    for image in images:
        assert image.ndim == 2 and image.dtype == np.float64 and min(image.shape) >= 128
        assert np.isfinite(image).all()
    assert np.mean([im.var(ddof=1) for im in images]) == pytest.approx(0.1, rel=1e-9)
    # Callers get copies: editing one must not change the cached images.
    images[0][:] = 0.0
    assert embedded_images()[0].std() > 0

    colour = embedded_color_images()
    full = embedded_color_images(None)
    assert len(colour) == len(full) == 7
    for image, whole in zip(colour, full, strict=True):
        assert image.ndim == whole.ndim == 3 and image.shape[2] == whole.shape[2] == 3
        assert image.min() >= 0.0 and image.max() <= 1.0
        assert min(image.shape[:2]) == 96 and min(whole.shape[:2]) >= 300  # STL-10's scale
        ratio = whole.shape[1] / whole.shape[0]
        assert abs(image.shape[1] / image.shape[0] - ratio) < 0.02  # the aspect kept
        # scaled, not cropped: the mean colour stays
        np.testing.assert_allclose(image.mean(axis=(0, 1)), whole.mean(axis=(0, 1)), atol=0.01)
    with pytest.raises(ValueError, match="short_side"):
        embedded_color_images(4)


# ---------------------------------------------------------------------------------------------
# ZCA.


def test_zca_hand_worked():
    # Zero-mean data with covariance diag(1, 4): W = diag(1/sqrt(1+eps), 1/sqrt(4+eps)).
    x = np.array([[1.0, 2.0], [-1.0, -2.0], [1.0, -2.0], [-1.0, 2.0]]) + [10.0, -3.0]
    zca = ZCA.fit(x, epsilon=0.1)
    np.testing.assert_allclose(zca.mean, [10.0, -3.0], atol=1e-14)
    np.testing.assert_allclose(zca.W, np.diag([1 / np.sqrt(1.1), 1 / np.sqrt(4.1)]), atol=1e-14)
    np.testing.assert_allclose(zca.W_inv, np.diag([np.sqrt(1.1), np.sqrt(4.1)]), atol=1e-14)
    np.testing.assert_allclose(zca.apply(x[0]), [1 / np.sqrt(1.1), 2 / np.sqrt(4.1)], atol=1e-14)


def test_zca_whitens_correlated_data():
    rng = np.random.default_rng(3)
    m, n = 4000, 6
    mixing = rng.standard_normal((n, n)) * np.array([3.0, 1.0, 0.5, 0.2, 2.0, 1.0])[:, None]
    x = rng.standard_normal((m, n)) @ mixing + rng.standard_normal(n)

    # Tiny epsilon: the whitened covariance (x^T x / m, as UFLDL) is the identity.
    z = ZCA.fit(x, epsilon=1e-12).apply(x)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-10)
    np.testing.assert_allclose(z.T @ z / m, np.eye(n), atol=1e-6)

    # epsilon = 0.1: covariance is U diag(S / (S + eps)) U^T, from an eigendecomposition here.
    eps = 0.1
    centred = x - x.mean(axis=0)
    s, u = np.linalg.eigh(centred.T @ centred / m)
    zca = ZCA.fit(x, epsilon=eps)
    z = zca.apply(x)
    np.testing.assert_allclose(z.T @ z / m, (u * (s / (s + eps))) @ u.T, atol=1e-10)
    # Zero phase: ZCA is the symmetric whitening, so it stays closest to the input.
    np.testing.assert_allclose(zca.W, zca.W.T, atol=1e-12)
    np.testing.assert_allclose(zca.W @ zca.W_inv, np.eye(n), atol=1e-10)

    np.testing.assert_allclose(zca.invert(zca.apply(x)), x, rtol=0, atol=1e-10)


def test_zca_rejects_bad_input():
    zca = ZCA.fit(np.random.default_rng(0).standard_normal((50, 4)))
    with pytest.raises(DataError, match=r"width 5.*width 4"):
        zca.apply(np.zeros((3, 5)))
    with pytest.raises(DataError, match=r"width 3.*width 4"):
        zca.invert(np.zeros((2, 3)))
    with pytest.raises(DataError, match="NaN"):
        zca.apply(np.full((2, 4), np.nan))
    with pytest.raises(DataError, match="NaN"):
        ZCA.fit(np.full((5, 4), np.nan))
    with pytest.raises(DataError, match="shape"):
        ZCA.fit(np.zeros(4))
    with pytest.raises(AttributeError):
        zca.epsilon = 1.0  # frozen: a fitted transform cannot drift


# ---------------------------------------------------------------------------------------------
# scikit-learn digits.


def test_load_digits():
    images, labels = load_digits()
    assert images.shape == (1797, 64) and images.dtype == np.float64
    assert labels.shape == (1797,)
    assert images.min() == 0.0 and images.max() == 1.0
    assert set(labels.tolist()) == set(range(10))
