"""Orbax checkpoints of training states, for runs and sweep blocks alike, as named trees.

Every pytree is saved as nested dicts named by its fields and keys (``named``): a run's
checkpoint is ``{"step", "params": {"W1", "b1", "W2", "b2"}, "opt_state": {...}, "key",
"since_fired", "sha256"}`` (``sha256``: the digest of the other arrays, checked on restore), so
plain orbax reads it without saejax::

    import orbax.checkpoint as ocp
    tree = ocp.StandardCheckpointer().restore("RUN/checkpoints/400/default")
    tree["params"]["W1"]                       # (H, N)

``Checkpointer.restore(like)`` puts the arrays back into ``like``'s structure (``unnamed``) and
refuses any that do not fit it, with a ``CheckpointError`` that never restarts a run silently.

Each saved tree carries ``"sha256"``, the digest of its arrays (``records.files.digest``) as 32
uint8, computed before the save and checked after every restore, so that a data file changed
on disk after it was written (which orbax reads without complaint) is refused, by name.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from saejax.records import files

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def failed_reads_settled(quiet: float = 0.1, longest: float = 2.0):
    """Around an orbax restore: when it fails, waits for tensorstore's reads still in flight.

    A failed restore returns at its first unreadable array and closes orbax's event loop while
    the other reads run on; each then calls back into the closed loop, which Python reports as
    "Exception ignored ... Event loop is closed" on stderr, after saejax's one-line error or in
    whatever runs next. Those reports only are dropped, until none has come for ``quiet``
    seconds since the failure (``longest`` at most); any other goes to the hook that was in
    place. A restore that succeeds does not wait."""
    previous = sys.unraisablehook
    last = [0.0]  # when the last such report came

    def hook(report):
        if isinstance(report.exc_value, RuntimeError) and str(report.exc_value) == (
                "Event loop is closed"):
            last[0] = time.perf_counter()
        else:
            previous(report)

    sys.unraisablehook = hook
    try:
        yield
    except Exception:
        start = time.perf_counter()
        while (time.perf_counter() - max(last[0], start) < quiet
               and time.perf_counter() - start < longest):
            time.sleep(0.01)
        raise
    finally:
        sys.unraisablehook = previous


def load_orbax():
    """orbax.checkpoint, imported on first use: only runs that save or restore pay for it."""
    import orbax.checkpoint

    return orbax.checkpoint


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: corrupt, incompatible, or missing when required."""


def _name(key) -> str:
    for attr in ("name", "key", "idx"):  # GetAttrKey, DictKey, SequenceKey
        if hasattr(key, attr):
            return str(getattr(key, attr))
    raise TypeError(f"cannot name the pytree key {key!r}")


def named(tree) -> dict:
    """``tree`` as nested dicts of NumPy arrays, keyed by its field names, dict keys and
    sequence positions (``"0"``, ``"1"``, ...); empty subtrees (None) are left out."""
    out: dict = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        node = out
        for key in path[:-1]:
            node = node.setdefault(_name(key), {})
        node[_name(path[-1])] = np.asarray(leaf)
    return out


DIGEST = "sha256"


def sealed(tree: dict) -> dict:
    """A ``named`` tree with its ``DIGEST`` added."""
    return {**tree, DIGEST: np.frombuffer(bytes.fromhex(files.digest(tree)), np.uint8)}


def unsealed(tree: dict, where: str, remedy) -> dict:
    """A restored tree without its ``DIGEST``, once the digest matches its arrays (a tree saved
    without one is taken as it is); otherwise a ``CheckpointError`` naming ``where`` and what to
    do, ``remedy()``."""
    tree = dict(tree)
    stored = tree.pop(DIGEST, None)
    if stored is not None and bytes(np.asarray(stored, np.uint8)).hex() != files.digest(tree):
        raise CheckpointError(
            f"{where} is corrupt: its arrays differ from the sha256 saved with them, so its files "
            f"changed after they were written. {remedy()}")
    return tree


def unnamed(tree: dict, like):
    """The arrays of a ``named`` tree in the structure of ``like``; KeyError when one of
    ``like``'s leaves has no array of its name. Shapes are taken as stored."""
    paths, treedef = jax.tree_util.tree_flatten_with_path(like)
    leaves = []
    for path, _ in paths:
        node = tree
        for key in path:
            node = node[_name(key)]
        leaves.append(node)
    return jax.tree.unflatten(treedef, leaves)


class Checkpointer:
    """A CheckpointManager in ``directory`` that keeps at most ``max_to_keep`` checkpoints.

    Orbax commits a checkpoint atomically (written aside, then renamed into place), so a
    process killed at any moment leaves its last finished checkpoint intact. A save returns
    once it is on disk, unless asked not to wait (a run's last one, written while the run draws
    its figures); ``close`` and the next save wait for it. With ``solo`` the
    calling process writes and reads on its own (no barrier with other processes): a
    multi-process sweep's process 0 saves its blocks, and every process reads them by itself.
    """

    def __init__(self, directory: str | Path, max_to_keep: int = 3, solo: bool = False):
        self.directory = Path(directory).absolute()
        self._max_to_keep, self._solo = max_to_keep, solo
        self._cached_manager = None

    @property
    def _manager(self):
        # Made on first use: a new run's first save comes after its first chunk of training, so
        # importing orbax (a second or more) overlaps training (runtime.progress.prefetch_imports).
        if self._cached_manager is None:
            ocp = load_orbax()
            solo = {}
            if self._solo:  # orbax creates no directory for a process acting alone
                self.directory.mkdir(parents=True, exist_ok=True)
                solo = {"multiprocessing_options": solo_options()}
            self._cached_manager = ocp.CheckpointManager(
                self.directory,
                options=ocp.CheckpointManagerOptions(
                    max_to_keep=self._max_to_keep,
                    enable_async_checkpointing=True,
                    create=not self._solo,
                    cleanup_tmp_directories=True,  # leftovers of a save that was killed
                    **solo,
                ),
            )
        return self._cached_manager

    def latest_step(self) -> int | None:
        """The step of the newest complete checkpoint, or None."""
        if self._cached_manager is None and not self.directory.exists():
            return None  # nothing saved yet: no need to start orbax to know it
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        if self._cached_manager is None and not self.directory.exists():
            return []
        return list(self._manager.all_steps())

    def save(self, step: int, tree, wait: bool = True) -> None:
        """Saves ``tree`` (any pytree of arrays) as checkpoint ``step``, a ``named`` tree; a
        save that does not ``wait`` writes host copies, so the arrays may change meanwhile."""
        if step in self._manager.all_steps():
            return
        tree = sealed(named(tree))
        if not wait:  # copies, never views of buffers a later computation may reuse
            tree = jax.tree.map(np.array, tree)
        self._manager.save(step, args=load_orbax().args.StandardSave(tree))
        if wait:
            self._manager.wait_until_finished()
        logger.info("saved checkpoint %d in %s", step, self.directory)

    def restore_named(self, step: int | None = None, remedy: str | None = None) -> dict:
        """Checkpoint ``step`` (default: the latest) as the ``named`` tree it was saved as.
        ``remedy``: what an error tells the user to do (default: ``fallback``, for resuming)."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(
                f"no checkpoint found in {self.directory}. Run without resume=True to start afresh."
            )
        advice = (lambda: remedy) if remedy else (lambda: self.fallback(step))
        try:
            with failed_reads_settled():
                tree = self._manager.restore(step, args=load_orbax().args.StandardRestore())
        except Exception as err:
            raise _unusable(self.directory, step, err, advice()) from err
        return unsealed(tree, f"checkpoint {step} in {self.directory}", advice)

    def fallback(self, step: int) -> str:
        """What deleting checkpoint ``step`` does to resuming: it falls back to the latest one
        before it, or, with none before it, starts again from step 0."""
        earlier = [s for s in self.all_steps() if s < step]
        if earlier:
            return f"Delete it: resuming then falls back to checkpoint {max(earlier)}."
        return ("It is the only checkpoint there: once it is deleted, resuming starts again "
                "from step 0; or start again in another directory.")

    def restore(self, like, step: int | None = None):
        """Restores checkpoint ``step`` (default: the latest) into the structure of ``like``, to
        resume.

        Raises:
          CheckpointError: when there is no checkpoint, or it cannot be read into ``like``'s
            structure, shapes and dtypes (a corrupt file, or one from another configuration).
        """
        step = self.latest_step() if step is None else step
        stored = self.restore_named(step)
        try:
            restored = unnamed(stored, like)
        except (KeyError, TypeError) as err:
            raise _unusable(self.directory, step, err, self.fallback(step)) from err
        _check_like(restored, like, self.directory, step)
        return jax.tree.map(jnp.asarray, restored)

    def close(self) -> None:
        """Waits for a save in flight, then releases orbax's manager."""
        if self._cached_manager is not None:
            self._cached_manager.wait_until_finished()
            self._cached_manager.close()


def solo_options():
    """Orbax options for a process that saves and reads on its own, with no barrier waiting
    for the other processes."""
    ocp = load_orbax()
    me = jax.process_index()
    return ocp.options.MultiprocessingOptions(primary_host=me, active_processes={me})


def save_tree(path: str | Path, tree) -> None:
    """Writes ``tree`` to ``path`` once (a sweep block's members), ``named``, by this process
    alone; the directory appears complete or not at all."""
    checkpointer = load_orbax().StandardCheckpointer(multiprocessing_options=solo_options())
    checkpointer.save(Path(path).absolute(), sealed(named(tree)), force=True)
    checkpointer.wait_until_finished()


# What to do about a sweep's member file that cannot be read.
SWEEP_MEMBERS_REMEDY = "Delete it; a sweep trains its block again on resume=True."


def restore_tree(path: str | Path) -> dict:
    """The ``named`` tree that ``save_tree`` wrote to ``path`` (a sweep's members), as NumPy
    arrays."""
    checkpointer = load_orbax().StandardCheckpointer(multiprocessing_options=solo_options())
    try:
        with failed_reads_settled():
            tree = jax.tree.map(np.asarray, checkpointer.restore(Path(path).absolute()))
    except Exception as err:  # orbax and tensorstore raise many kinds; each means unreadable
        raise CheckpointError(
            f"{path} cannot be read ({type(err).__name__}: {_first_line(err)}): it is corrupt. "
            f"{SWEEP_MEMBERS_REMEDY}") from err
    return unsealed(tree, str(path), lambda: SWEEP_MEMBERS_REMEDY)


def _unusable(directory, step, err, fallback: str) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {step} in {directory} cannot be restored "
        f"({type(err).__name__}: {_first_line(err)}). "
        "It is corrupt or was written by a different configuration (network size, "
        f"optimizer, dtype). {fallback}"
    )


def _first_line(err) -> str:
    return str(err).splitlines()[0] if str(err) else ""


def _check_like(restored, like, directory, step) -> None:
    """Shapes and dtypes of a restored tree must match the expected ones exactly."""
    got = jax.tree.map(lambda a: (np.shape(a), str(np.asarray(a).dtype)), restored)
    want = jax.tree.map(lambda a: (np.shape(a), str(a.dtype)), like)
    if got != want:
        raise CheckpointError(
            f"checkpoint {step} in {directory} cannot be restored: it does not match this "
            f"run's configuration (shapes/dtypes differ). Start a new run in another workdir=."
        )
