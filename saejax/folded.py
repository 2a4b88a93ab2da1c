"""The analytic evaluation of G sigmoid networks that share their data, folded into wide products.

A sweep trains G members on the same x. Each member's layer 1 is a thin product (10,000 x 64 x
25 in the UFLDL exercise), but stacked over members it is one wide one:

    z2_Mx(GH)  = x_MxN [W1_1; ...; W1_G]^T + b1             one (M, N) x (N, G H) product
    dW1_(GH)xN = delta2_Mx(GH)^T x_MxN                       one (G H, M) x (M, N) product

and the per-member parts (z3 = a2 W2^T, delta3 W2, delta3^T a2) run batched over the members,
with the examples first: a2 is (M, G, H), a3 and delta3 (M, G, N). The equations are those of
``grads.terms_and_grad`` (see ``saejax.grads``), one member per slice of G; only the layout and
the order of the sums differ, so the result equals ``jax.vmap`` of it to rounding.

``member_vmap(single, folded)`` makes a per-member evaluation that, when ``jax.vmap`` maps it
over members whose params are all batched and whose data is shared, runs ``folded`` on the
whole stack instead of vmapping ``single`` (``jax.custom_batching.custom_vmap``). The L-BFGS
driver and the sweep stay written for one member.

Note ``jax.vmap`` of ``single`` already turns the layer-1 products into one wide product each
(its batching rule folds the member axis of W1 into the free dimension when x is shared);
what the folded layout changes is where the members sit in the other arrays (member-minor
here, member-major under vmap), so which is faster depends on the machine: see
``train.step.member_eval_of`` and docs/gpu.md.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.custom_batching import custom_vmap

from saejax.losses import Hyper, sparsity_from, weight_decay_from
from saejax.metrics import total_variance
from saejax.model import OUTPUTS, check_decoder
from saejax.penalties import penalty_derivative


def folded_terms_and_grad(params, x_MxN, hyper: Hyper, penalty: str = "kl",
                          decoder: str = "sigmoid", tied: bool = False):
    """``grads.terms_and_grad`` of G members at once: params and hyper stacked on axis 0
    (W1 (G, H, N), ...; rho, beta, lam (G,)), x (M, N) shared. Returns (terms, grads), each
    stacked on axis 0 like ``jax.vmap(grads.terms_and_grad, (0, None, 0))``."""
    check_decoder(decoder)
    W1 = params["W1"]
    G, H, N = W1.shape
    m = x_MxN.shape[0]
    W2 = jnp.swapaxes(W1, 1, 2) if tied else params["W2"]  # G, N, H
    z2 = x_MxN @ W1.reshape(G * H, N).T + params["b1"].reshape(G * H)[None, :]
    a2 = jax.nn.sigmoid(z2).reshape(m, G, H)
    rho_hat_GxH = jnp.mean(a2, axis=0)
    sparse_GxH = (hyper.beta[:, None] * penalty_derivative(penalty, hyper.rho[:, None], rho_hat_GxH)
                  / m).astype(a2.dtype)
    a3 = OUTPUTS[decoder](jnp.einsum("mgh,gnh->mgn", a2, W2) + params["b2"][None, :, :])
    err = a3 - x_MxN[:, None, :]
    delta3 = err / m if decoder == "linear" else err * a3 * (1.0 - a3) / m
    delta2 = (jnp.einsum("mgn,gnh->mgh", delta3, W2) + sparse_GxH[None]) * a2 * (1.0 - a2)
    g = {
        "W1": (delta2.reshape(m, G * H).T @ x_MxN).reshape(G, H, N),
        "b1": jnp.sum(delta2, axis=0),
        "W2": jnp.einsum("mgn,mgh->gnh", delta3, a2),
        "b2": jnp.sum(delta3, axis=0),
    }
    if tied:  # W1 is used twice, as the encoder and (transposed) as the decoder
        g["W1"] = g["W1"] + jnp.swapaxes(g.pop("W2"), 1, 2)
    g = add_decay(g, params, hyper, tied)
    sq_G = jnp.sum(err * err, axis=(0, 2))
    l0_G = jnp.sum((a2 > 0).astype(a2.dtype), axis=(0, 2))
    return member_terms(params, x_MxN, hyper, penalty, tied, sq_G, rho_hat_GxH, l0_G), g


def add_decay(g, params, hyper: Hyper, tied: bool):
    """The members' data gradients ``g`` plus the weight decay's: lam W (2 lam W1 when tied)."""
    decay = (2.0 if tied else 1.0) * hyper.lam
    return {key: g[key] + (decay[:, None, None] * params[key]).astype(params[key].dtype)
            if key in ("W1", "W2") else g[key] for key in g}


def member_terms(params, x_MxN, hyper: Hyper, penalty: str, tied: bool, sq_G, rho_hat_GxH,
                 l0_G) -> dict:
    """The members' terms as ``grads.terms_and_grad`` returns them, from each member's sum of
    squared errors ``sq_G``, rho_hat and count of a2 > 0 over the examples."""
    m = x_MxN.shape[0]
    terms = {
        "reconstruction": 0.5 * sq_G / m,
        "weight_decay": jax.vmap(weight_decay_from, (0, 0, None))(params, hyper.lam, tied),
        "sparsity": jax.vmap(sparsity_from, (0, 0, None))(rho_hat_GxH, hyper, penalty),
    }
    terms["loss"] = terms["reconstruction"] + terms["weight_decay"] + terms["sparsity"]
    terms["rho_hat"] = rho_hat_GxH
    terms["mean_l0"] = l0_G / m
    terms["fvu"] = sq_G / total_variance(x_MxN)
    return terms


def _axes(batched):
    return jax.tree.map(lambda b: 0 if b else None, batched)


def member_vmap(single, folded):
    """``evaluate(params, batch, hyper)``: ``single`` for one member; under ``jax.vmap`` over
    members that share ``batch``, ``folded`` of all of them (hyper broadcast to the members
    where it is shared); any other batching vmaps ``single`` as usual."""

    def rule(axis_size, in_batched, params, batch, hyper):
        params_b, batch_b, hyper_b = in_batched
        if batch_b or not all(jax.tree.leaves(params_b)):
            out = jax.vmap(single, (_axes(params_b), _axes(batch_b), _axes(hyper_b)))(
                params, batch, hyper)
        else:
            hyper = jax.tree.map(
                lambda v, b: v if b else jnp.broadcast_to(v, (axis_size, *jnp.shape(v))),
                hyper, hyper_b)
            out = folded(params, batch, hyper)
        return out, jax.tree.map(lambda _: True, out)

    # custom_vmap applied by call, not as a decorator, so that the mutation run reaches rule
    evaluate = custom_vmap(lambda params, batch, hyper: single(params, batch, hyper))
    evaluate.def_vmap(rule)
    return evaluate
