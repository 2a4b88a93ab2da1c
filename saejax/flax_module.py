"""The sparse autoencoder as a Flax Linen module, for use inside larger Flax models.

Its variables are ``{"params": {"W1", "b1", "W2", "b2"}}`` (no "W2" when ``tied``), the dict
``saejax.init_params`` returns, so ``saejax.loss(variables["params"], x, hyper, penalty,
decoder=decoder, tied=tied)`` and ``module.apply(variables, x, hyper, penalty,
method=SparseAutoencoder.loss)`` agree to rounding. The module holds no math of its own:
activations come from ``model.forward``, J and its terms from ``losses.compute_terms``.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from saejax import checks, losses, model


def _check_attributes(n_visible, n_hidden, decoder, tied, dtype) -> None:
    """Raises ValueError for an attribute the functional core cannot take."""
    for name, value in (("n_visible", n_visible), ("n_hidden", n_hidden)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    checks.check_decoder(decoder)
    if not isinstance(tied, (bool, np.bool_)):
        raise ValueError(f"tied must be True (W2 = W1^T, no W2 param) or False, got {tied!r}.")
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(f"dtype must be a floating dtype such as float32 or float64, got {dtype!r}.")


class SparseAutoencoder(nn.Module):
    """x (M, N) -> a2 = s(W1 x + b1) (M, H) -> a3 = s(W2 a2 + b2) (M, N), or W2 a2 + b2 if linear.

    Attributes:
      n_visible: N, the input width.
      n_hidden: H, the number of hidden units.
      decoder: ``"sigmoid"`` (a3 = s(z3), default) or ``"linear"`` (a3 = z3, for real-valued
        inputs such as whitened patches).
      tied: ``True`` for W2 = W1^T; the module then holds no "W2" param.
      dtype: dtype of the parameters.
    """

    n_visible: int
    n_hidden: int
    decoder: str = "sigmoid"
    tied: bool = False
    dtype: Any = jnp.float32

    def __post_init__(self):
        # At construction, so a bad attribute fails where it is written, not at the first init.
        _check_attributes(self.n_visible, self.n_hidden, self.decoder, self.tied, self.dtype)
        super().__post_init__()

    def setup(self):
        # init_params splits one key into W1's and W2's, while Flax hands every param a key of
        # its own: one key, drawn here, serves them all, so module.init gives exactly
        # init_params(key) for this module's first "params" key. Outside init, Flax evaluates
        # the initializers only abstractly (to check shapes), with a key it passes in.
        key = self.make_rng("params") if self.is_initializing() else None

        def initial(name):
            def init(own_key):
                params = model.init_params(own_key if key is None else key, self.n_visible,
                                           self.n_hidden, self.dtype, self.tied)
                return params[name]
            return init

        self.W1 = self.param("W1", initial("W1"))
        self.b1 = self.param("b1", initial("b1"))
        if not self.tied:
            self.W2 = self.param("W2", initial("W2"))
        self.b2 = self.param("b2", initial("b2"))

    def _params(self) -> dict:
        """The params dict of the functional core (``model.param_keys(tied)``)."""
        return {k: getattr(self, k) for k in model.param_keys(self.tied)}

    def __call__(self, x_MxN):
        """The whole network.

        Args:
          x_MxN: inputs, one example per row.

        Returns:
          ``{"a2": (M, H), "a3": (M, N), "rho_hat": (H,)}``.
        """
        a2_MxH, a3_MxN = model.forward(self._params(), x_MxN, self.decoder, self.tied)
        return {"a2": a2_MxH, "a3": a3_MxN, "rho_hat": model.mean_activation(a2_MxH)}

    def encode(self, x_MxN):
        """The hidden code a2 (M, H): the features to pass on to a larger model."""
        return model.encode(self._params(), x_MxN).a2

    def loss_terms(self, x_MxN, hyper: losses.Hyper, penalty: str = "kl") -> dict:
        """J, its terms and rho_hat with this module's params, as ``saejax.loss_terms``.

        Args:
          x_MxN: data, one example per row; cast to the params' dtype.
          hyper: ``saejax.Hyper(rho, beta, lam)``.
          penalty: ``"kl"`` (default), ``"squared"`` or ``"l1"``.

        Returns:
          The scalars ``loss``, ``reconstruction``, ``weight_decay``, ``sparsity`` and the
          vector ``rho_hat`` (H,).

        Raises:
          ValueError: for an unknown penalty, x of the wrong shape and, where they are concrete,
            non-finite x or hyperparameters out of range.
        """
        params = self._params()
        x_MxN = checks.check_inputs(params, x_MxN, hyper, penalty, self.decoder, self.tied)
        return losses.compute_terms(params, x_MxN, hyper, penalty, self.decoder, self.tied)

    def loss(self, x_MxN, hyper: losses.Hyper, penalty: str = "kl"):
        """The sparse autoencoder objective J (a scalar) of ``saejax.loss`` with these params."""
        return self.loss_terms(x_MxN, hyper, penalty)["loss"]
