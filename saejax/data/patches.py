"""Random patch sampling from images and the UFLDL patch normalization (sampleIMAGES.m)."""

import logging
import operator
from collections.abc import Sequence

import numpy as np

from saejax.data.errors import DataError, check_finite

logger = logging.getLogger(__name__)

Images = np.ndarray | Sequence[np.ndarray]


def _positive_int(value, name: str) -> int:
    try:
        value = operator.index(value)
    except TypeError:
        raise DataError(f"{name} must be an integer, got {value!r}.") from None
    if value < 1:
        raise DataError(f"{name} must be at least 1, got {value}.")
    return value


def _as_image_list(images: Images) -> tuple[list[np.ndarray], tuple[int, ...]]:
    """Splits `images` into a list of (H, W) or (H, W, C) arrays.

    Returns the list and the trailing channel shape: () for grayscale, (C,) for colour.
    A stacked array is split into views, so nothing is copied.
    """
    if isinstance(images, np.ndarray):
        if images.ndim not in (3, 4):
            raise DataError(
                f"images: expected a stacked array of shape (K, H, W) or (K, H, W, C), got shape "
                f"{images.shape}. For a single 2-D image pass image[None]."
            )
        check_finite(images, "images")
        return [images[k] for k in range(images.shape[0])], images.shape[3:]

    image_list = [np.asarray(image) for image in images]
    if not image_list:
        raise DataError("images: got an empty sequence. Pass at least one image.")
    ndims = {image.ndim for image in image_list}
    if not ndims <= {2, 3} or len(ndims) != 1:
        shapes = [image.shape for image in image_list]
        raise DataError(
            f"images: expected all 2-D (H, W) grayscale or all 3-D (H, W, C) colour images, got "
            f"shapes {shapes}. Convert them to one kind first."
        )
    channels = {image.shape[2:] for image in image_list}
    if len(channels) != 1:
        raise DataError(
            f"images: colour images have differing channel counts {sorted(channels)}. "
            "Convert them to the same number of channels first."
        )
    for k, image in enumerate(image_list):
        check_finite(image, f"images[{k}]")
    return image_list, image_list[0].shape[2:]


def sample_patches(images: Images, num_patches: int, patch_size: int, seed) -> np.ndarray:
    """Samples square patches at random positions from random images.

    For each patch an image is drawn uniformly (not in proportion to its size), then a top-left
    corner uniformly among the positions where the patch fits. The draws come from
    `np.random.default_rng(seed)`, so the same seed gives the same patches.

    Args:
      images: a stacked array (K, H, W) or (K, H, W, C), or a sequence of (H_k, W_k) grayscale or
        (H_k, W_k, C) colour arrays whose sizes may differ.
      num_patches: how many patches to draw, at least 1.
      patch_size: side p of the square patch in pixels, at least 1.
      seed: anything `np.random.default_rng` accepts (an int, or a Generator).

    Returns:
      float64 array (num_patches, p*p) for grayscale or (num_patches, p*p*C) for colour; each row
      is one patch flattened row-major over (p, p) or (p, p, C).

    Raises:
      DataError: for bad counts or sizes, an image smaller than the patch, or NaN/Inf pixels.
    """
    num_patches = _positive_int(num_patches, "num_patches")
    p = _positive_int(patch_size, "patch_size")
    image_list, channel_shape = _as_image_list(images)
    for k, image in enumerate(image_list):
        if image.shape[0] < p or image.shape[1] < p:
            raise DataError(
                f"images[{k}] has shape {image.shape}, smaller than the {p}x{p} patch size. "
                "Use a smaller patch_size or drop the small images."
            )

    rng = np.random.default_rng(seed)
    heights = np.array([image.shape[0] for image in image_list])
    widths = np.array([image.shape[1] for image in image_list])
    which = rng.integers(0, len(image_list), size=num_patches)
    # `high` is exclusive, so the last corner that still fits (H - p) can be drawn.
    rows = rng.integers(0, heights[which] - p + 1)
    cols = rng.integers(0, widths[which] - p + 1)

    out = np.empty((num_patches, p, p, *channel_shape), dtype=np.float64)
    offsets = np.arange(p)
    # One fancy-indexing gather per image rather than a Python loop per patch.
    for k in np.unique(which):
        sel = np.flatnonzero(which == k)
        r = rows[sel, None, None] + offsets[None, :, None]
        c = cols[sel, None, None] + offsets[None, None, :]
        out[sel] = image_list[k][r, c]
    logger.debug("sampled %d patches of %dx%d from %d images", num_patches, p, p, len(image_list))
    return out.reshape(num_patches, -1)


def normalize_patches(patches: np.ndarray) -> np.ndarray:
    """Normalizes patches exactly as UFLDL sampleIMAGES.m normalizeData does.

    Each patch loses its own mean; values are clipped to +-3 standard deviations of all the
    resulting data (ddof=1, as MATLAB's std) and scaled to [-1, 1]; then mapped to [0.1, 0.9]
    so they suit the sigmoid output units of the autoencoder.

    Args:
      patches: array (m, n), one patch per row.

    Returns:
      float64 array (m, n) with values in [0.1, 0.9].

    Raises:
      DataError: if `patches` is not 2-D, holds NaN/Inf, or every patch is constant.
    """
    patches = np.asarray(patches, dtype=np.float64)
    if patches.ndim != 2 or patches.size < 2:
        raise DataError(
            f"patches: expected a 2-D array (num_patches, patch_dim) with at least 2 values, got "
            f"shape {patches.shape}."
        )
    check_finite(patches, "patches")
    centred = patches - patches.mean(axis=1, keepdims=True)
    pstd = 3.0 * centred.std(ddof=1)
    if not pstd > 0:
        raise DataError(
            "patches: every patch is constant, so there is no contrast to normalize. "
            "Sample from images that have texture."
        )
    scaled = np.clip(centred, -pstd, pstd) / pstd
    return (scaled + 1.0) * 0.4 + 0.1


def ufldl_patches(
    images: Images, num_patches: int = 10000, patch_size: int = 8, seed=0
) -> np.ndarray:
    """Samples and normalizes patches as the UFLDL sparse autoencoder exercise does.

    Args:
      images: as for `sample_patches`; the exercise uses ten whitened 512x512 images.
      num_patches: how many patches (the exercise uses 10000).
      patch_size: patch side p (the exercise uses 8).
      seed: seed for `np.random.default_rng`.

    Returns:
      float64 array (num_patches, p*p) (times C for colour) with values in [0.1, 0.9].
    """
    return normalize_patches(sample_patches(images, num_patches, patch_size, seed))
