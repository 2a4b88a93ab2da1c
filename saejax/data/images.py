"""Natural-image sources: MATLAB IMAGES.mat, Olshausen's raw sparsenet files, skimage photographs."""

import functools
import logging
import re
from pathlib import Path

import numpy as np

from saejax.data.errors import DataError, check_finite
from saejax.data.whiten import whiten_images

logger = logging.getLogger(__name__)

SPARSENET_SIDE = 512
_SPARSENET_BYTES = SPARSENET_SIDE * SPARSENET_SIDE * 4  # big-endian float32 pixels
_SPARSENET_NAME = re.compile(r"image(\d+)")

# Photographs stored inside the scikit-image wheel itself (skimage/data/), so reading them never
# touches the network; most other skimage.data images are fetched with pooch on first use.
# These are the natural-looking scenes and textures; drawings, micrographs and text are left out.
_GRAY_FILES = ("camera.png", "grass.png", "gravel.png", "brick.png", "moon.png")
_COLOR_FILES = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg")
# The colour photographs for UFLDL's linear decoder: the four above, the left view of
# skimage's stereo motorcycle, and the two photographs inside scikit-learn's wheel.
_COLOR_PHOTOS = (*(("skimage", name) for name in _COLOR_FILES),
                 ("skimage", "motorcycle_left.png"), ("sklearn", "china.jpg"),
                 ("sklearn", "flower.jpg"))
# UFLDL's colour patches come from STL-10's 96 x 96 images, in which an 8 x 8 patch spans a
# twelfth of the scene. At their full 300-640 pixels the photographs above are smooth at that
# scale: patches are mostly flat colour, and two thirds of the linear decoder's features
# learned flat colour squares. Scaled so the shorter side is 96 pixels, as STL-10's, two thirds
# of the features are edges and blobs (measured: 33-34% at full size, 66% at 96, 69% at 64).
COLOR_SHORT_SIDE = 96


def load_stl_patches(path: str | Path, count: int | None = None) -> np.ndarray:
    """The colour patches of UFLDL's stlSampledPatches.mat (its ``patches``, 192 x 100,000,
    each column an 8x8x3 patch in MATLAB's column-major order, scaled to [0, 1]) as rows
    flattened row-major over (8, 8, 3), as ``sample_patches`` flattens colour patches; the
    first ``count`` of them (None: all).

    Raises:
      DataError: a missing file, no ``patches`` of 192 rows, or fewer patches than ``count``.
    """
    from scipy.io import loadmat

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist: stlSampledPatches.mat comes with UFLDL's "
                        "linear decoder exercise (stl10_patches_100k.zip).")
    p = np.asarray(loadmat(path).get("patches", np.zeros((0, 0))), np.float64)
    count = p.shape[1] if count is None else count
    if p.shape[0] != 192 or p.shape[1] < count:
        raise DataError(f"{path}: expected patches of 192 x at least {count}, got {p.shape}.")
    p = p[:, :count].T.reshape(-1, 3, 8, 8).transpose(0, 3, 2, 1)
    return p.reshape(len(p), -1)


def load_images_mat(path: str | Path, variable: str = "IMAGES") -> np.ndarray:
    """Loads images from a MATLAB (v5 or earlier) .mat file such as UFLDL's IMAGES.mat.

    Args:
      path: the .mat file.
      variable: name of the array in the file; it is stored H x W x K (the UFLDL layout) or H x W.

    Returns:
      float64 array (K, H, W); K = 1 for a 2-D variable.

    Raises:
      DataError: for a missing or unreadable file, a missing variable, a rank other than 2 or 3,
        or NaN/Inf pixels.
    """
    # Imported here so the rest of saejax.data works without loading scipy.io.
    import scipy.io

    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"{path}: no such file. Pass the path of a MATLAB .mat file holding {variable!r}."
        )
    try:
        contents = scipy.io.loadmat(path)
    except NotImplementedError:
        raise DataError(
            f"{path}: this is a MATLAB v7.3 (HDF5) file, which scipy cannot read. Re-save it in "
            "MATLAB with save(..., '-v7')."
        ) from None
    except Exception as err:
        # scipy raises assorted types (ValueError, IndexError, MatReadError) for non-MAT input.
        raise DataError(
            f"{path}: not a readable MATLAB .mat file ({type(err).__name__}: {err}). "
            "Pass a file saved by MATLAB or scipy.io.savemat."
        ) from err
    present = sorted(name for name in contents if not name.startswith("__"))
    if variable not in present:
        raise DataError(
            f"{path}: has no variable {variable!r}; the variables present are {present}. "
            "Pass variable=<one of those>."
        )
    data = contents[variable]
    if not np.issubdtype(data.dtype, np.number) or np.issubdtype(data.dtype, np.complexfloating):
        raise DataError(
            f"{path}: variable {variable!r} has dtype {data.dtype}, not real numbers. "
            "Store the images as a numeric array."
        )
    if data.ndim == 2:
        data = data[None]
    elif data.ndim == 3:
        data = np.transpose(data, (2, 0, 1))
    else:
        raise DataError(
            f"{path}: variable {variable!r} has shape {data.shape}; expected H x W x K "
            "(or H x W for one image). Store the images in that layout."
        )
    data = np.ascontiguousarray(data, dtype=np.float64)
    check_finite(data, f"{path} ({variable})")
    logger.info("loaded %d images of %dx%d from %s", *data.shape, path)
    return data


def load_sparsenet(directory: str | Path) -> np.ndarray:
    """Loads Olshausen & Field's whitened training images (the 1996 sparsenet trainset).

    Args:
      directory: folder holding image0, image1, ... (usually ten), each a 512x512 image stored as
        raw big-endian float32 in row-major order.

    Returns:
      float64 array (K, 512, 512).

    Raises:
      DataError: for a missing directory, no imageN files, a gap in the numbering, a file of the
        wrong size, or NaN/Inf pixels.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(
            f"{directory}: no such directory. Pass the folder holding the sparsenet files "
            "image0 ... image9."
        )
    found = {}
    for entry in directory.iterdir():
        match = _SPARSENET_NAME.fullmatch(entry.name)
        if match and entry.is_file():
            found[int(match.group(1))] = entry
    if not found:
        raise DataError(
            f"{directory}: no files named image0, image1, ... found. Pass the folder holding "
            "Olshausen's sparsenet trainset."
        )
    # A gap would silently drop images, so insist on image0 .. image{K-1}.
    missing = sorted(set(range(max(found) + 1)) - set(found))
    if missing:
        raise DataError(
            f"{directory}: image files are numbered up to image{max(found)} but "
            f"{['image' + str(i) for i in missing]} are missing. Restore them or remove the "
            "later ones."
        )
    images = np.empty((len(found), SPARSENET_SIDE, SPARSENET_SIDE), dtype=np.float64)
    for k in range(len(found)):
        path = found[k]
        size = path.stat().st_size
        if size != _SPARSENET_BYTES:
            raise DataError(
                f"{path}: expected {_SPARSENET_BYTES} bytes (512x512 big-endian float32), got "
                f"{size}. The file is truncated or not a sparsenet image; fetch it again."
            )
        pixels = np.fromfile(path, dtype=">f4").reshape(SPARSENET_SIDE, SPARSENET_SIDE)
        check_finite(pixels, str(path))
        images[k] = pixels
    logger.info("loaded %d sparsenet images from %s", len(found), directory)
    return images


def load_images(path: str | Path) -> np.ndarray:
    """Loads natural images, choosing the reader from what `path` is.

    Args:
      path: a .mat file (read with `load_images_mat`) or a directory holding image0 ...
        (read with `load_sparsenet`).

    Returns:
      float64 array (K, H, W).

    Raises:
      DataError: if `path` is neither, or the reader fails.
    """
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".mat":
        return load_images_mat(path)
    if path.is_dir() and (path / "image0").is_file():
        return load_sparsenet(path)
    what = "does not exist" if not path.exists() else "is not a recognized image source"
    raise DataError(
        f"{path}: {what}. Accepted formats: a MATLAB .mat file holding IMAGES (H x W x K), or a "
        "directory holding Olshausen's raw sparsenet files image0, image1, ..."
    )


def _skimage_data_dir() -> Path:
    import skimage.data

    return Path(skimage.data.__file__).parent


def _read_embedded(name: str) -> np.ndarray:
    import skimage.io

    path = _skimage_data_dir() / name
    if not path.is_file():
        raise DataError(
            f"{path}: not found in the installed scikit-image. Install a scikit-image wheel that "
            "ships its sample images (any release since 0.19 does)."
        )
    return skimage.io.imread(path)


@functools.lru_cache(maxsize=1)
def _embedded_gray() -> tuple[np.ndarray, ...]:
    from skimage.color import rgb2gray
    from skimage.util import img_as_float

    gray = [img_as_float(_read_embedded(name)) for name in _GRAY_FILES]
    gray += [rgb2gray(_read_embedded(name)) for name in _COLOR_FILES]
    for image in gray:
        image.flags.writeable = False
    return tuple(gray)


def embedded_raw_images() -> list[np.ndarray]:
    """The nine photographs of ``embedded_images`` before whitening: grayscale in [0, 1], as
    UFLDL's IMAGES_RAW.mat holds raw images for its PCA exercise. Fresh copies each call."""
    return [image.copy() for image in _embedded_gray()]


@functools.lru_cache(maxsize=4)
def _embedded_images(f0: float) -> tuple[np.ndarray, ...]:
    whitened = whiten_images(list(_embedded_gray()), f0=f0)
    for image in whitened:
        # Cached arrays are shared between callers; make accidental in-place edits fail loudly.
        image.flags.writeable = False
    logger.info("whitened %d embedded skimage photographs", len(whitened))
    return tuple(whitened)


def embedded_images(f0: float = 0.4) -> list[np.ndarray]:
    """Whitened grayscale photographs that ship inside scikit-image, so no download is needed.

    Nine images: camera, grass, gravel, brick, moon, and astronaut, coffee, chelsea, rocket
    converted to grayscale. They are whitened together by `whiten_images` (mean variance 0.1),
    giving a stand-in for IMAGES.mat when it is not at hand.

    Args:
      f0: roll-off frequency of the whitening filter in cycles/pixel.

    Returns:
      list of float64 arrays (H_k, W_k); sizes differ between images. Each call returns fresh
      copies, so callers may modify them.
    """
    return [image.copy() for image in _embedded_images(float(f0))]


def _read_sklearn_photo(name: str) -> np.ndarray:
    import skimage.io
    import sklearn.datasets

    path = Path(sklearn.datasets.__file__).parent / "images" / name
    if not path.is_file():
        raise DataError(f"{path}: not found in the installed scikit-learn. Install a "
                        "scikit-learn wheel that ships its sample images (load_sample_images).")
    return skimage.io.imread(path)


@functools.lru_cache(maxsize=4)
def _embedded_color_images(short_side: int | None) -> tuple[np.ndarray, ...]:
    from skimage.transform import rescale
    from skimage.util import img_as_float

    images = []
    for source, name in _COLOR_PHOTOS:
        image = img_as_float(_read_embedded(name) if source == "skimage"
                             else _read_sklearn_photo(name))[..., :3]
        if short_side is not None:
            image = np.clip(rescale(image, short_side / min(image.shape[:2]), channel_axis=2,
                                    anti_aliasing=True), 0.0, 1.0)
        image.flags.writeable = False
        images.append(image)
    return tuple(images)


def embedded_color_images(short_side: int | None = COLOR_SHORT_SIDE) -> list[np.ndarray]:
    """Colour photographs shipped inside scikit-image and scikit-learn, unwhitened.

    Args:
      short_side: each photograph is scaled (anti-aliased) so that its shorter side has this
        many pixels, as STL-10's 96 x 96 images (``COLOR_SHORT_SIDE``); None keeps full size.

    Returns:
      list of float64 arrays (H_k, W_k, 3) with values in [0, 1]: astronaut, coffee, chelsea,
      rocket, motorcycle (left view), china, flower. Each call returns fresh copies.
    """
    if short_side is not None and (isinstance(short_side, bool) or not isinstance(
            short_side, int) or short_side < 8):
        raise ValueError(f"short_side must be an int of at least 8 pixels or None, got "
                         f"{short_side!r}.")
    return [image.copy() for image in _embedded_color_images(short_side)]
