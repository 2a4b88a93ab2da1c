"""The sparse autoencoder as a Flax Linen module, for use inside larger Flax models.

Its variables are ``{"params": {"W1", "b1", "W2", "b2"}}``, the same dict as ``saejax.init_params``
returns, so ``saejax.loss(variables["params"], x, hyper)`` and ``module.apply(variables, x, hyper,
method=SparseAutoencoder.loss)`` are the same number.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from saejax import losses
from saejax.model import forward, mean_activation


def _ufldl_uniform(n_visible: int, n_hidden: int):
    """U[-r, r] with r = sqrt(6) / sqrt(n_visible + n_hidden + 1), as init_params."""
    r = math.sqrt(6.0) / math.sqrt(n_visible + n_hidden + 1)

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -r, r)

    return init


class SparseAutoencoder(nn.Module):
    """x (M, N) -> a2 = s(W1 x + b1) (M, H) -> a3 = s(W2 a2 + b2) (M, N).

    Attributes:
      n_visible: N, the input width.
      n_hidden: H, the number of hidden units.
      dtype: dtype of the parameters.
    """

    n_visible: int
    n_hidden: int
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        init = _ufldl_uniform(self.n_visible, self.n_hidden)
        h, n, dt = self.n_hidden, self.n_visible, self.dtype
        self.W1 = self.param("W1", init, (h, n), dt)
        self.b1 = self.param("b1", nn.initializers.zeros, (h,), dt)
        self.W2 = self.param("W2", init, (n, h), dt)
        self.b2 = self.param("b2", nn.initializers.zeros, (n,), dt)

    def _params(self) -> dict:
        return {"W1": self.W1, "b1": self.b1, "W2": self.W2, "b2": self.b2}

    def __call__(self, x_MxN):
        """Returns ``{"a2": (M, H), "a3": (M, N), "rho_hat": (H,)}``."""
        a2_MxH, a3_MxN = forward(self._params(), x_MxN)
        return {"a2": a2_MxH, "a3": a3_MxN, "rho_hat": mean_activation(a2_MxH)}

    def encode(self, x_MxN):
        """The hidden code a2 (M, H): the features to pass on to a larger model."""
        return forward(self._params(), x_MxN)[0]

    def loss(self, x_MxN, hyper: losses.Hyper, penalty: str = "kl"):
        """The sparse autoencoder objective J of ``saejax.loss`` with this module's params."""
        return losses.compute_terms(self._params(), x_MxN, hyper, penalty)["loss"]
