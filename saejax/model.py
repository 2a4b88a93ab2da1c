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
from typing import NamedTuple

import jax
import jax.numpy as jnp

from saejax.schema import DECODERS, EXTRA_PARAMS

PARAM_KEYS = ("W1", "b1", "W2", "b2")
TIED_PARAM_KEYS = ("W1", "b1", "b2")


def param_keys(tied: bool = False) -> tuple:
    """The keys of a params dict: without "W2" when the weights are tied."""
    return TIED_PARAM_KEYS if tied else PARAM_KEYS


def decoder_weights(params: dict, tied: bool):
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


class Hidden(NamedTuple):
    """What ``encode`` returns: the hidden layer's input z2 and its activation a2, (M, H)."""

    z2: jax.Array
    a2: jax.Array


class Output(NamedTuple):
    """What ``decode`` returns: the output layer's input z3 and the reconstruction a3, (M, N)."""

    z3: jax.Array
    a3: jax.Array


class Activations(NamedTuple):
    """What ``forward`` returns: the hidden code a2 (M, H) and the reconstruction a3 (M, N)."""

    a2: jax.Array
    a3: jax.Array


# a3 from z3, per decoder (schema.DECODERS names them)
OUTPUTS = {"sigmoid": jax.nn.sigmoid, "linear": lambda z: z}
if tuple(OUTPUTS) != DECODERS:
    raise ImportError(f"model.OUTPUTS {tuple(OUTPUTS)} and schema.DECODERS {DECODERS} must list "
                      "the same decoders in the same order.")


def check_decoder(decoder: str) -> None:
    """Raises for an unknown decoder name (a typo must not silently mean sigmoid)."""
    if not isinstance(decoder, str) or decoder not in OUTPUTS:
        raise ValueError(f"unknown decoder {decoder!r}; choose one of {list(DECODERS)}.")


def _check_width(name: str, array, width: int, what: str) -> None:
    if array.ndim != 2 or array.shape[1] != width:
        raise ValueError(f"{name} has shape {tuple(array.shape)} but the network takes {width} "
                         f"{what} per example: pass (M, {width}).")


def encode(params: dict, x_MxN: jax.Array) -> Hidden:
    """Hidden layer: ``Hidden(z2, a2)``, each (M, H), with a2 = s(W1 x + b1): the sigmoid
    network's. ``saejax.codes(params, x, config)`` gives any architecture's codes.

    Raises:
      ValueError: x does not have N = W1.shape[1] columns, or the params are batchtopk's or
        jumprelu's (they hold a threshold).
    """
    for arch, leaves in EXTRA_PARAMS.items():
        for leaf in set(leaves) & set(params):
            raise ValueError(f"these params hold {leaf!r}: they are a {arch} model's, whose "
                             "codes are not sigmoid(W1 x + b1). Use saejax.codes(params, x, "
                             "config), with the config saejax.load returned.")
    x_MxN = jnp.asarray(x_MxN)  # a nested list too
    _check_width("x", x_MxN, params["W1"].shape[1], "inputs")
    z2_MxH = x_MxN @ params["W1"].T + params["b1"][None, :]
    return Hidden(z2_MxH, jax.nn.sigmoid(z2_MxH))


def decode(
    params: dict, a2_MxH: jax.Array, decoder: str = "sigmoid", tied: bool = False
) -> Output:
    """Output layer: ``Output(z3, a3)``, each (M, N), with a3 = s(W2 a2 + b2), or z3 if linear.

    Raises:
      ValueError: a2 does not have H columns, or ``tied`` does not match the params.
    """
    if tied == ("W2" in params):
        raise ValueError("these params hold a W2 (untied weights): pass tied=False."
                         if tied else
                         "these params hold no W2 (tied weights, W2 = W1^T): pass tied=True.")
    check_decoder(decoder)
    _check_width("a2", a2_MxH, params["W1"].shape[0], "hidden units")
    z3_MxN = a2_MxH @ decoder_weights(params, tied).T + params["b2"][None, :]
    return Output(z3_MxN, OUTPUTS[decoder](z3_MxN))


def forward(
    params: dict, x_MxN: jax.Array, decoder: str = "sigmoid", tied: bool = False
) -> Activations:
    """The whole network: ``Activations(a2, a3)`` for inputs ``x_MxN``."""
    a2_MxH = encode(params, x_MxN).a2
    return Activations(a2_MxH, decode(params, a2_MxH, decoder, tied).a3)


def mean_activation(a2_MxH: jax.Array) -> jax.Array:
    """rho_hat_j = (1/m) sum_k a2_j(x_k), shape (H,)."""
    return jnp.mean(a2_MxH, axis=0)
