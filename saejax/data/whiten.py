"""Whitening: Olshausen & Field's zero-phase 1/f filter for images and ZCA for patch vectors."""

import dataclasses
import logging
from collections.abc import Sequence

import numpy as np

from saejax.data.errors import DataError, check_finite

logger = logging.getLogger(__name__)


def whitening_filter(shape: tuple[int, int], f0: float = 0.4) -> np.ndarray:
    """The frequency response f * exp(-(f / f0)**4) on the unshifted FFT grid of an image.

    The ramp f undoes the roughly 1/f amplitude spectrum of natural images; the exp(-(f/f0)^4)
    roll-off stops the ramp from amplifying the noise and aliasing near the Nyquist frequency.

    Args:
      shape: (H, W) of the image.
      f0: roll-off frequency in cycles/pixel (Olshausen & Field use 0.4).

    Returns:
      float64 array (H, W), laid out as `np.fft.fft2` orders frequencies.
    """
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.fftfreq(shape[1])[None, :]
    f = np.sqrt(fx**2 + fy**2)
    return f * np.exp(-((f / f0) ** 4))


def whiten_image(image: np.ndarray, f0: float = 0.4) -> np.ndarray:
    """Whitens one grayscale image with Olshausen & Field's zero-phase filter.

    Args:
      image: array (H, W); H and W need not be equal.
      f0: roll-off frequency in cycles/pixel.

    Returns:
      float64 array (H, W), the real part of ifft2(fft2(image - mean) * filter).

    Raises:
      DataError: if `image` is not 2-D, is empty, or holds NaN/Inf.
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2 or image.size == 0:
        raise DataError(
            f"image: expected a non-empty 2-D grayscale array (H, W), got shape {image.shape}. "
            "Convert colour images to grayscale first."
        )
    if not f0 > 0:
        raise DataError(f"f0 must be a positive frequency in cycles/pixel, got {f0}.")
    check_finite(image, "image")
    spectrum = np.fft.fft2(image - image.mean())
    # The filter is real and even in frequency, so the output is real up to rounding error.
    return np.real(np.fft.ifft2(spectrum * whitening_filter(image.shape, f0)))


def whiten_images(
    images: np.ndarray | Sequence[np.ndarray], f0: float = 0.4, variance: float = 0.1
) -> list[np.ndarray]:
    """Whitens each image, then scales them all by one factor to a mean variance of `variance`.

    Follows Olshausen's IMAGES = sqrt(0.1) * IMAGES / sqrt(mean(var(IMAGES))): a single shared
    factor keeps the relative contrast between images, and var uses ddof=1 as MATLAB's does.

    Args:
      images: a stacked array (K, H, W) or a sequence of (H_k, W_k) arrays of differing sizes.
      f0: roll-off frequency in cycles/pixel.
      variance: target mean over images of the per-image pixel variance.

    Returns:
      list of K float64 arrays, the k-th of shape (H_k, W_k).

    Raises:
      DataError: for an empty input, a non-2-D image, NaN/Inf, or images with no contrast.
    """
    if len(images) == 0:
        raise DataError("images: got no images to whiten. Pass at least one 2-D image.")
    whitened = []
    for k, image in enumerate(images):
        try:
            whitened.append(whiten_image(image, f0))
        except DataError as err:
            raise DataError(f"images[{k}]: {err}") from None
    mean_var = np.mean([w.var(ddof=1) if w.size > 1 else 0.0 for w in whitened])
    if not mean_var > 0:
        raise DataError(
            "images: the whitened images have zero variance (constant images?). "
            "Pass images with some texture."
        )
    scale = np.sqrt(variance / mean_var)
    return [w * scale for w in whitened]


def check_epsilon(epsilon, where: str) -> None:
    """Raises DataError unless ``epsilon``, whitening's regularizer (a number, or one per
    component), is finite and >= 0."""
    value = np.asarray(epsilon if epsilon is not None else np.nan)
    if value.dtype.kind not in "iuf" or not np.all(np.isfinite(value) & (value >= 0)):
        raise DataError(f"{where}: epsilon must be finite and >= 0 (added to each eigenvalue; "
                        f"UFLDL uses 0.1 for image patches, 0 whitens exactly), got {epsilon!r}.")


def zero_below_rounding(s: np.ndarray, n: int) -> np.ndarray:
    """The covariance eigenvalues ``s`` of n-dimensional data, those within rounding of 0 set
    to 0: at most n eps times the largest (eigh leaves the null directions of a singular
    covariance, such as the constant patch after each patch's mean removal, at rounding noise,
    which whitening with epsilon = 0 would blow up instead of refusing)."""
    s = np.asarray(s, dtype=np.float64)
    return np.where(s > np.max(s) * n * np.finfo(s.dtype).eps, s, 0.0)


def whitening_scale(s: np.ndarray, epsilon: float) -> np.ndarray:
    """1 / sqrt(s + epsilon): what whitening multiplies the component of eigenvalue s by (PCA
    and ZCA whitening alike; the square root makes the whitened variance s / (s + epsilon),
    1 for epsilon = 0)."""
    check_epsilon(epsilon, "whitening_scale")
    return 1.0 / np.sqrt(np.asarray(s, dtype=np.float64) + epsilon)


def check_fitted_width(x, n: int, where: str) -> np.ndarray:
    """``x`` as float64 (m, n) or (n,) data, finite, for a transform fitted on width n."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim not in (1, 2) or x.shape[-1] != n:
        raise DataError(
            f"{where}: data has width {x.shape[-1] if x.ndim else 'none'} (shape "
            f"{x.shape}) but the transform was fitted on width {n}. Pass (m, {n}) data."
        )
    check_finite(x, f"{where} data")
    return x


@dataclasses.dataclass(frozen=True, eq=False)
class ZCA:
    """A fitted ZCA whitening transform, reusable on new data (UFLDL "PCA and Whitening").

    eq=False because element-wise array comparison has no single truth value.

    Attributes:
      mean: (n,) per-feature mean of the fitting data.
      W: (n, n) whitening matrix U diag(1/sqrt(S + epsilon)) U^T.
      W_inv: (n, n) its inverse U diag(sqrt(S + epsilon)) U^T.
      epsilon: the regularizer added to the eigenvalues.
    """

    mean: np.ndarray
    W: np.ndarray
    W_inv: np.ndarray
    epsilon: float

    @classmethod
    def fit(cls, x: np.ndarray, epsilon: float = 0.1) -> "ZCA":
        """Fits ZCA whitening to data.

        Args:
          x: array (m, n), one example per row.
          epsilon: added to each covariance eigenvalue; it keeps near-zero-variance directions
            from being blown up into noise (UFLDL uses 0.1 for normalized image patches).

        Returns:
          the fitted ZCA.

        Raises:
          DataError: if `x` is not 2-D with at least one row, holds NaN/Inf, epsilon < 0, or
            epsilon is 0 and the covariance is singular (an eigenvalue 0 to rounding).
        """
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
            raise DataError(
                f"ZCA.fit: expected data of shape (num_examples, num_features), got {x.shape}."
            )
        check_epsilon(epsilon, "ZCA.fit")
        check_finite(x, "ZCA.fit data")
        mean = x.mean(axis=0)
        centred = x - mean
        sigma = centred.T @ centred / x.shape[0]
        # eigh suits the symmetric sigma; rounding leaves the eigenvalues of its null
        # directions tiny, even negative, rather than 0: PCA.fit's rule zeroes them.
        s, u = np.linalg.eigh(sigma)
        s = zero_below_rounding(s, x.shape[1]) + epsilon
        if not np.all(s > 0):
            raise DataError(
                f"ZCA.fit: the data covariance is singular ({int(np.sum(s == 0))} of its "
                f"{s.size} eigenvalues are 0 to rounding) and epsilon is 0, so whitening would "
                "divide by zero. Use epsilon > 0, or drop the redundant features."
            )
        w = (u * whitening_scale(s, 0.0)) @ u.T  # epsilon is in s already
        w_inv = (u * np.sqrt(s)) @ u.T
        logger.debug("ZCA fitted on %d x %d data, epsilon=%g", *x.shape, epsilon)
        return cls(mean=mean, W=w, W_inv=w_inv, epsilon=float(epsilon))

    def _check(self, x: np.ndarray, what: str) -> np.ndarray:
        return check_fitted_width(x, self.mean.shape[0], f"ZCA.{what}")

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Whitens data.

        Args:
          x: array (m, n) or (n,).

        Returns:
          float64 array of the same shape, (x - mean) @ W.T.
        """
        x = self._check(x, "apply")
        return (x - self.mean) @ self.W.T

    def invert(self, z: np.ndarray) -> np.ndarray:
        """Undoes `apply`.

        Args:
          z: whitened array (m, n) or (n,).

        Returns:
          float64 array of the same shape, z @ W_inv.T + mean.
        """
        z = self._check(z, "invert")
        return z @ self.W_inv.T + self.mean
