"""PCA, PCA whitening and ZCA whitening as UFLDL's pca_gen exercise does them.

The exercise (UFLDL wiki, "Exercise:PCA and Whitening", pca_gen.m) takes 10,000 12x12 patches
of raw natural images as the columns of x, zero-means each patch by its own mean pixel value,
and then, with sigma = x x^T / m and its eigendecomposition U diag(s) U^T (s descending):

    x_rot        = U^T x                                   covariance diag(s)
    k            = the fewest components keeping 99% of sum(s)
    x_tilde      = U_k^T x,  x_hat = U_k x_tilde           dimension reduced, and back
    x_PCAwhite   = diag(1 / sqrt(s + epsilon)) U^T x       covariance diag(s / (s + epsilon))
    x_ZCAwhite   = U x_PCAwhite                            epsilon = 0.1

Here examples are rows (x is (m, n)), so every product above appears transposed. With
epsilon = 0 the PCA-whitened covariance is the identity. Whitening's scale
1 / sqrt(s + epsilon) is ``whiten.whitening_scale``, shared with ``whiten.ZCA``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from saejax.data.errors import DataError, check_finite
from saejax.data.whiten import (
    check_epsilon,
    check_fitted_width,
    whitening_scale,
    zero_below_rounding,
)


def zero_mean_patches(x: np.ndarray) -> np.ndarray:
    """Each example (row) minus its own mean: pca_gen's Step 0b, one mean per patch."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] < 1:
        raise DataError(f"zero_mean_patches: expected patches (num_patches, patch_dim), one per "
                        f"row, got shape {x.shape}. Pass a single patch as patch[None, :].")
    return x - x.mean(axis=1, keepdims=True)


@dataclasses.dataclass(frozen=True, eq=False)
class PCA:
    """The principal components of data, as pca_gen computes them: the eigendecomposition of
    sigma = x^T x / m (no further mean removal), eigenvalues descending.

    Attributes:
      U: (n, n) eigenvectors, one component per column, in the order of ``s``.
      s: (n,) eigenvalues of sigma, descending; those within rounding of 0 set to 0.
    """

    U: np.ndarray
    s: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> PCA:
        """PCA of ``x`` (m, n), one example per row, already zero-meaned as the caller wants.

        Raises:
          DataError: if ``x`` is not 2-D with at least one row, or holds NaN/Inf.
        """
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
            raise DataError(f"PCA.fit: expected data of shape (num_examples, num_features), "
                            f"got {x.shape}.")
        check_finite(x, "PCA.fit data")
        s, u = np.linalg.eigh(x.T @ x / x.shape[0])
        order = np.argsort(s)[::-1]
        # eigenvalues within rounding of 0 are 0 (the constant patch after each patch's mean
        # removal): whitening must not divide by them
        return cls(U=u[:, order], s=zero_below_rounding(s[order], x.shape[1]))

    def components_for(self, retained: float = 0.99) -> int:
        """The fewest leading components whose eigenvalues sum to at least ``retained`` of the
        total (pca_gen's Step 2: 99%)."""
        if not 0.0 < retained <= 1.0:
            raise DataError(f"retained must be a fraction in (0, 1], got {retained}.")
        if not np.sum(self.s) > 0:
            raise DataError("components_for: the data have no variance (every eigenvalue is "
                            "0), so no share of it can be kept. Fit the PCA on data that vary "
                            "(zero_mean_patches turns constant patches into zeros).")
        kept = np.cumsum(self.s) / np.sum(self.s)
        return int(np.searchsorted(kept, retained * (1 - 1e-12)) + 1)

    def _width(self, k):
        n = self.s.size
        k = n if k is None else int(k)
        if not 1 <= k <= n:
            raise DataError(f"k must be a component count in 1..{n}, got {k}.")
        return k

    def rotate(self, x: np.ndarray, k: int | None = None) -> np.ndarray:
        """x in the basis of the components: x_rot (all n), or x_tilde (the first ``k``)."""
        x = check_fitted_width(x, self.s.size, "PCA.rotate")
        return x @ self.U[:, :self._width(k)]

    def recover(self, x_tilde: np.ndarray) -> np.ndarray:
        """x_hat: ``x_tilde`` (m, k) back in the n-dimensional space."""
        x_tilde = np.asarray(x_tilde, dtype=np.float64)
        return x_tilde @ self.U[:, :self._width(x_tilde.shape[-1])].T

    def white(self, x: np.ndarray, epsilon: float, k: int | None = None) -> np.ndarray:
        """x_PCAwhite: the first ``k`` (default all) rotated components, each scaled by
        1 / sqrt(s + epsilon)."""
        check_epsilon(epsilon, "PCA.white")
        k = self._width(k)
        if epsilon == 0 and not np.all(self.s[:k] > 0):
            raise DataError("PCA whitening with epsilon = 0 divides by a zero eigenvalue: keep "
                            "fewer components (k) or use epsilon > 0.")
        return self.rotate(x, k) * whitening_scale(self.s[:k], epsilon)[None, :]

    def zca_matrix(self, epsilon: float) -> np.ndarray:
        """U diag(1 / sqrt(s + epsilon)) U^T, symmetric: ZCA whitening as one matrix (the V
        that the newer tutorial's zca2 returns, and that RICA's filters are multiplied by)."""
        check_epsilon(epsilon, "PCA.zca_matrix")
        if epsilon == 0 and not np.all(self.s > 0):
            raise DataError("ZCA whitening with epsilon = 0 divides by a zero eigenvalue: use "
                            "epsilon > 0.")
        return (self.U * whitening_scale(self.s, epsilon)[None, :]) @ self.U.T

    def zca(self, x: np.ndarray, epsilon: float) -> np.ndarray:
        """x_ZCAwhite = U x_PCAwhite: whitened, and rotated back to the pixels' own axes."""
        x = check_fitted_width(x, self.s.size, "PCA.zca")
        return x @ self.zca_matrix(epsilon)
