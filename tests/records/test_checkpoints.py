"""records.checkpoints: a run's checkpoint read by plain orbax by name, restored bitwise, and
refused when corrupt or of another shape."""

import jax
import numpy as np
import pytest
from helpers import small_config, tiny_data

from saejax import train
from saejax.pytree import pytree_dataclass
from saejax.records import checkpoints
from saejax.records.checkpoints import Checkpointer, CheckpointError


@pytest.mark.slow
def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    x = tiny_data()
    cfg = small_config(steps=5)
    train.run(cfg, x, tmp_path, progress=False)
    for f in (tmp_path / "checkpoints" / "5").rglob("*"):
        if f.is_file() and f.name not in ("_CHECKPOINT_METADATA", "commit_success.txt"):
            f.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="cannot be restored"):
        train.run(cfg.replace(steps=10), x, tmp_path, resume=True, progress=False)


@pytest.mark.parametrize("optimizer", [pytest.param("lbfgs", marks=pytest.mark.slow), "adam"])
def test_plain_orbax_reads_a_run_checkpoint_by_name(tmp_path, optimizer):
    import orbax.checkpoint as ocp

    cfg = small_config(optimizer=optimizer, batch_size=None, steps=4)
    state = train.run(cfg, tiny_data(), tmp_path / "run", progress=False).state
    # a user who knows orbax, not saejax: no target, the params under their names
    tree = ocp.StandardCheckpointer().restore((tmp_path / "run" / "checkpoints" / "4" /
                                               "default").absolute())
    assert set(tree) == {"step", "params", "opt_state", "key", "since_fired", "sha256"}
    assert tree["sha256"].dtype == np.uint8 and tree["sha256"].shape == (32,)
    assert int(tree["step"]) == 4
    for k, v in state.params.items():
        np.testing.assert_array_equal(tree["params"][k], v)
    if optimizer == "lbfgs":  # the L-BFGS memory by its names too
        assert {"S", "Y", "value", "grad", "stop"} <= set(tree["opt_state"])
    # and saejax restores it into the state's structure bitwise
    like = train.init_state(cfg, tiny_data().shape[1])
    restored = Checkpointer(tmp_path / "run" / "checkpoints").restore(like)
    assert jax.tree.structure(restored) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(state), strict=True):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
    # a state of another shape (more hidden units) is refused, not reshaped
    other = train.init_state(cfg.replace(n_hidden=cfg.n_hidden + 1), tiny_data().shape[1])
    with pytest.raises(CheckpointError, match="cannot be restored"):
        Checkpointer(tmp_path / "run" / "checkpoints").restore(other)


@pytree_dataclass
class Pair:
    first: object
    second: object


def mixed_tree():
    """Tuples, dict keys, a dataclass and None subtrees: every kind of node a state holds."""
    return {"step": np.int32(7),
            "params": {"W1": np.arange(6.0).reshape(2, 3), "b1": np.zeros(2, np.float32)},
            "opt_state": (np.ones(3), None, (np.full(2, 5, np.int64),)),
            "pair": Pair(first=np.array([1.5]), second=None)}


def test_named_names_every_leaf_by_its_path_and_leaves_out_none():
    named = checkpoints.named(mixed_tree())
    assert set(named) == {"step", "params", "opt_state", "pair"}
    np.testing.assert_array_equal(named["params"]["W1"], np.arange(6.0).reshape(2, 3))
    assert set(named["opt_state"]) == {"0", "2"}  # position 1 held None
    np.testing.assert_array_equal(named["opt_state"]["2"]["0"], [5, 5])
    assert named["pair"] == {"first": np.array([1.5])}
    assert all(isinstance(v, np.ndarray) for v in jax.tree.leaves(named))


def test_unnamed_puts_a_named_tree_back_into_its_structure():
    tree = mixed_tree()
    back = checkpoints.unnamed(checkpoints.named(tree), tree)
    assert jax.tree.structure(back) == jax.tree.structure(tree)
    for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(tree), strict=True):
        np.testing.assert_array_equal(a, b)
        assert np.asarray(a).dtype == np.asarray(b).dtype
    other = {**tree, "params": {**tree["params"], "W2": np.zeros((3, 2))}}
    with pytest.raises(KeyError, match="W2"):
        checkpoints.unnamed(checkpoints.named(tree), other)  # a leaf the tree does not hold


def test_save_tree_and_restore_tree_round_trip(tmp_path):
    tree = mixed_tree()
    checkpoints.save_tree(tmp_path / "block", tree)
    back = checkpoints.restore_tree(tmp_path / "block")
    want = checkpoints.named(tree)
    assert jax.tree.structure(back) == jax.tree.structure(want)
    for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(want), strict=True):
        assert isinstance(a, np.ndarray) and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_an_empty_directory_has_no_checkpoint_and_is_left_unmade(tmp_path):
    ckpt = Checkpointer(tmp_path / "checkpoints")
    assert ckpt.latest_step() is None and ckpt.all_steps() == []
    with pytest.raises(CheckpointError, match="no checkpoint found in .*Run without resume=True"):
        ckpt.restore({"x": np.zeros(2)})
    assert not (tmp_path / "checkpoints").exists()


def test_a_checkpoint_restores_only_into_its_own_shapes_and_dtypes(tmp_path):
    ckpt = Checkpointer(tmp_path / "checkpoints", max_to_keep=2)
    tree = {"x": np.arange(3.0), "n": np.int32(4)}
    for step in (1, 2, 3):
        ckpt.save(step, {"x": tree["x"] * step, "n": tree["n"]})
    ckpt.save(3, {"x": np.full(3, -1.0), "n": np.int32(0)})  # a step already saved: kept as is
    assert ckpt.all_steps() == [2, 3] and ckpt.latest_step() == 3
    np.testing.assert_array_equal(ckpt.restore(tree)["x"], [0.0, 3.0, 6.0])
    np.testing.assert_array_equal(ckpt.restore(tree, step=2)["x"], [0.0, 2.0, 4.0])
    with pytest.raises(CheckpointError, match="does not match this run's configuration"):
        ckpt.restore({"x": np.arange(3, dtype=np.float32), "n": np.int32(4)})
    with pytest.raises(CheckpointError, match="does not match"):
        ckpt.restore({"x": np.arange(4.0), "n": np.int32(4)})
    ckpt.close()


def test_a_failed_read_waits_for_its_stray_callbacks_and_drops_only_theirs(monkeypatch):
    # What orbax leaves behind a failed restore, played by threads: two reads in flight report
    # "Event loop is closed" after the error (dropped); another report goes on to the hook.
    import sys
    import threading
    import time
    from types import SimpleNamespace

    seen = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)

    def report_later(delay, err):
        time.sleep(delay)
        sys.unraisablehook(SimpleNamespace(exc_value=err))

    other = ValueError("not orbax's")
    reports = [(0.02, RuntimeError("Event loop is closed")), (0.03, other),
               (0.06, RuntimeError("Event loop is closed"))]
    threads = [threading.Thread(target=report_later, args=r) for r in reports]
    with pytest.raises(OSError, match="unreadable"):
        with checkpoints.failed_reads_settled(quiet=0.5):
            for t in threads:
                t.start()
            raise OSError("unreadable")
    assert not any(t.is_alive() for t in threads)  # it waited for the last of them
    assert [r.exc_value for r in seen] == [other]
    assert sys.unraisablehook == seen.append  # the hook in place before is back
    with checkpoints.failed_reads_settled():  # a read that succeeds
        pass
    assert sys.unraisablehook == seen.append
