"""Arrays across processes: the collectives a multi-process sweep needs.

With one process each is a plain device transfer. After ``jax.distributed.initialize()``,
``put`` builds a global array from a host array that every process holds whole, ``fetch``
gathers sharded arrays whole onto every host, and ``agreed`` makes every process take process
0's decision (when to checkpoint), so that all of them call the same collectives;
``on_writer`` runs what process 0 alone does (claiming the directory) and stops every process
when it fails, so that none goes on to wait for a process that stopped.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import NamedSharding


def put(array: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A global array from a host array that every process holds whole (data, grid values)."""
    return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])


def fetch(tree):
    """Host copies of (possibly multi-host) sharded arrays, gathered whole."""
    if jax.process_count() == 1:
        return jax.device_get(tree)
    from jax.experimental import multihost_utils

    return multihost_utils.process_allgather(tree, tiled=True)


def agreed(flag: bool) -> bool:
    """Process 0's ``flag`` on every process (a collective when there are several)."""
    if jax.process_count() == 1:
        return flag
    from jax.experimental import multihost_utils

    return bool(multihost_utils.broadcast_one_to_all(np.asarray(flag)))


def is_writer() -> bool:
    """Whether this process writes the run directory: process 0 alone does."""
    return jax.process_index() == 0


def failed_processes(failed: bool) -> list[int]:
    """The processes whose ``failed`` is true (a collective when there are several)."""
    if jax.process_count() == 1:
        return [0] if failed else []
    from jax.experimental import multihost_utils

    flags = multihost_utils.process_allgather(np.asarray(failed))
    return [int(i) for i in np.flatnonzero(np.ravel(flags))]


def on_every(action, refused: str):
    """``action()`` on every process (its result). When it raises on any, every process
    raises: those it raised on their own error, the others a ValueError saying ``refused`` and
    naming the processes (whose own output says why)."""
    result, error = None, None
    try:
        result = action()
    except Exception as caught:  # noqa: BLE001 - re-raised below, after the others learn
        error = caught
    failed = failed_processes(error is not None)
    if error is not None:
        raise error
    if failed:
        many = len(failed) > 1
        raise ValueError(f"{refused} on process{'es' if many else ''} "
                         f"{', '.join(map(str, failed))}; {'their' if many else 'its'} output "
                         "says why.")
    return result


def on_writer(action, refused: str):
    """``action()`` on process 0 (its result there; None on the others). When it raises, every
    process raises: process 0 its own error, the others a ValueError saying ``refused`` (which
    names what process 0 could not do; its own output says why)."""
    result, error = None, None
    if is_writer():
        try:
            result = action()
        except Exception as caught:  # noqa: BLE001 - re-raised below, after the others learn
            error = caught
    if not agreed(error is None):
        if error is not None:
            raise error
        raise ValueError(f"{refused}; process 0's output says why.")
    return result
