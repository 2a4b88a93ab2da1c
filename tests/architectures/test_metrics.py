"""The family's statistics (metrics.mean_l0, fvu, shrinkage, and architectures.stats, the family's
summary of trained params) on arrays small enough to work by hand."""

import jax.numpy as jnp
import numpy as np
import pytest

from saejax import architectures, metrics
from saejax.losses import Hyper


def test_mean_l0_by_hand():
    # Active (f > 0) per example: 1, then 2 -> mean 1.5.
    assert float(metrics.mean_l0(jnp.array([[0.0, 2.0], [1.0, 3.0]]))) == 1.5
    # 3 x 2: 0, 2, 1 active -> 3 / 3 = 1.
    assert float(metrics.mean_l0(jnp.array([[0.0, 0.0], [5.0, 0.5], [0.0, 1e-9]]))) == 1.0


def test_fvu_by_hand():
    # x = [[1, 0], [3, 2]]: column means [2, 1], total variance (1 + 1) + (1 + 1) = 4.
    # x_hat differs by 1 in one entry: residual 1, FVU 1 / 4.
    x = jnp.array([[1.0, 0.0], [3.0, 2.0]])
    assert float(metrics.fvu(x, jnp.array([[1.0, 1.0], [3.0, 2.0]]))) == 0.25
    # The mean itself as the reconstruction: FVU 1.
    assert float(metrics.fvu(x, jnp.array([[2.0, 1.0], [2.0, 1.0]]))) == 1.0
    assert float(metrics.fvu(x, x)) == 0.0


def test_shrinkage_by_hand():
    # ||x_k||: 5, 0 (left out), 10; ||x_hat_k||: 5, -, 5 -> ratios 1 and 0.5, mean 0.75.
    x = jnp.array([[3.0, 4.0], [0.0, 0.0], [6.0, 8.0]])
    x_hat = jnp.array([[0.0, 5.0], [1.0, 1.0], [3.0, 4.0]])
    np.testing.assert_allclose(metrics.shrinkage(x, x_hat), 0.75, rtol=1e-15)
    # One nonzero example: its ratio, divided by the one example (ratio 5 / 5 = 1).
    np.testing.assert_allclose(metrics.shrinkage(x[:2], x_hat[:2]), 1.0, rtol=1e-15)
    # No nonzero example: 0, not a division by zero.
    assert float(metrics.shrinkage(jnp.zeros((2, 2)), jnp.ones((2, 2)))) == 0.0


# A 2-3-2 network whose codes are read off: pre = x W1^T (b1 = b2 = 0), W2 the identity on the
# first two latents. x = [[1, -1], [3, 1]]:
#   pre = [[1, -1, 0], [3, 1, -4]]      (latent 3's weights are [-1, -1])
X = jnp.array([[1.0, -1.0], [3.0, 1.0]])
PARAMS = {"W1": jnp.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]), "b1": jnp.zeros(3),
          "W2": jnp.array([[1.0, 0.0, 5.0], [0.0, 1.0, 5.0]]), "b2": jnp.zeros(2)}


def test_relu_l1_stats_by_hand():
    # f = relu(pre) = [[1, 0, 0], [3, 1, 0]]; x_hat = [[1, 0], [3, 1]].
    got = architectures.stats(PARAMS, X, Hyper(0.01, 3.0, 0.0), "relu-l1")
    np.testing.assert_allclose(got["rho_hat"], [1.0, 0.5, 0.0], rtol=0)
    assert float(got["rho_hat_mean"]) == 0.5 and float(got["rho_hat_min"]) == 0.0
    assert float(got["rho_hat_max"]) == 1.0
    np.testing.assert_allclose(got["dead_fraction"], 1 / 3, rtol=1e-7)  # latent 3 never fires
    assert float(got["mean_l0"]) == 1.5  # 1 and 2 active
    # Residual: example 1 misses its -1 -> 1. Column means [2, 0]: total (1 + 1) + (1 + 1) = 4.
    np.testing.assert_allclose(got["fvu"], 0.25, rtol=1e-15)
    np.testing.assert_allclose(got["explained_variance"], 0.75, rtol=1e-15)
    # ||x_hat|| / ||x||: 1 / sqrt(2), then sqrt(10) / sqrt(10) = 1.
    np.testing.assert_allclose(got["shrinkage"], (1 / np.sqrt(2) + 1) / 2, rtol=1e-15)


def test_topk_stats_by_hand():
    # k = 1: f = [[1, 0, 0], [3, 0, 0]]; x_hat = [[1, 0], [3, 0]]; residual 1 + 1 = 2 -> FVU 0.5.
    got = architectures.stats(PARAMS, X, Hyper(0.01, 3.0, 0.0, k=1), "topk")
    np.testing.assert_allclose(got["rho_hat"], [1.0, 0.0, 0.0], rtol=0)
    np.testing.assert_allclose(got["dead_fraction"], 2 / 3, rtol=1e-7)
    assert float(got["mean_l0"]) == 1.0
    np.testing.assert_allclose(got["fvu"], 0.5, rtol=1e-15)
    # ||x_hat|| / ||x||: 1 / sqrt(2), then 3 / sqrt(10).
    np.testing.assert_allclose(got["shrinkage"], (1 / np.sqrt(2) + 3 / np.sqrt(10)) / 2,
                               rtol=1e-15)


@pytest.mark.parametrize("theta, want_l0", [(0.5, 1.5), (2.0, 0.5)])
def test_jumprelu_stats_by_hand(theta, want_l0):
    # theta 0.5 on every latent: the codes of relu-l1 above (1 > 0.5); theta 2: only the 3.
    params = {**PARAMS, "log_threshold": jnp.log(jnp.full(3, theta))}
    got = architectures.stats(params, X, Hyper(0.01, 3.0, 0.0), "jumprelu")
    assert float(got["mean_l0"]) == want_l0
