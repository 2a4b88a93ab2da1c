"""Frozen dataclasses that are JAX pytrees: every field a leaf (or a subtree), plus ``replace``.

``jax.tree_util.register_dataclass`` does the registration; this saves importing Flax (and its
Linen) in every process just for ``flax.struct``.
"""

from __future__ import annotations

import dataclasses

import jax


def pytree_dataclass(cls):
    """``@dataclass(frozen=True)`` registered as a pytree whose fields are all data."""
    cls = dataclasses.dataclass(frozen=True)(cls)
    cls.replace = lambda self, **changes: dataclasses.replace(self, **changes)
    return jax.tree_util.register_dataclass(cls)
