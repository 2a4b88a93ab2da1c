"""One full-batch fit of a small model by optax's L-BFGS: the softmax on features, and the
fine-tuning of a stacked network. Unlike the autoencoder's L-BFGS (``optim.lbfgs``), it trains
one model, with no members to keep in step, so optax's own line search serves."""

from __future__ import annotations

import jax
import optax


def lbfgs_scan(value_fn, params, steps: int, value_and_grad=None, memory_size: int = 10,
               max_linesearch_steps: int = 10):
    """``steps`` iterations of ``optax.lbfgs`` (zoom line search, initial step 1) on
    ``value_fn(params) -> J``, inside one ``lax.scan``; call it under ``jax.jit``.

    Args:
      value_fn: J of the params (a pytree).
      params: the starting params.
      steps: L-BFGS iterations.
      value_and_grad: ``(params) -> (J, dJ/dparams)``, e.g. a hand-written gradient; default
        autodiff of ``value_fn`` that reuses the line search's last value and gradient.
      memory_size: pairs kept in the L-BFGS memory.
      max_linesearch_steps: trials of the zoom line search per iteration.

    Returns:
      ``(params, values, final)``: the final params, J at the start of every iteration, and J
      of the final params (``value_fn``'s, one evaluation more, inside the same program).
    """
    tx = optax.lbfgs(memory_size=memory_size, linesearch=optax.scale_by_zoom_linesearch(
        max_linesearch_steps=max_linesearch_steps, initial_guess_strategy="one"))
    if value_and_grad is None:
        from_state = optax.value_and_grad_from_state(value_fn)
    else:
        def from_state(p, state):
            return value_and_grad(p)

    def step(carry, _):
        params, state = carry
        value, grad = from_state(params, state=state)
        updates, state = tx.update(grad, state, params, value=value, grad=grad,
                                   value_fn=value_fn)
        return (optax.apply_updates(params, updates), state), value

    (params, _), values = jax.lax.scan(step, (params, tx.init(params)), None, length=steps)
    return params, values, value_fn(params)
