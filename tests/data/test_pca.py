"""data.pca: pca_gen's PCA, PCA whitening and ZCA whitening against NumPy's SVD and their
covariances, as the exercise checks them."""

import numpy as np
import pytest

from saejax.data import PCA, ZCA, DataError, whitening_scale, zero_mean_patches


def patches(m=2000, n=16, seed=0):
    """Correlated data: smooth 4x4 'patches', each zero-meaned by its own mean."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(n, n)) * np.exp(-np.arange(n) / 4.0)[None, :]
    return zero_mean_patches(rng.normal(size=(m, n)) @ mix.T)


def cov(z):
    return z.T @ z / len(z)


def test_zero_mean_patches_subtracts_each_patchs_own_mean():
    x = np.arange(12.0).reshape(3, 4) ** 2
    np.testing.assert_allclose(zero_mean_patches(x), x - x.mean(axis=1)[:, None])
    np.testing.assert_allclose(zero_mean_patches(x).mean(axis=1), 0.0, atol=1e-12)


def test_the_components_are_the_svd_of_sigma_as_pca_gen_takes_it():
    x = patches()
    pca = PCA.fit(x)
    u, s, _ = np.linalg.svd(x.T @ x / len(x))  # [U, S, V] = svd(sigma), columns of x
    np.testing.assert_allclose(pca.s, np.clip(s, 0, None), rtol=1e-10, atol=1e-12)
    big = s > 1e-8 * s[0]
    # each eigenvector up to its sign
    dots = np.abs(np.sum(pca.U[:, big] * u[:, big], axis=0))
    np.testing.assert_allclose(dots, 1.0, atol=1e-8)
    assert np.all(np.diff(pca.s) <= 0)


def test_x_rot_has_a_diagonal_covariance_of_the_eigenvalues():
    x = patches()
    pca = PCA.fit(x)
    np.testing.assert_allclose(cov(pca.rotate(x)), np.diag(pca.s), atol=1e-12)


@pytest.mark.parametrize("retained, k", [(0.4, 1), (0.5, 2), (0.7, 2), (0.9, 3), (0.91, 4),
                                         (0.99, 4), (1.0, 4)])
def test_components_for_a_share_of_the_variance_by_hand(retained, k):
    # eigenvalues 4, 3, 2, 1 of 10: the leading ones keep 40%, 70%, 90%, 100%
    pca = PCA(U=np.eye(4), s=np.array([4.0, 3.0, 2.0, 1.0]))
    assert pca.components_for(retained) == k


def test_dimension_reduction_projects_and_recovers():
    x = patches()
    pca = PCA.fit(x)
    np.testing.assert_allclose(pca.recover(pca.rotate(x)), x, atol=1e-12)
    k = pca.components_for(0.9)
    x_hat = pca.recover(pca.rotate(x, k))
    # the residual is orthogonal to the kept components, and its variance is what was dropped
    np.testing.assert_allclose(pca.rotate(x - x_hat, k), 0.0, atol=1e-10)
    np.testing.assert_allclose(np.sum((x - x_hat) ** 2) / len(x), np.sum(pca.s[k:]), rtol=1e-8)


def test_pca_whitening_gives_the_identity_and_regularization_shrinks_it():
    x = patches()
    pca = PCA.fit(x)
    k = pca.components_for(0.99)
    np.testing.assert_allclose(cov(pca.white(x, 0.0, k)), np.eye(k), atol=1e-10)
    eps = 0.1
    np.testing.assert_allclose(cov(pca.white(x, eps)), np.diag(pca.s / (pca.s + eps)),
                               atol=1e-12)


def test_zca_whitening_has_the_square_root():
    # ZCA = U diag(1/sqrt(s + eps)) U^T: the whitened covariance is U diag(s/(s+eps)) U^T, and
    # the identity for eps = 0 on full-rank data. A port's 1/(s + eps) fails both.
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3000, 6)) @ rng.normal(size=(6, 6))
    pca = PCA.fit(x)
    np.testing.assert_allclose(cov(pca.zca(x, 0.0)), np.eye(6), atol=1e-10)
    eps = 0.5
    want = (pca.U * (pca.s / (pca.s + eps))) @ pca.U.T
    np.testing.assert_allclose(cov(pca.zca(x, eps)), want, atol=1e-12)
    wrong = x @ ((pca.U / (pca.s + eps)) @ pca.U.T)
    assert np.max(np.abs(cov(wrong) - want)) > 1e-3
    np.testing.assert_allclose(whitening_scale([4.0, 1.0], 0.0), [0.5, 1.0])


def test_zca_class_and_pca_share_the_whitening_rule():
    x = patches(n=9)
    x = x + np.random.default_rng(1).normal(size=x.shape)  # full rank
    eps = 0.1
    zca = ZCA.fit(x, eps)
    pca = PCA.fit(x - x.mean(axis=0))  # ZCA removes each feature's mean first
    np.testing.assert_allclose(zca.apply(x), pca.zca(x - x.mean(axis=0), eps), atol=1e-10)


def test_bad_input_is_refused_by_name():
    with pytest.raises(DataError, match="shape"):
        PCA.fit(np.ones(5))
    with pytest.raises(DataError, match=r"^PCA\.fit data: found 1 NaN"):
        PCA.fit(np.array([[1.0, np.nan], [0.0, 1.0]]))
    pca = PCA.fit(patches())
    for retained in (1.5, 0.0, -0.5):  # a share in (0, 1]: none of the variance is no share
        with pytest.raises(DataError, match="retained"):
            pca.components_for(retained)
    assert pca.components_for(1.0) == 15  # all of it: the 16th eigenvalue is 0
    with pytest.raises(DataError, match="k must be"):
        pca.rotate(patches(), 17)
    with pytest.raises(DataError, match="epsilon must be finite and >= 0"):
        pca.white(patches(), -1.0)
    # zero-meaned patches lose one direction: whitening all of it with epsilon 0 divides by 0
    with pytest.raises(DataError, match="zero eigenvalue"):
        pca.white(patches(), 0.0)


def test_zca_of_rank_deficient_data_needs_and_takes_a_positive_epsilon():
    # zero-meaned patches: one eigenvalue is 0, so epsilon 0 is refused, and any epsilon > 0
    # gives U diag(1/sqrt(s + eps)) U^T, whose whitened covariance is U diag(s/(s+eps)) U^T
    x = patches(m=500, n=9)
    pca = PCA.fit(x)
    assert pca.s[-1] == 0.0 and pca.s[-2] > 0
    with pytest.raises(DataError, match="zero eigenvalue"):
        pca.zca(x, 0.0)
    for eps in (1e-3, 0.5):
        np.testing.assert_allclose(pca.zca_matrix(eps),
                                   (pca.U / np.sqrt(pca.s + eps)) @ pca.U.T, atol=1e-12)
        np.testing.assert_allclose(cov(pca.zca(x, eps)), (pca.U * (pca.s / (pca.s + eps)))
                                   @ pca.U.T, atol=1e-10)


def test_float32_and_integer_data_are_worked_in_float64():
    # the eigendecomposition of float32 data in float32 would keep about 7 digits
    x32 = patches(m=300, n=8).astype(np.float32)
    x64 = x32.astype(np.float64)
    assert zero_mean_patches(x32).dtype == np.float64
    np.testing.assert_array_equal(zero_mean_patches(x32), x64 - x64.mean(axis=1, keepdims=True))
    pixels = np.arange(12, dtype=np.uint8).reshape(3, 4) ** 2  # uint8 pixels, means not whole
    np.testing.assert_array_equal(zero_mean_patches(pixels),
                                  pixels - pixels.mean(axis=1, keepdims=True))
    got, want = PCA.fit(x32), PCA.fit(x64)
    assert got.s.dtype == np.float64 and got.U.dtype == np.float64
    np.testing.assert_allclose(got.s, want.s, rtol=1e-12, atol=1e-12 * want.s[0])
    np.testing.assert_allclose(np.abs(got.U.T @ want.U), np.eye(8), atol=1e-9)


def test_one_example_has_one_component():
    x = np.array([[3.0, 4.0, 0.0]])  # sigma = x^T x: rank one, eigenvalue ||x||^2 = 25
    pca = PCA.fit(x)
    np.testing.assert_allclose(pca.s, [25.0, 0.0, 0.0], atol=1e-13)
    np.testing.assert_allclose(np.abs(pca.U[:, 0]), [0.6, 0.8, 0.0], atol=1e-13)
    assert pca.components_for(0.99) == 1


def test_eigenvalues_below_rounding_of_the_largest_are_zero():
    # Hadamard columns are exactly orthogonal, and the powers of two keep sigma exact:
    # diag(2^20, 1, 2^-40). 2^-40 is below rounding of the largest, 3 * 2^20 * eps = 3 * 2^-32,
    # though not below rounding of the second, 3 * eps: it is 0, and 1 is kept
    hadamard = np.array([[1, 1, 1], [1, -1, 1], [1, 1, -1], [1, -1, -1]], dtype=np.float64)
    x = hadamard * np.array([2.0 ** 10, 1.0, 2.0 ** -20])
    np.testing.assert_array_equal(PCA.fit(x).s, [2.0 ** 20, 1.0, 0.0])
    x[:, 2] = hadamard[:, 2] * 2.0 ** -8  # variance 2^-16, far above rounding: kept
    np.testing.assert_array_equal(PCA.fit(x).s, [2.0 ** 20, 1.0, 2.0 ** -16])


def test_no_variance_a_wrong_width_nan_and_a_missing_epsilon_are_refused_by_name():
    with pytest.raises(DataError, match="no variance .*every eigenvalue is 0"):
        PCA.fit(np.zeros((5, 4))).components_for(0.9)  # 0 / 0: no share to keep
    pca = PCA.fit(patches(m=100, n=6))
    with pytest.raises(DataError, match=r"^PCA\.rotate: data has width 4 .*width 6"):
        pca.rotate(np.zeros((3, 4)))
    with pytest.raises(DataError, match=r"^PCA\.rotate data: found 2 NaN"):
        pca.rotate(np.where(np.eye(3, 6) == 1, np.nan, 0.0)[:2])
    with pytest.raises(DataError, match=r"^PCA\.zca: data has width 4"):
        pca.zca(np.zeros((3, 4)), 0.1)
    rule = "epsilon must be finite and >= 0"
    with pytest.raises(DataError, match=rf"PCA\.white: {rule} .*got None"):
        pca.white(patches(m=100, n=6), None)
    for bad in (float("nan"), float("inf")):  # inf would whiten everything to 0
        with pytest.raises(DataError, match=rf"PCA\.zca_matrix: {rule} .*got {bad}"):
            pca.zca_matrix(bad)
    with pytest.raises(DataError, match=rf"whitening_scale: {rule} .*got -2"):
        whitening_scale(np.ones(3), -2)
    np.testing.assert_allclose(whitening_scale(np.ones(2), np.array([0.0, 3.0])), [1.0, 0.5])


def test_zero_mean_patches_needs_patches_as_rows():
    with pytest.raises(DataError, match=r"got shape \(5,\)\. Pass a single patch as "
                                        r"patch\[None, :\]"):
        zero_mean_patches(np.arange(5.0))
