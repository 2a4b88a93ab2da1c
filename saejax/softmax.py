"""Softmax regression on features (UFLDL's softmaxCost / softmaxTrain), trained with L-BFGS.

For features x_k (D,) and labels y_k in {0, ..., K-1}:

    p(y = c | x) = exp(W_c x + b_c) / sum_c' exp(W_c' x + b_c')
    J(W, b) = -(1/m) sum_k log p(y_k | x_k) + (lam/2) ||W||_F^2      (the bias is not decayed)

Training is full-batch ``optax.lbfgs`` with its zoom line search (``optim.fit``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from saejax.optim.fit import lbfgs_scan


def softmax_loss(theta: dict, features_MxD, labels_M, lam):
    """J of softmax regression; theta = {"W": (K, D), "b": (K,)}, labels are class indices."""
    logits_MxK = features_MxD @ theta["W"].T + theta["b"][None, :]
    log_p_MxK = jax.nn.log_softmax(logits_MxK, axis=1)
    nll = -jnp.mean(jnp.take_along_axis(log_p_MxK, labels_M[:, None], axis=1))
    return nll + 0.5 * lam * jnp.sum(theta["W"] ** 2)


def check_labels(features, labels) -> tuple[np.ndarray, np.ndarray, int]:
    """Validates features (M, D) and integer labels (M,); returns them and the class count."""
    features, labels = np.asarray(features), np.asarray(labels)
    if features.ndim != 2:
        raise ValueError(f"features must be 2-D (examples, features), got shape {features.shape}.")
    if labels.ndim != 1 or len(labels) != len(features):
        raise ValueError(
            f"there are {len(features)} examples but {labels.shape} labels; pass one integer "
            "label per example (row)."
        )
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise ValueError("labels must be non-negative integers (class indices).")
    if not np.all(np.isfinite(features)):
        raise ValueError("features contain NaN or Inf; clean them first.")
    classes = np.unique(labels)
    if len(classes) < 2:
        raise ValueError(
            f"the labels hold a single class ({classes.tolist()}): a classifier needs at least "
            "two classes to train."
        )
    return features, labels, int(labels.max()) + 1


def _fit_impl(features, labels, lam, num_classes: int, steps: int):
    d = features.shape[1]
    theta = {"W": jnp.zeros((num_classes, d), features.dtype),
             "b": jnp.zeros((num_classes,), features.dtype)}
    return lbfgs_scan(lambda t: softmax_loss(t, features, labels, lam), theta, steps)


# by call, not as a decorator: mutmut reaches the body
_fit = jax.jit(_fit_impl, static_argnames=("num_classes", "steps"))


class SoftmaxFit(NamedTuple):
    """What ``train_softmax`` returns; unpacks as ``theta, info = ...``."""

    theta: dict  # {"W": (K, D), "b": (K,)}
    info: dict  # the final loss, the number of classes, the iterations


def train_softmax(features, labels, lam: float = 1e-4, steps: int = 400) -> SoftmaxFit:
    """Fits softmax regression by full-batch L-BFGS.

    Args:
      features: (M, D) inputs, finite.
      labels: (M,) integer class indices; at least two classes.
      lam: weight decay on W (UFLDL uses 1e-4).
      steps: L-BFGS iterations.

    Returns:
      ``SoftmaxFit(theta, info)``: theta = {"W": (K, D), "b": (K,)} and info with J of that
      theta ("loss"), the class count and the iterations; ``predict`` and ``accuracy`` take
      either the fit or its theta.

    Raises:
      ValueError: labels that do not match the features in count, a single class, NaN features.
    """
    features, labels, k = check_labels(features, labels)
    x, y = jnp.asarray(features), jnp.asarray(labels, jnp.int32)
    lam = jnp.asarray(lam, features.dtype)
    theta, _, loss = _fit(x, y, lam, k, int(steps))  # loss: J of the theta returned
    return SoftmaxFit(theta, {"loss": float(loss), "num_classes": k, "steps": int(steps)})


def predict(theta, features) -> np.ndarray:
    """The most probable class of each row of ``features`` (M, D); ``theta`` is a
    ``SoftmaxFit`` or its ``theta`` dict."""
    if isinstance(theta, SoftmaxFit):
        theta = theta.theta
    if not isinstance(theta, dict) or not {"W", "b"} <= set(theta):
        raise ValueError(f"theta must be train_softmax's result or its theta dict "
                         f"{{'W': (K, D), 'b': (K,)}}, got {type(theta).__name__}.")
    logits = jnp.asarray(features) @ theta["W"].T + theta["b"][None, :]
    return np.asarray(jnp.argmax(logits, axis=1))


def accuracy(theta, features, labels) -> float:
    """Fraction of examples whose predicted class equals the label (``theta`` as ``predict``)."""
    return float(np.mean(predict(theta, features) == np.asarray(labels)))
