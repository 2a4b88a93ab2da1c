"""data.images: the shared MATLAB and sparsenet files against the figures of their README, hand-made
files and every way they can be wrong, and the embedded photographs."""

import socket
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from helpers import MAT_FILE, SPARSENET_DIR
from helpers import require as _require

from saejax.data import (
    DataError,
    embedded_color_images,
    embedded_images,
    load_images,
    load_images_mat,
    load_sparsenet,
)


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


def test_stl_patches_are_read_from_matlabs_column_major_layout(tmp_path):
    from scipy.io import savemat

    from saejax.data import load_stl_patches

    patches = np.random.default_rng(3).uniform(size=(5, 8, 8, 3))
    columns = np.zeros((192, 5))
    for r in range(8):  # MATLAB's p(:) of an 8 x 8 x 3 patch: row r, column c, channel ch
        for c in range(8):
            for ch in range(3):
                columns[r + 8 * c + 64 * ch] = patches[:, r, c, ch]
    savemat(tmp_path / "p.mat", {"patches": columns})
    np.testing.assert_array_equal(load_stl_patches(tmp_path / "p.mat"), patches.reshape(5, -1))
    np.testing.assert_array_equal(load_stl_patches(tmp_path / "p.mat", 2),
                                  patches[:2].reshape(2, -1))
    with pytest.raises(DataError, match="192 x at least 6"):
        load_stl_patches(tmp_path / "p.mat", 6)
    with pytest.raises(DataError, match="linear decoder exercise"):
        load_stl_patches(tmp_path / "missing.mat")
