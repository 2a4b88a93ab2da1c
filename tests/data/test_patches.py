"""data.patches: sampled patches are sub-windows that say where they came from, and the UFLDL
normalization against its formula and hand-worked values."""

import numpy as np
import pytest

from saejax.data import DataError, normalize_patches, sample_patches, ufldl_patches


def test_ufldl_patches_on_real_images(sparsenet_images):
    patches = ufldl_patches(sparsenet_images, num_patches=10000, patch_size=8, seed=0)
    assert patches.shape == (10000, 64)
    assert patches.min() >= 0.1 and patches.max() <= 0.9
    # After removing each patch's mean the data is symmetric about 0.5 on average.
    assert patches.mean() == pytest.approx(0.5, abs=0.01)


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
