"""Host-side data: image and digit loaders, arrays from files, patches, normalization, whitening."""

from saejax.data import normalize
from saejax.data.arrays import describe_array, file_sha256, is_array_spec, load_array
from saejax.data.datasets import (
    color_patches,
    config_data,
    data_of,
    detect_format,
    training_data,
    training_labels,
)
from saejax.data.errors import DataError, check_finite
from saejax.data.images import (
    embedded_color_images,
    embedded_images,
    embedded_raw_images,
    load_images,
    load_images_mat,
    load_sparsenet,
    load_stl_patches,
)
from saejax.data.mnist import load_digits, load_mnist
from saejax.data.patches import normalize_patches, sample_patches, ufldl_patches
from saejax.data.pca import PCA, zero_mean_patches
from saejax.data.stream import ActivationStream
from saejax.data.whiten import (
    ZCA,
    whiten_image,
    whiten_images,
    whitening_filter,
    whitening_scale,
)

__all__ = [
    "ActivationStream",
    "PCA",
    "ZCA",
    "DataError",
    "check_finite",
    "color_patches",
    "config_data",
    "data_of",
    "describe_array",
    "detect_format",
    "embedded_color_images",
    "embedded_images",
    "embedded_raw_images",
    "file_sha256",
    "is_array_spec",
    "load_array",
    "load_digits",
    "load_images",
    "load_images_mat",
    "load_mnist",
    "load_sparsenet",
    "load_stl_patches",
    "normalize",
    "normalize_patches",
    "sample_patches",
    "training_data",
    "training_labels",
    "ufldl_patches",
    "whiten_image",
    "whiten_images",
    "whitening_filter",
    "whitening_scale",
    "zero_mean_patches",
]
