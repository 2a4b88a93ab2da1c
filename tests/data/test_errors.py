"""data.errors: the finiteness check counts what it finds and names where."""

import numpy as np
import pytest

from saejax.data import DataError, check_finite


def test_check_finite_counts():
    check_finite(np.arange(5), "ints")  # integers cannot be NaN
    with pytest.raises(DataError, match=r"weights: found 2 NaN and 1 Inf values out of 6"):
        check_finite(np.array([1.0, np.nan, np.nan, -np.inf, 0.0, 2.0]), "weights")


def test_check_finite_passes_finite_and_non_float_arrays():
    check_finite(np.array([0.0, -1e308, 5e-324]), "extremes")
    check_finite(np.array([True, False]), "flags")
    check_finite([[1.5, 2.5]], "a list")  # any array-like


def test_check_finite_counts_inf_alone_and_in_float32():
    with pytest.raises(DataError, match=r"x\.npy: found 0 NaN and 2 Inf values out of 3\. "
                                        "Clean or regenerate"):
        check_finite(np.array([np.inf, 1.0, -np.inf], np.float32), "x.npy")


def test_a_data_error_is_a_value_error():
    with pytest.raises(ValueError):
        check_finite(np.array([np.nan]), "one")
