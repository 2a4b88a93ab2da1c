"""The autoencoder's parameters, UFLDL initialization, and the forward pass.

Shapes use suffixes: M examples, N visible units, H hidden units.

    z2_MxH = x_MxN W1^T + b1      a2 = s(z2)       (hidden code)
    z3_MxN = a2 W2^T + b2         a3 = s(z3)       (reconstruction)

``params`` is a plain dict ``{"W1": (H, N), "b1": (H,), "W2": (N, H), "b2": (N,)}``;
``W1[i, j]`` is the notes' W^(1)_ij, the weight from visible unit j to hidden unit i.

Two variants, chosen by keyword arguments everywhere:
- ``decoder="linear"``: a3 = z3 = W2 a2 + b2 (UFLDL's linear decoder, for real-valued inputs
  such as ZCA-whitened patches); the default ``"sigmoid"`` is a3 = s(z3).
- ``tied=True``: W2 = W1^T; params then hold no "W2" (``{"W1", "b1", "b2"}``).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

PARAM_KEYS = ("W1", "b1", "W2", "b2")
TIED_PARAM_KEYS = ("W1", "b1", "b2")


def param_keys(tied: bool = False) -> tuple:
    """The keys of a params dict: without "W2" when the weights are tied."""
    return TIED_PARAM_KEYS if tied else PARAM_KEYS


def decoder_weights(params: dict, tied: bool = False):
    """W2, shape (N, H): params["W2"], or W1^T when the weights are tied."""
    return params["W1"].T if tied else params["W2"]


def init_params(
    key: jax.Array, n_visible: int, n_hidden: int, dtype=jnp.float32, tied: bool = False
) -> dict:
    """UFLDL's initialization (initializeParameters.m).

    W1 and W2 are uniform on [-r, r] with r = sqrt(6) / sqrt(n_visible + n_hidden + 1),
    which keeps the sigmoids in their linear range at the start; the biases are zero.

    Args:
      key: a ``jax.random`` key.
      n_visible: N, the input (and output) width.
      n_hidden: H, the number of hidden units.
      dtype: floating dtype of every leaf (float64 needs ``jax_enable_x64``).
      tied: leave W2 out (the decoder uses W1^T).

    Returns:
      ``{"W1": (H, N), "b1": (H,), "W2": (N, H), "b2": (N,)}``, without "W2" when tied.
    """
    if int(n_visible) < 1 or int(n_hidden) < 1:
        raise ValueError(
            f"n_visible and n_hidden must be positive integers, got {n_visible} and {n_hidden}."
        )
    r = math.sqrt(6.0) / math.sqrt(n_visible + n_hidden + 1)
    k1, k2 = jax.random.split(key)
    params = {
        "W1": jax.random.uniform(k1, (n_hidden, n_visible), dtype, -r, r),
        "b1": jnp.zeros((n_hidden,), dtype),
        "W2": jax.random.uniform(k2, (n_visible, n_hidden), dtype, -r, r),
        "b2": jnp.zeros((n_visible,), dtype),
    }
    if tied:
        del params["W2"]
    return params


def encode(params: dict, x_MxN: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Hidden layer: returns ``(z2_MxH, a2_MxH)`` with a2 = s(W1 x + b1)."""
    z2_MxH = x_MxN @ params["W1"].T + params["b1"][None, :]
    return z2_MxH, jax.nn.sigmoid(z2_MxH)


def decode(
    params: dict, a2_MxH: jax.Array, decoder: str = "sigmoid", tied: bool = False
) -> tuple[jax.Array, jax.Array]:
    """Output layer: returns ``(z3_MxN, a3_MxN)`` with a3 = s(W2 a2 + b2), or z3 if linear."""
    z3_MxN = a2_MxH @ decoder_weights(params, tied).T + params["b2"][None, :]
    return z3_MxN, (z3_MxN if decoder == "linear" else jax.nn.sigmoid(z3_MxN))


def forward(
    params: dict, x_MxN: jax.Array, decoder: str = "sigmoid", tied: bool = False
) -> tuple[jax.Array, jax.Array]:
    """The whole network: returns ``(a2_MxH, a3_MxN)`` for inputs ``x_MxN``."""
    _, a2_MxH = encode(params, x_MxN)
    _, a3_MxN = decode(params, a2_MxH, decoder, tied)
    return a2_MxH, a3_MxN


def mean_activation(a2_MxH: jax.Array) -> jax.Array:
    """rho_hat_j = (1/m) sum_k a2_j(x_k), shape (H,)."""
    return jnp.mean(a2_MxH, axis=0)
