"""DataError, the one exception the data loaders raise, and a finiteness check."""

import numpy as np


class DataError(ValueError):
    """Input data is missing, malformed or unusable.

    Messages name the file (when there is one), say what is wrong, and say what to do about it.
    Subclassing ValueError lets callers that already catch ValueError keep working.
    """


def check_finite(array: np.ndarray, source: str) -> None:
    """Raise DataError if `array` holds NaN or Inf.

    Args:
      array: any numeric array.
      source: where the array came from (a file path or a description), used in the message.

    Raises:
      DataError: naming the source and how many NaN and Inf values were found.
    """
    array = np.asarray(array)
    # Integer and boolean arrays cannot hold NaN/Inf; skipping them also avoids a needless copy.
    if not np.issubdtype(array.dtype, np.inexact):
        return
    finite = np.isfinite(array)
    if finite.all():
        return
    num_nan = int(np.isnan(array).sum())
    num_inf = int(array.size - finite.sum()) - num_nan
    raise DataError(
        f"{source}: found {num_nan} NaN and {num_inf} Inf values out of {array.size}. "
        "Clean or regenerate the data; the training code needs finite inputs."
    )
