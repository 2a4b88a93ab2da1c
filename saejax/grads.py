"""The hand-written gradient of J: backpropagation with the sparsity term, as in the notes.

No ``jax.grad``, ``vjp`` or ``jvp`` is used here; autodiff is the independent check.

With s'(z) = a (1 - a) for the sigmoid and the 1/m of J folded into the deltas
(shapes: M examples, N visible, H hidden):

    delta3_MxN = (a3 - x) * a3 (1 - a3) / m                          output error
    dP/drho_hat:  kl       -rho/rho_hat + (1-rho)/(1-rho_hat)        penalties.REGISTRY
                  squared  2 (rho_hat - rho)                         (penalty_derivative)
                  l1       1
    delta2_MxH = (delta3 W2 + beta dP/drho_hat / m) * a2 (1 - a2)    hidden error

    dJ/dW1 = delta2^T x + lam W1      dJ/db1 = sum_k delta2
    dJ/dW2 = delta3^T a2 + lam W2     dJ/db2 = sum_k delta3

Variants: a linear decoder (a3 = z3) drops the factor a3 (1 - a3) from delta3; tied weights
(W2 = W1^T) give dJ/dW1 = delta2^T x + (delta3^T a2)^T + 2 lam W1.

The sparsity term alone (``sparsity_grad``) is the notes' derivation:
d/dW1_ij [beta sum_l KL(rho||rho_hat_l)] = beta (-rho/rho_hat_i + (1-rho)/(1-rho_hat_i))
* (1/m) sum_k s'(z2_i(x_k)) x_k,j, because drho_hat_l/dW1_ij = 0 for l != i.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from saejax import checks
from saejax.losses import Hyper, sparsity_from, terms_from, weight_decay_from
from saejax.metrics import total_variance
from saejax.model import OUTPUTS, check_decoder, decoder_weights, forward, mean_activation
from saejax.penalties import penalty_derivative


def _backprop(params, x_MxN, hyper, penalty, *, recon: bool, sparse: bool,
              decoder: str = "sigmoid", tied: bool = False):
    """Gradients of the data terms selected by ``recon`` and ``sparse`` (no weight decay).

    Returns ``(a2_MxH, a3_MxN, grads)`` so callers can reuse the forward pass.
    """
    m = x_MxN.shape[0]
    a2_MxH, a3_MxN = forward(params, x_MxN, decoder, tied)
    W2_NxH = decoder_weights(params, tied)
    dtype = a2_MxH.dtype
    delta2_MxH = jnp.zeros_like(a2_MxH)
    if recon:
        delta3_MxN = (a3_MxN - x_MxN) / m
        if decoder == "sigmoid":  # a linear decoder has f'(z3) = 1
            delta3_MxN = delta3_MxN * a3_MxN * (1.0 - a3_MxN)
        delta2_MxH = delta3_MxN @ W2_NxH
    else:
        delta3_MxN = jnp.zeros_like(a3_MxN)
    if sparse:
        rho_hat_H = mean_activation(a2_MxH)
        sparse_H = hyper.beta * penalty_derivative(penalty, hyper.rho, rho_hat_H) / m
        delta2_MxH = delta2_MxH + sparse_H.astype(dtype)[None, :]
    delta2_MxH = delta2_MxH * a2_MxH * (1.0 - a2_MxH)
    grads = {
        "W1": delta2_MxH.T @ x_MxN,
        "b1": jnp.sum(delta2_MxH, axis=0),
        "W2": delta3_MxN.T @ a2_MxH,
        "b2": jnp.sum(delta3_MxN, axis=0),
    }
    if tied:  # W1 is used twice, as the encoder and (transposed) as the decoder
        grads["W1"] = grads["W1"] + grads.pop("W2").T
    return a2_MxH, a3_MxN, grads


def _decay_grad(params, lam, tied: bool = False):
    """d/dtheta of (lam/2)(||W1||^2 + ||W2||^2): lam W for weights (2 lam W1 when tied), 0 for biases."""
    # The gradient keeps the params' dtype whatever the precision of lam.
    grads = {k: jnp.zeros_like(v) if k.startswith("b") else (lam * v).astype(v.dtype)
             for k, v in params.items()}
    if tied:
        grads["W1"] = 2.0 * grads["W1"]
    return grads


def terms_and_grad(params, x_MxN, hyper: Hyper, penalty: str = "kl", decoder: str = "sigmoid",
                   tied: bool = False):
    """J's terms (as ``losses.terms_from``, plus ``rho_hat``) and the analytic dJ/dparams.

    One forward and one backward pass; traceable, inputs not validated. This is what a
    training step with ``grad="analytic"`` calls.
    """
    a2_MxH, a3_MxN, g_data = _backprop(params, x_MxN, hyper, penalty, recon=True, sparse=True,
                                       decoder=decoder, tied=tied)
    g_decay = _decay_grad(params, hyper.lam, tied)
    grads = {k: g_data[k] + g_decay[k] for k in g_data}
    terms = terms_from(params, x_MxN, a2_MxH, a3_MxN, hyper, penalty, tied)
    terms["rho_hat"] = mean_activation(a2_MxH)
    return terms, grads


def terms_and_grad_blocked(params, x_MxN, hyper: Hyper, penalty: str = "kl",
                           decoder: str = "sigmoid", tied: bool = False, block: int = 1024):
    """``terms_and_grad`` computed over blocks of at most ``block`` examples, in two passes.

    The sparsity term needs rho_hat, a mean over every example, before any example's delta2.
    Pass 1 computes a2 for all examples (M x H, small) and rho_hat; pass 2 walks the blocks
    with ``lax.scan``, computing a3, delta3 and delta2 of one block at a time and accumulating
    J's reconstruction sum and the gradients. The (M, N) temporaries a3 and delta3 then never
    exist whole: one block's stay in cache, which is what makes a vmapped sweep's evaluation
    cheap per member. Same equations as ``_backprop``; the sums only run in another order.
    """
    check_decoder(decoder)
    m, n = x_MxN.shape
    nb = -(-m // block)
    block = -(-m // nb)  # blocks of equal size: m = 10,000 in blocks of 2,000, not 2,048
    pad = nb * block - m
    xb = jnp.pad(x_MxN, ((0, pad), (0, 0))).reshape(nb, block, n)
    # Padded examples are masked out; with none (block divides m) the mask is a constant 1.
    mask = ((jnp.arange(nb * block) < m).reshape(nb, block, 1).astype(x_MxN.dtype) if pad
            else jnp.ones((nb, 1, 1), x_MxN.dtype))
    W2_NxH = decoder_weights(params, tied)
    a2 = jax.nn.sigmoid(xb @ params["W1"].T + params["b1"][None, None, :]) * mask  # nb, block, H
    rho_hat_H = jnp.sum(a2, axis=(0, 1)) / m
    sparse_H = (hyper.beta * penalty_derivative(penalty, hyper.rho, rho_hat_H) / m).astype(
        a2.dtype)

    def one_block(acc, blk):
        x_b, a2_b, w_b = blk
        z3 = a2_b @ W2_NxH.T + params["b2"][None, :]
        a3 = OUTPUTS[decoder](z3)
        err = (a3 - x_b) * w_b
        delta3 = err / m if decoder == "linear" else err * a3 * (1.0 - a3) / m
        delta2 = (delta3 @ W2_NxH + sparse_H[None, :]) * a2_b * (1.0 - a2_b) * w_b
        sq, gW1, gb1, gW2, gb2 = acc
        return (sq + jnp.sum(err * err), gW1 + delta2.T @ x_b, gb1 + jnp.sum(delta2, axis=0),
                gW2 + delta3.T @ a2_b, gb2 + jnp.sum(delta3, axis=0)), None

    zero = jnp.zeros((), x_MxN.dtype)
    acc0 = (zero, jnp.zeros_like(params["W1"]), jnp.zeros_like(params["b1"]),
            jnp.zeros_like(W2_NxH), jnp.zeros_like(params["b2"]))
    (sq, gW1, gb1, gW2, gb2), _ = jax.lax.scan(one_block, acc0, (xb, a2, mask))
    g_data = {"W1": gW1, "b1": gb1, "W2": gW2, "b2": gb2}
    if tied:
        g_data["W1"] = g_data["W1"] + g_data.pop("W2").T
    g_decay = _decay_grad(params, hyper.lam, tied)
    grads = {k: g_data[k] + g_decay[k] for k in g_data}
    terms = {
        "reconstruction": 0.5 * sq / m,
        "weight_decay": weight_decay_from(params, hyper.lam, tied),
        "sparsity": sparsity_from(rho_hat_H, hyper, penalty),
    }
    terms["loss"] = terms["reconstruction"] + terms["weight_decay"] + terms["sparsity"]
    terms["rho_hat"] = rho_hat_H
    terms["mean_l0"] = jnp.sum((a2 > 0).astype(a2.dtype)) / m  # a padded row's a2 is 0
    terms["fvu"] = sq / total_variance(x_MxN)
    return terms, grads


_STATIC = ("penalty", "decoder", "tied")
_jit_terms_and_grad = jax.jit(terms_and_grad, static_argnames=_STATIC)


def value_and_analytic_grad(params: dict, x, hyper: Hyper, penalty: str = "kl", *,
                            decoder: str = "sigmoid", tied: bool = False):
    """J and its hand-written gradient from one jitted forward/backward pass.

    Args and validation as ``analytic_grad``.

    Returns:
      ``(J, grads)``: the scalar J and a dict shaped like params.
    """
    x = checks.check_inputs(params, x, hyper, penalty, decoder, tied)
    terms, grads = _jit_terms_and_grad(params, x, hyper, penalty, decoder, tied)
    return terms["loss"], grads


def analytic_grad(params: dict, x, hyper: Hyper, penalty: str = "kl", *,
                  decoder: str = "sigmoid", tied: bool = False) -> dict:
    """dJ/dparams by hand-written backpropagation (see the module docstring for the equations).

    Args:
      params: ``{"W1": (H, N), "b1": (H,), "W2": (N, H), "b2": (N,)}`` (no "W2" when tied).
      x: data, shape (M, N), one example per row; cast to the dtype of ``params["W1"]``.
      hyper: ``Hyper(rho, beta, lam)``; rho in (0, 1), beta >= 0, lam >= 0.
      penalty: ``"kl"`` (default), ``"squared"`` or ``"l1"``.
      decoder: ``"sigmoid"`` (default) or ``"linear"`` (delta3 = (a3 - x) / m, no s'(z3)).
      tied: W2 = W1^T; dJ/dW1 then adds the decoder's (delta3^T a2)^T and the decay is 2 lam W1.

    Returns:
      A dict shaped like params, equal to ``jax.grad(saejax.loss)(params, x, hyper, penalty)``
      to rounding.

    Raises:
      ValueError: for the bad inputs listed in ``saejax.loss``.
    """
    return value_and_analytic_grad(params, x, hyper, penalty, decoder=decoder, tied=tied)[1]


def _reconstruction_grad_impl(params, x_MxN, decoder, tied):
    return _backprop(params, x_MxN, None, None, recon=True, sparse=False, decoder=decoder,
                     tied=tied)[2]


# jit applied by call rather than as a decorator, here and below, so that the mutation run
# (make mutants) reaches the function body.
_reconstruction_grad = jax.jit(_reconstruction_grad_impl, static_argnames=("decoder", "tied"))


def reconstruction_grad(params: dict, x, *, decoder: str = "sigmoid", tied: bool = False):
    """d/dparams of (1/2m) sum_k ||a3(x_k) - x_k||^2. x: (M, N); returns a dict like params."""
    x = checks.check_inputs(params, x, decoder=decoder, tied=tied)
    return _reconstruction_grad(params, x, decoder, tied)


def weight_decay_grad(params: dict, lam, *, tied: bool = False) -> dict:
    """d/dparams of (lam/2)(||W1||^2 + ||W2||^2): lam W1, 0, lam W2, 0 (2 lam W1 when tied)."""
    checks.check_params(params, tied)
    checks.check_nonnegative("lam", lam)
    return _decay_grad(params, lam, tied)


def _sparsity_grad_impl(params, x_MxN, hyper, penalty, tied):
    return _backprop(params, x_MxN, hyper, penalty, recon=False, sparse=True, tied=tied)[2]


_sparsity_grad = jax.jit(_sparsity_grad_impl, static_argnames=("penalty", "tied"))


def sparsity_grad(params: dict, x, hyper: Hyper, penalty: str = "kl", *,
                  tied: bool = False) -> dict:
    """d/dparams of beta sum_j P(rho_hat_j); nonzero only for W1 and b1.

    For ``kl``: dW1_ij = beta (-rho/rho_hat_i + (1-rho)/(1-rho_hat_i)) (1/m) sum_k
    s'(z2_i(x_k)) x_k,j. x: (M, N); returns a dict like params.
    """
    x = checks.check_inputs(params, x, hyper, penalty, tied=tied)
    return _sparsity_grad(params, x, hyper, penalty, tied)
