"""A linear probe of each member's hidden code: how well a softmax on its codes (the sigmoid
network's a2, a family member's f) predicts the labels."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from saejax.softmax import accuracy, train_softmax
from saejax.train.final import codes


def probe(rows: list, params: dict, data, labels, steps: int, configs: list) -> None:
    """Adds each member's ``probe_accuracy`` to its row: softmax regression (weight decay
    1e-4, ``steps`` L-BFGS iterations) on its codes of the first half of the data, as inference
    computes them with the member's own config (``configs``, one per row), scored on the second
    half. A diverged member scores NaN."""
    half = len(data) // 2
    check_split(labels)
    for i, row in enumerate(rows):
        if row["diverged"]:
            row["probe_accuracy"] = float("nan")
            continue
        member = {k: jnp.asarray(v[i]) for k, v in params.items()}
        features = np.asarray(codes(member, jnp.asarray(data, member["W1"].dtype), configs[i]))
        theta, _ = train_softmax(features[:half], labels[:half], lam=1e-4, steps=steps)
        row["probe_accuracy"] = accuracy(theta, features[half:], labels[half:])


def check_split(labels) -> None:
    """Raises unless the probe's training split, the first half of the rows, holds at least two
    classes (a sweep can call it before it trains, next to ``softmax.check_labels``)."""
    labels = np.asarray(labels)
    half = len(labels) // 2
    seen, every = np.unique(labels[:half]), np.unique(labels)
    if len(seen) < 2 <= len(every):  # a single class in all the labels: check_labels says so
        raise ValueError(
            f"the linear probe trains on the first half of the rows (rows 0 to {half - 1}) and "
            f"scores on the rest, but the labels of those {half} rows hold a single class "
            f"({seen.tolist()}), while all {len(labels)} labels hold {len(every)} classes. "
            "Shuffle the rows (data and labels with the same permutation) before the sweep, so "
            "that both halves hold every class.")
