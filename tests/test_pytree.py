"""pytree.pytree_dataclass: a frozen dataclass whose fields are pytree children, so jit, vmap and
tree maps see through it."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from saejax.pytree import pytree_dataclass


@pytree_dataclass
class Point:
    x: object
    y: object


def test_replace_makes_a_new_instance_and_fields_are_frozen():
    p = Point(x=1.0, y=jnp.arange(2.0))
    q = p.replace(x=5.0)
    assert q.x == 5.0 and q.y is p.y and p.x == 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.x = 2.0


def test_every_field_is_a_leaf_in_declaration_order():
    p = Point(x=jnp.ones(3), y={"a": jnp.zeros(2), "b": None})
    leaves, treedef = jax.tree.flatten(p)
    assert [leaf.shape for leaf in leaves] == [(3,), (2,)]  # None is an empty subtree
    back = jax.tree.unflatten(treedef, [leaf + 1 for leaf in leaves])
    assert isinstance(back, Point) and back.y["b"] is None
    np.testing.assert_array_equal(back.y["a"], [1.0, 1.0])
    doubled = jax.tree.map(lambda a: 2 * a, Point(x=jnp.asarray(1.5), y=jnp.asarray(-2.0)))
    assert (float(doubled.x), float(doubled.y)) == (3.0, -4.0)


def test_vmap_over_one_field_and_jit_through_it():
    # x batched (3 members), y shared: f = x . y per member, against NumPy
    xs, y = np.arange(6.0).reshape(3, 2), np.array([0.5, -1.0])
    f = jax.vmap(lambda p: p.x @ p.y, in_axes=(Point(x=0, y=None),))
    np.testing.assert_allclose(f(Point(x=jnp.asarray(xs), y=jnp.asarray(y))), xs @ y)
    traces = []

    @jax.jit
    def g(p):
        traces.append(None)
        return p.replace(x=p.x * p.y)

    out = g(Point(x=jnp.asarray(2.0), y=jnp.asarray(3.0)))
    assert isinstance(out, Point) and float(out.x) == 6.0
    g(Point(x=jnp.asarray(4.0), y=jnp.asarray(5.0)))
    assert len(traces) == 1  # field values are traced, not baked in
