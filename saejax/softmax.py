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

from saejax.checks import check_count, check_nonnegative, check_rows, check_x
from saejax.optim.fit import lbfgs_scan


def softmax_loss(theta: dict, features_MxD, labels_M, lam):
    """J of softmax regression; theta = {"W": (K, D), "b": (K,)}, labels are class indices."""
    logits_MxK = features_MxD @ theta["W"].T + theta["b"][None, :]
    log_p_MxK = jax.nn.log_softmax(logits_MxK, axis=1)
    nll = -jnp.mean(jnp.take_along_axis(log_p_MxK, labels_M[:, None], axis=1))
    return nll + 0.5 * lam * jnp.sum(theta["W"] ** 2)


def check_labels(features, labels, num_classes: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray, int]:
    """Validates features (M, D) and integer labels (M,); returns them and the class count.

    Integer or boolean features come back as floats (float64 when x64 is on, else float32), so
    that the weights and lam are not cast to integers. With ``num_classes`` (a trained softmax's
    K) every label must lie in [0, K), and K is the count returned; without it, the count is
    the largest label plus one.
    """
    features, labels = np.asarray(features), np.asarray(labels)
    if features.ndim != 2:
        raise ValueError(f"features must be 2-D (examples, features), got shape {features.shape}.")
    check_rows(features, "features")
    if labels.ndim != 1 or len(labels) != len(features):
        raise ValueError(
            f"there are {len(features)} examples but {labels.shape} labels; pass one integer "
            "label per example (row)."
        )
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise ValueError("labels must be non-negative integers (class indices).")
    if num_classes is not None and labels.max() >= num_classes:
        raise ValueError(
            f"labels must lie in [0, {num_classes}) for a softmax of {num_classes} classes; the "
            f"labels hold {int(labels.max())}. Pass labels numbered from 0, or a softmax with "
            "a class for each label."
        )
    classes = np.unique(labels)
    if len(classes) < 2:
        raise ValueError(
            f"the labels hold a single class ({classes.tolist()}): a classifier needs at least "
            "two classes to train."
        )
    if not np.issubdtype(features.dtype, np.floating):
        features = features.astype(np.float64 if jax.config.jax_enable_x64 else np.float32)
    return features, labels, int(labels.max()) + 1 if num_classes is None else num_classes


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
      lam: weight decay on W (UFLDL uses 1e-4), finite and >= 0.
      steps: L-BFGS iterations, at least 1.

    Returns:
      ``SoftmaxFit(theta, info)``: theta = {"W": (K, D), "b": (K,)} and info with J of that
      theta ("loss"), the class count and the iterations; ``predict`` and ``accuracy`` take
      either the fit or its theta.

    Raises:
      ValueError: labels that do not match the features in count, a single class, NaN
        features, no examples, a negative or NaN lam, fewer than one step.
    """
    features, labels, k = check_labels(features, labels)
    check_nonnegative("lam", lam)
    steps = check_count("steps", steps)
    x, y = jnp.asarray(features), jnp.asarray(labels, jnp.int32)
    lam = jnp.asarray(lam, features.dtype)
    theta, _, loss = _fit(x, y, lam, k, steps)  # loss: J of the theta returned
    return SoftmaxFit(theta, {"loss": float(loss), "num_classes": k, "steps": steps})


def predict(theta, features) -> np.ndarray:
    """The most probable class of each row of ``features`` (M, D); ``theta`` is a
    ``SoftmaxFit`` or its ``theta`` dict."""
    if isinstance(theta, SoftmaxFit):
        theta = theta.theta
    if not isinstance(theta, dict) or not {"W", "b"} <= set(theta):
        raise ValueError(f"theta must be train_softmax's result or its theta dict "
                         f"{{'W': (K, D), 'b': (K,)}}, got {type(theta).__name__}.")
    check_x(features, jnp.shape(theta["W"])[1], name="features")
    logits = jnp.asarray(features) @ theta["W"].T + theta["b"][None, :]
    return np.asarray(jnp.argmax(logits, axis=1))


def accuracy(theta, features, labels) -> float:
    """Fraction of examples whose predicted class equals the label (``theta`` as ``predict``)."""
    return float(np.mean(predict(theta, features) == np.asarray(labels)))
