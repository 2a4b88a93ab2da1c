"""runtime.hosts in one process: put builds the array it was given, fetch brings it back whole,
and process 0's decision is everyone's."""

import jax
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from saejax.runtime import hosts


def mesh():
    return Mesh(np.array(jax.devices()[:1]), ("members",))


def test_fetch_of_put_is_the_array():
    x = np.arange(12.0).reshape(4, 3)
    for spec in (P(), P("members")):
        sharding = NamedSharding(mesh(), spec)
        array = hosts.put(x, sharding)
        assert isinstance(array, jax.Array) and array.sharding == sharding
        back = hosts.fetch(array)
        assert isinstance(back, np.ndarray) and back.dtype == x.dtype
        np.testing.assert_array_equal(back, x)


def test_fetch_keeps_the_structure_of_a_tree():
    sharding = NamedSharding(mesh(), P("members"))
    seeds, lrs = np.array([3, 1, 4], np.int32), np.array([0.1, 0.01, 0.001])
    tree = {"seed": hosts.put(seeds, sharding), "lr": (hosts.put(lrs, sharding), None)}
    back = hosts.fetch(tree)
    assert jax.tree.structure(back) == jax.tree.structure(tree)
    np.testing.assert_array_equal(back["seed"], seeds)
    np.testing.assert_array_equal(back["lr"][0], lrs)


def test_one_process_agrees_with_itself_and_writes():
    assert hosts.agreed(True) is True and hosts.agreed(False) is False
    assert hosts.is_writer()


def test_one_process_runs_each_action_once_and_keeps_its_own_error():
    # several processes are tested in tests/cross/test_processes.py
    calls = []
    assert hosts.on_every(lambda: calls.append("every") or 3, "refused") == 3
    assert hosts.on_writer(lambda: calls.append("writer") or 4, "refused") == 4
    assert calls == ["every", "writer"]
    assert hosts.failed_processes(True) == [0] and hosts.failed_processes(False) == []

    def fails():
        raise FileNotFoundError("no such data")

    for run in (hosts.on_every, hosts.on_writer):
        with pytest.raises(FileNotFoundError, match="no such data"):
            run(fails, "refused")
