"""FVU, L0, the dead fraction and shrinkage equal NumPy written here, on random arrays of
asymmetric shape (an axis swap changes every answer) with values drawn where the thresholds
decide: codes exactly 0 and just above it, rho_hat exactly at, just below and just above
0.1 rho."""

import jax.numpy as jnp
import numpy as np
from helpers import property_settings
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from saejax import metrics

PROPERTY = property_settings(max_examples=25)
SHAPES = st.sampled_from([(3, 2), (2, 5), (4, 3)])  # (m, n): never square
# Magnitudes from 1e-3 up: XLA on CPU flushes subnormal numbers to zero, so a value whose square
# underflows (|v| < 1e-154) would measure XLA's arithmetic, not saejax's formulas.
VALUES = st.one_of(st.floats(1e-3, 10.0), st.floats(-10.0, -1e-3))


@PROPERTY
@given(data=st.data(), shape=SHAPES)
def test_fvu_is_numpy(data, shape):
    x = data.draw(arrays(np.float64, shape, elements=st.one_of(st.just(0.0), VALUES)))
    x_hat = data.draw(arrays(np.float64, shape, elements=st.one_of(st.just(0.0), VALUES)))
    total = np.sum((x - x.mean(axis=0)) ** 2)  # around each column's own mean
    assume(total > 1e-6)
    want = np.sum((x_hat - x) ** 2) / total
    np.testing.assert_allclose(metrics.fvu(jnp.asarray(x), jnp.asarray(x_hat)), want, rtol=1e-12)
    np.testing.assert_allclose(metrics.total_variance(jnp.asarray(x)), total, rtol=1e-12)
    np.testing.assert_allclose(metrics.explained_variance(jnp.asarray(x), jnp.asarray(x_hat)),
                               1.0 - want, rtol=1e-12, atol=1e-12)


@PROPERTY
@given(data=st.data(), shape=SHAPES)
def test_mean_l0_is_numpy(data, shape):
    # codes at 0 (either sign), at the smallest normal numbers of either sign, and ordinary ones
    f = data.draw(arrays(np.float64, shape, elements=st.one_of(
        st.just(0.0), st.just(-0.0), st.just(2.3e-308), st.just(-2.3e-308), VALUES)))
    want = np.count_nonzero(f > 0) / shape[0]  # per example: rows are examples
    assert float(metrics.mean_l0(jnp.asarray(f))) == want


@PROPERTY
@given(rho=st.floats(1e-4, 0.9999), data=st.data(), h=st.integers(1, 6))
def test_dead_fraction_is_numpy_at_the_threshold(rho, data, h):
    threshold = 0.1 * rho  # computed as saejax does: 0.1 * rho in float64
    near = st.sampled_from([threshold, np.nextafter(threshold, 0.0), np.nextafter(threshold, 1.0),
                            0.0, rho, 1.0])
    rho_hat = np.asarray(data.draw(st.lists(st.one_of(near, st.floats(0.0, 1.0)),
                                            min_size=h, max_size=h)))
    count = np.count_nonzero(rho_hat < threshold)  # dead: strictly below a tenth of rho
    got = float(metrics.dead_fraction(jnp.asarray(rho_hat), rho))
    # saejax's mean of booleans is a float32 that XLA takes as the count times a rounded 1/h
    # (5 of 6 comes out at 0.8333334, one step above float32(5/6)): the count is exact, its
    # share within two roundings of count/h
    assert round(got * h) == count
    np.testing.assert_allclose(got, count / h, rtol=2.0**-22, atol=0.0)


@PROPERTY
@given(data=st.data(), shape=SHAPES)
def test_shrinkage_is_numpy(data, shape):
    x = data.draw(arrays(np.float64, shape, elements=st.one_of(st.just(0.0), VALUES)))
    x_hat = data.draw(arrays(np.float64, shape, elements=VALUES))
    norm_x, norm_hat = np.linalg.norm(x, axis=1), np.linalg.norm(x_hat, axis=1)
    keep = norm_x > 0  # the examples with x_k != 0
    want = np.mean(norm_hat[keep] / norm_x[keep]) if keep.any() else 0.0
    np.testing.assert_allclose(metrics.shrinkage(jnp.asarray(x), jnp.asarray(x_hat)), want,
                               rtol=1e-12)
