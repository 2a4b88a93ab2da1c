"""The sparse autoencoder objective J and its terms, as pure JAX functions.

Symbols (CS294A notes, "Sparse autoencoder", sections 2-3), with m examples x_k:

    J(W, b) = (1/2m) sum_k ||a3(x_k) - x_k||^2            reconstruction(params, x)
            + (lam/2) (||W1||_F^2 + ||W2||_F^2)            weight_decay(params, lam)
            + beta * sum_j P(rho_hat_j)                    sparsity(params, x, hyper, penalty)

    rho_hat_j = (1/m) sum_k a2_j(x_k)                      model.mean_activation
    P: "kl" (KL(rho || rho_hat)), "squared" or "l1"         penalties.REGISTRY

Biases get no weight decay. Each penalty's P and dP/drho_hat live side by side in
``penalties.py``; the hand-written backpropagation lives in ``grads.py``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from saejax import checks
from saejax.metrics import fvu, mean_l0
from saejax.model import decoder_weights, encode, forward, mean_activation
from saejax.penalties import penalty_value
from saejax.pytree import pytree_dataclass
from saejax.schema import HYPER, SCALAR_TERMS


@pytree_dataclass
class Hyper:
    """Hyperparameters of J, as a pytree.

    Each field is a Python number or an array; all are traced leaves, so ``jit`` compiles
    once for every value and ``vmap`` can map over a grid of them (``schema.HYPER`` names them).

    Attributes:
      rho: sparsity target, in (0, 1) (e.g. 0.01 or 0.05).
      beta: weight of the sparsity penalty, >= 0.
      lam: weight decay lambda on W1 and W2, >= 0.
      l1: relu-l1's L1 coefficient (``saejax.architectures``), >= 0.
      k: topk's latents per example, batchtopk's per example on average; traced too, so one
        compiled sweep covers several k.
      l0: jumprelu's L0 coefficient, >= 0.

    The family's knobs default to None (no leaf), so the sigmoid network's ``Hyper(rho, beta,
    lam)`` maps over its three arrays alone; ``hyper_of(config)`` fills all six.
    """

    rho: float | jax.Array
    beta: float | jax.Array
    lam: float | jax.Array
    l1: float | jax.Array | None = None
    k: int | jax.Array | None = None
    l0: float | jax.Array | None = None


def hyper_of(config) -> Hyper:
    """The ``Hyper`` of a ``TrainConfig``: its values of ``schema.HYPER``."""
    return Hyper(**{name: getattr(config, name) for name in HYPER})


def reconstruction_from(x_MxN, a3_MxN):
    """(1/2m) sum_k ||a3(x_k) - x_k||^2 from given activations."""
    m = x_MxN.shape[0]
    return 0.5 * jnp.sum((a3_MxN - x_MxN) ** 2) / m


def weight_decay_from(params, lam, tied: bool):
    """(lam/2) (||W1||_F^2 + ||W2||_F^2); with tied weights W2 = W1^T, so lam ||W1||_F^2."""
    return 0.5 * lam * (jnp.sum(params["W1"] ** 2) + jnp.sum(decoder_weights(params, tied) ** 2))


def sparsity_from(rho_hat_H, hyper: Hyper, penalty: str):
    """beta * sum_j P(rho_hat_j) from given mean activations."""
    return hyper.beta * jnp.sum(penalty_value(penalty, hyper.rho, rho_hat_H))


def terms_from(params, x_MxN, a2_MxH, a3_MxN, hyper: Hyper, penalty: str, tied: bool) -> dict:
    """Every term of J, J itself, the L0 and the FVU, from one forward pass's activations."""
    rho_hat_H = mean_activation(a2_MxH)
    terms = {
        "reconstruction": reconstruction_from(x_MxN, a3_MxN),
        "weight_decay": weight_decay_from(params, hyper.lam, tied),
        "sparsity": sparsity_from(rho_hat_H, hyper, penalty),
    }
    terms["loss"] = terms["reconstruction"] + terms["weight_decay"] + terms["sparsity"]
    terms["mean_l0"] = mean_l0(a2_MxH)
    terms["fvu"] = fvu(x_MxN, a3_MxN)
    return terms


def compute_terms(params, x_MxN, hyper: Hyper, penalty: str = "kl", decoder: str = "sigmoid",
                  tied: bool = False) -> dict:
    """J, its terms and rho_hat (H,) from one forward pass; traceable, inputs not validated.

    This is what ``loss_terms`` runs after validation, and what a training step differentiates.
    """
    a2_MxH, a3_MxN = forward(params, x_MxN, decoder, tied)
    terms = terms_from(params, x_MxN, a2_MxH, a3_MxN, hyper, penalty, tied)
    terms["rho_hat"] = mean_activation(a2_MxH)
    return terms


def scalar_terms(terms: dict) -> dict:
    """J's terms as scalars (``schema.SCALAR_TERMS``): the rho_hat vector becomes its mean."""
    scalars = {**terms, "rho_hat_mean": jnp.mean(terms["rho_hat"])}
    return {k: scalars[k] for k in SCALAR_TERMS}


_jit_terms = jax.jit(compute_terms, static_argnames=("penalty", "decoder", "tied"))


def loss_terms(params: dict, x, hyper: Hyper, penalty: str = "kl", *, decoder: str = "sigmoid",
               tied: bool = False) -> dict:
    """J and its parts in one jitted forward pass.

    Args:
      params: ``{"W1": (H, N), "b1": (H,), "W2": (N, H), "b2": (N,)}`` (no "W2" when tied).
      x: data, shape (M, N), one example per row.
      hyper: ``Hyper(rho, beta, lam)``.
      penalty: ``"kl"`` (default), ``"squared"`` or ``"l1"``.
      decoder: ``"sigmoid"`` (a3 = s(z3), default) or ``"linear"`` (a3 = z3).
      tied: W2 = W1^T (params hold no "W2").

    Returns:
      A dict of scalars ``loss``, ``reconstruction``, ``weight_decay``, ``sparsity``,
      ``mean_l0`` (active units per example) and ``fvu`` (the fraction of variance
      unexplained), and the vector ``rho_hat`` (H,).
    """
    x = checks.check_inputs(params, x, hyper, penalty, decoder, tied)
    return _jit_terms(params, x, hyper, penalty, decoder, tied)


def loss(params: dict, x, hyper: Hyper, penalty: str = "kl", *, decoder: str = "sigmoid",
         tied: bool = False) -> jax.Array:
    """The sparse autoencoder objective J (a scalar), jit-compiled.

    J = (1/2m) sum_k ||a3(x_k) - x_k||^2 + (lam/2)(||W1||^2 + ||W2||^2) + beta sum_j P(rho_hat_j)

    Args:
      params: ``{"W1": (H, N), "b1": (H,), "W2": (N, H), "b2": (N,)}``, as from ``init_params``.
      x: data, shape (M, N), one example per row; cast to the dtype of ``params["W1"]``.
      hyper: ``Hyper(rho, beta, lam)``; rho in (0, 1), beta >= 0, lam >= 0.
      penalty: ``"kl"`` (default, KL(rho || rho_hat)), ``"squared"`` ((rho_hat - rho)^2) or
        ``"l1"`` (rho_hat).
      decoder: ``"sigmoid"`` (default, a3 = s(W2 a2 + b2)) or ``"linear"`` (a3 = W2 a2 + b2,
        for real-valued inputs).
      tied: ``True`` for tied weights W2 = W1^T; params then hold no "W2".

    Returns:
      The scalar J. Differentiate it with ``jax.grad(saejax.loss)``; compare with
      ``saejax.analytic_grad``.

    Raises:
      ValueError: for rho outside (0, 1), a negative beta or lam, non-finite x, x of the wrong
        shape, malformed params, an unknown penalty or decoder. Values that arrive as tracers
        (inside a user's jit or vmap) are not checked here; shapes always are.
    """
    return loss_terms(params, x, hyper, penalty, decoder=decoder, tied=tied)["loss"]


def reconstruction(params: dict, x, *, decoder: str = "sigmoid", tied: bool = False):
    """The reconstruction term (1/2m) sum_k ||a3(x_k) - x_k||^2, a scalar. x: (M, N)."""
    x = checks.check_inputs(params, x, decoder=decoder, tied=tied)
    return reconstruction_from(x, forward(params, x, decoder, tied)[1])


def weight_decay(params: dict, lam, *, tied: bool = False) -> jax.Array:
    """The weight-decay term (lam/2)(||W1||_F^2 + ||W2||_F^2), a scalar; biases are not decayed."""
    checks.check_params(params, tied)
    checks.check_nonnegative("lam", lam)
    return weight_decay_from(params, lam, tied)


def sparsity(params: dict, x, hyper: Hyper, penalty: str = "kl", *, tied: bool = False):
    """The sparsity term beta * sum_j P(rho_hat_j), a scalar. x: (M, N)."""
    x = checks.check_inputs(params, x, hyper, penalty, tied=tied)
    return sparsity_from(mean_activation(encode(params, x)[1]), hyper, penalty)
