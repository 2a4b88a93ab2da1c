"""Stacked sparse autoencoders: greedy layer-wise pretraining, a softmax on top, fine-tuning.

UFLDL's "Building deep networks for classification" (stackedAEExercise.m): K sparse
autoencoders are trained one after the other, each on the hidden features a2 of the one below
(``pretrain``, with the ordinary trainer, checkpoints and figures); a softmax classifier is
trained on the last features (``saejax.softmax``); then the whole stack is fine-tuned by
backpropagation through every layer (``finetune``: full-batch L-BFGS as UFLDL does;
``finetune_adam``: minibatch Adam, both on the same hand-written gradient).

The network and its fine-tuning cost (UFLDL's stackedAECost: weight decay on the softmax
weights only)::

    a_0 = x,  a_l = sigmoid(a_{l-1} W_l^T + b_l)  (l = 1..K),  p = softmax(a_K W_s^T + b_s)
    J = -(1/m) sum_k log p(y_k | x_k) + (lam/2) ||W_s||^2

Its gradient is written by hand (``value_and_grad``), the backward pass of the notes:

    delta_s = (p - onehot(y)) / m                        gW_s = delta_s^T a_K + lam W_s
    delta_K = (delta_s W_s) * a_K (1 - a_K)              gb_s = sum_k delta_s
    gW_l = delta_l^T a_{l-1},  gb_l = sum_k delta_l,  delta_{l-1} = (delta_l W_l) * a_{l-1} (1 - a_{l-1})

and checked three ways against ``jax.grad`` and central differences (``check``, tests,
``saejax gradcheck --stacked``).

A stack is a dict ``{"layers": [{"W": (H_l, H_{l-1}), "b": (H_l,)}, ...], "softmax": {"W":
(K, H_K), "b": (K,)}}``; a layer's W and b are its autoencoder's W1 and b1.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from saejax import gradcheck
from saejax.checks import check_count, check_nonnegative, check_x
from saejax.optim.fit import lbfgs_scan
from saejax.softmax import check_labels, train_softmax


def activations(layers: list, x_MxN) -> list:
    """[a_0 = x, a_1, ..., a_K] through the sigmoid layers."""
    acts = [x_MxN]
    for layer in layers:
        acts.append(jax.nn.sigmoid(acts[-1] @ layer["W"].T + layer["b"][None, :]))
    return acts


def forward(stack: dict, x_MxN) -> tuple[list, jax.Array]:
    """``(activations, logits)``: [a_0 = x, a_1, ..., a_K] and the softmax inputs (M, K)."""
    acts = activations(stack["layers"], x_MxN)
    return acts, acts[-1] @ stack["softmax"]["W"].T + stack["softmax"]["b"][None, :]


def features(stack: dict, x_MxN) -> jax.Array:
    """The top layer's features a_K (M, H_K)."""
    return activations(stack["layers"], x_MxN)[-1]


def check_data(stack: dict, x, name: str = "data") -> None:
    """Raises unless ``x`` is a finite (M, N) array whose width N is the stack's input width
    (the first layer's, or the softmax's when the stack has no layers)."""
    first = stack["layers"][0] if stack["layers"] else stack["softmax"]
    check_x(x, jnp.shape(first["W"])[1], name)


def cost(stack: dict, x_MxN, labels_M, lam) -> jax.Array:
    """J of the fine-tuned network: softmax cross-entropy plus (lam/2) ||W_s||^2."""
    _, logits = forward(stack, x_MxN)
    log_p = jax.nn.log_softmax(logits, axis=1)
    nll = -jnp.mean(jnp.take_along_axis(log_p, labels_M[:, None], axis=1))
    return nll + 0.5 * lam * jnp.sum(stack["softmax"]["W"] ** 2)


def value_and_grad(stack: dict, x_MxN, labels_M, lam) -> tuple[jax.Array, dict]:
    """``(J, dJ/dstack)`` by the hand-written backward pass (module docstring)."""
    acts, logits = forward(stack, x_MxN)
    m = x_MxN.shape[0]
    log_p = jax.nn.log_softmax(logits, axis=1)
    onehot = jax.nn.one_hot(labels_M, logits.shape[1], dtype=logits.dtype)
    value = -jnp.sum(onehot * log_p) / m + 0.5 * lam * jnp.sum(stack["softmax"]["W"] ** 2)
    delta = (jnp.exp(log_p) - onehot) / m  # M x K
    grad_softmax = {"W": delta.T @ acts[-1] + lam * stack["softmax"]["W"],
                    "b": jnp.sum(delta, axis=0)}
    delta = (delta @ stack["softmax"]["W"]) * acts[-1] * (1 - acts[-1])  # M x H_K
    grad_layers = []
    for l in range(len(stack["layers"]) - 1, -1, -1):
        grad_layers.append({"W": delta.T @ acts[l], "b": jnp.sum(delta, axis=0)})
        if l > 0:
            delta = (delta @ stack["layers"][l]["W"]) * acts[l] * (1 - acts[l])
    return value, {"layers": grad_layers[::-1], "softmax": grad_softmax}


def check(stack: dict, x, labels, lam, eps=None) -> dict:
    """The three-way check of the fine-tuning gradient, as ``gradcheck.check`` does for J.

    Returns ``{"dtype", "differences": {pair: ||a-b||/||a+b||}, "tolerances", "passed"}`` for
    the pairs analytic~autodiff, analytic~numerical and autodiff~numerical (``gradcheck.PAIRS``,
    the same tolerances and finite-difference steps per dtype).
    """
    dtype = jnp.result_type(stack["softmax"]["W"]).name
    eps = gradcheck.NUMERICAL_EPS.get(dtype, 1e-4) if eps is None else eps
    g = {"analytic": value_and_grad(stack, x, labels, lam)[1],
         "autodiff": jax.grad(cost)(stack, x, labels, lam),
         "numerical": gradcheck.numerical_grad(lambda s: cost(s, x, labels, lam), stack, eps)}
    tolerances = gradcheck.TOLERANCES.get(dtype, gradcheck.TOLERANCES["float32"])
    differences = {}
    for pair in gradcheck.PAIRS:
        left, right = pair.split("~")
        differences[pair] = gradcheck.relative_difference(g[left], g[right])
    passed = all(differences[p] <= tolerances[p] for p in gradcheck.PAIRS)
    return {"dtype": dtype, "differences": differences, "tolerances": tolerances,
            "passed": bool(passed)}


def problem(sizes=(8, 5, 4), num_classes: int = 3, m: int = 10, dtype=jnp.float64, seed=0):
    """A small random stack, data and labels for gradient checks."""
    rng = np.random.default_rng(seed)
    layers = [{"W": jnp.asarray(rng.normal(0, 0.5, (h, n)), dtype),
               "b": jnp.asarray(rng.normal(0, 0.1, h), dtype)}
              for n, h in zip(sizes[:-1], sizes[1:], strict=True)]
    stack = {"layers": layers,
             "softmax": {"W": jnp.asarray(rng.normal(0, 0.5, (num_classes, sizes[-1])), dtype),
                         "b": jnp.asarray(rng.normal(0, 0.1, num_classes), dtype)}}
    x = jnp.asarray(rng.uniform(0, 1, (m, sizes[0])), dtype)
    labels = jnp.asarray(rng.integers(0, num_classes, m), jnp.int32)
    return stack, x, labels


def pretrain(configs, data, workdir: str | Path | None = None, resume: bool = False,
             progress: bool = True, data_info: dict | None = None) -> list:
    """Greedy layer-wise pretraining: ``configs[l]`` trains layer l's sparse autoencoder on the
    features of layer l-1 (the data for l = 0). Each layer is an ordinary ``train.run``, in
    ``workdir/layer<l+1>`` when ``workdir`` is given. Returns the layers' ``RunResult``s.

    Every config must train the sigmoid network (``arch="sigmoid"``): the stack computes
    sigmoid(W1 x + b1) of each layer, which no other architecture's encoder is; a ValueError
    names the first config that is not, before any layer trains."""
    from saejax import train
    from saejax.model import encode

    for l, config in enumerate(configs):
        if config.arch != "sigmoid":
            raise ValueError(
                f"configs[{l}] has arch {config.arch!r}, but a stacked autoencoder stacks the "
                "sigmoid network's features sigmoid(W1 x + b1) (UFLDL's stackedAE): train "
                "every layer with arch='sigmoid' (TrainConfig's default).")
    results, x = [], np.asarray(data)
    for l, config in enumerate(configs):
        layer_dir = None if workdir is None else Path(workdir) / f"layer{l + 1}"
        resumed = resume and layer_dir is not None and layer_dir.exists()
        info = {**(data_info or {}), "layer": l + 1, "inputs": "data" if l == 0 else
                f"layer {l} features"}
        result = train.run(config, x, layer_dir, resume=resumed, progress=progress,
                           data_info=info)
        results.append(result)
        params = result.state.params
        x = np.asarray(encode(params, jnp.asarray(x, params["W1"].dtype))[1])
    return results


def assemble(layer_params: list, softmax_theta: dict) -> dict:
    """A stack from the autoencoders' params (their W1, b1) and a softmax theta."""
    return {"layers": [{"W": jnp.asarray(p["W1"]), "b": jnp.asarray(p["b1"])}
                       for p in layer_params],
            "softmax": {"W": jnp.asarray(softmax_theta["W"]),
                        "b": jnp.asarray(softmax_theta["b"])}}


def _finetune_impl(stack, x, labels, lam, steps: int):
    return lbfgs_scan(lambda s: cost(s, x, labels, lam), stack, steps,
                      value_and_grad=lambda s: value_and_grad(s, x, labels, lam),
                      memory_size=100, max_linesearch_steps=20)


_finetune = jax.jit(_finetune_impl, static_argnames=("steps",))  # by call: mutmut reaches the body


def _check_finetune(stack: dict, data, labels, lam) -> tuple[np.ndarray, np.ndarray]:
    """The data and labels, checked against the stack: its input width and its class count."""
    check_data(stack, data)
    check_nonnegative("lam", lam)
    return check_labels(data, labels, num_classes=jnp.shape(stack["softmax"]["W"])[0])[:2]


def finetune(stack: dict, data, labels, lam: float = 1e-4, steps: int = 400) -> tuple[dict, dict]:
    """Fine-tunes every layer and the softmax by full-batch L-BFGS (optax, zoom line search)
    on the hand-written gradient. Returns ``(stack, info)``: J at the start of every iteration
    ("loss") and J of the stack returned ("final_loss")."""
    data, labels = _check_finetune(stack, data, labels, lam)
    steps = check_count("steps", steps)
    dtype = stack["softmax"]["W"].dtype
    x, y, lam = jnp.asarray(data, dtype), jnp.asarray(labels, jnp.int32), jnp.asarray(lam, dtype)
    stack, values, final = _finetune(stack, x, y, lam, steps)
    return stack, {"loss": np.asarray(values).tolist(), "final_loss": float(final)}


def _finetune_adam_impl(stack, x, labels, lam, lr, key, epochs: int, batch_size: int):
    tx = optax.adam(lr)
    m = x.shape[0]
    per_epoch = m // batch_size

    def epoch(carry, key):
        def step(carry, idx):
            stack, state = carry
            value, grad = value_and_grad(stack, x[idx], labels[idx], lam)
            updates, state = tx.update(grad, state, stack)
            return (optax.apply_updates(stack, updates), state), value

        order = jax.random.permutation(key, m)[:per_epoch * batch_size]
        carry, values = jax.lax.scan(step, carry, order.reshape(per_epoch, batch_size))
        return carry, jnp.mean(values)

    (stack, _), values = jax.lax.scan(epoch, (stack, tx.init(stack)),
                                      jax.random.split(key, epochs))
    return stack, values, cost(stack, x, labels, lam)  # J on all the data at the end


# by call, not as a decorator: mutmut reaches the body
_finetune_adam = jax.jit(_finetune_adam_impl, static_argnames=("epochs", "batch_size"))


def finetune_adam(stack: dict, data, labels, lam: float = 1e-4, epochs: int = 20,
                  batch_size: int = 128, lr: float = 1e-3, seed: int = 0) -> tuple[dict, dict]:
    """Fine-tunes every layer and the softmax by minibatch Adam (optax) on the hand-written
    gradient: ``epochs`` passes over the data in a fresh random order each (the last partial
    batch of an epoch is left out). Returns ``(stack, info)``: the mean minibatch J of every
    epoch ("loss") and J of the stack returned on all the data ("final_loss")."""
    data, labels = _check_finetune(stack, data, labels, lam)
    epochs = check_count("epochs", epochs, "positive_int")
    if not 1 <= batch_size <= len(data):
        raise ValueError(f"batch_size must lie in [1, {len(data)}], got {batch_size}.")
    dtype = stack["softmax"]["W"].dtype
    x, y, lam = jnp.asarray(data, dtype), jnp.asarray(labels, jnp.int32), jnp.asarray(lam, dtype)
    stack, values, final = _finetune_adam(stack, x, y, lam, jnp.asarray(lr, dtype),
                                          jax.random.key(seed), int(epochs), int(batch_size))
    return stack, {"loss": np.asarray(values).tolist(), "final_loss": float(final)}


def predict(stack: dict, x) -> np.ndarray:
    """The most probable class of each example."""
    check_data(stack, x, "x")
    return np.asarray(jnp.argmax(forward(stack, jnp.asarray(x))[1], axis=1))


def stack_accuracy(stack: dict, x, labels) -> float:
    """Fraction of examples classified as labelled."""
    return float(np.mean(predict(stack, x) == np.asarray(labels)))


def softmax_on_top(layer_params: list, data, labels, lam: float = 1e-4, steps: int = 100):
    """Trains the softmax on the top features (UFLDL: lambda 1e-4, 100 iterations); returns
    ``(stack, top_features)``."""
    if not layer_params:
        raise ValueError("layer_params is empty: softmax_on_top trains a softmax on the top "
                         "layer of pretrained autoencoders; pass their params (the "
                         "state.params of stacked.pretrain's results), or train a softmax on "
                         "the data itself with saejax.softmax.train_softmax.")
    layers = [{"W": jnp.asarray(p["W1"]), "b": jnp.asarray(p["b1"])} for p in layer_params]
    check_x(data, jnp.shape(layers[0]["W"])[1], "data")
    top = np.asarray(activations(layers, jnp.asarray(data, layers[0]["W"].dtype))[-1])
    theta, _ = train_softmax(top, labels, lam=lam, steps=steps)
    return assemble(layer_params, theta), top
