"""data.whiten: the 1/f whitening filter on spectra and cosines, and ZCA against hand-worked values
and an eigendecomposition."""

import numpy as np
import pytest

from saejax.data import ZCA, DataError, whiten_image, whiten_images


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


def test_whiten_images_passes_its_roll_off_to_each_image():
    rng = np.random.default_rng(3)
    images = [rng.standard_normal((16, 20)), rng.standard_normal((12, 12))]
    plain = [whiten_image(im, f0=0.15) for im in images]
    scale = np.sqrt(0.1 / np.mean([w.var(ddof=1) for w in plain]))
    for got, want in zip(whiten_images(images, f0=0.15), plain, strict=True):
        np.testing.assert_allclose(got, want * scale, rtol=1e-12)


def test_images_without_contrast_or_a_roll_off_are_refused():
    with pytest.raises(DataError, match="zero variance"):
        whiten_images([np.full((8, 8), 2.0), np.ones((4, 6))])  # whitened: all zeros
    for f0 in (0.0, -0.4):
        with pytest.raises(DataError, match="f0 must be a positive frequency"):
            whiten_image(np.eye(4), f0=f0)
    with pytest.raises(DataError, match=r"^images\[1\]: image: found 1 NaN"):
        whiten_images([np.eye(4), np.array([[0.0, np.nan], [1.0, 1.0]])])


def test_zca_fit_logs_what_it_fitted(caplog):
    with caplog.at_level("DEBUG", logger="saejax.data.whiten"):
        ZCA.fit(np.random.default_rng(0).standard_normal((6, 3)), epsilon=0.25)
    assert caplog.messages == ["ZCA fitted on 6 x 3 data, epsilon=0.25"]


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
    with pytest.raises(DataError, match=r"^ZCA\.apply data: found 8 NaN"):
        zca.apply(np.full((2, 4), np.nan))
    with pytest.raises(DataError, match=r"^ZCA\.invert data: found 0 NaN and 1 Inf"):
        zca.invert(np.array([0.0, np.inf, 0.0, 0.0]))
    with pytest.raises(DataError, match=r"^ZCA\.fit data: found 20 NaN"):
        ZCA.fit(np.full((5, 4), np.nan))
    with pytest.raises(DataError, match="shape"):
        ZCA.fit(np.zeros(4))
    with pytest.raises(AttributeError):
        zca.epsilon = 1.0  # frozen: a fitted transform cannot drift


def numpy_zca(x, epsilon):
    """ZCA written out in NumPy: the centred covariance's eigenvectors, each direction scaled
    by 1 / sqrt(eigenvalue + epsilon)."""
    centred = x - x.mean(axis=0)
    s, u = np.linalg.eigh(centred.T @ centred / len(x))
    return (u / np.sqrt(s + epsilon)) @ u.T


def test_zca_refuses_a_singular_covariance_at_epsilon_zero_and_whitens_a_full_one():
    # a column that is the sum of two others: rank 3 of 4. eigh leaves the null direction's
    # eigenvalue at rounding noise, negative or positive as the draw falls (seed 4 positive:
    # 1/sqrt of it made a W of 1e7); PCA.fit's rule zeroes it in every draw
    for seed in range(8):
        x = np.random.default_rng(seed).normal(size=(50, 3))
        with pytest.raises(DataError, match=r"singular \(1 of its 4 eigenvalues .*epsilon > 0"):
            ZCA.fit(np.c_[x, x[:, 0] + x[:, 1]], 0.0)
    x = np.random.default_rng(0).normal(size=(50, 4)) @ np.triu(np.ones((4, 4)))  # full rank
    np.testing.assert_allclose(ZCA.fit(x, 0.0).W, numpy_zca(x, 0.0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ZCA.fit(x, 0.1).W, numpy_zca(x, 0.1), rtol=1e-9, atol=1e-12)
