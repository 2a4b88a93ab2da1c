"""Minibatches of a stream (``data.stream``) fed to a compiled chunk a piece at a time: the host
reads the next piece from the shards while the device trains on this one.

    feed = Feed(stream, batch_size, dtype)
    for length, batches in feed.pieces(key, step, n):     batches (length, B, N) on the device
        state, rows = train_chunk(state, batches, hyper, num_steps=length)

The indices are ``train.step.minibatch_indices`` of each step, the ones the in-memory chunk
draws, so a streamed run trains on the same batches as the run of the loaded array.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from saejax.data.errors import check_finite
from saejax.train.step import minibatch_indices

# Most bytes of minibatches read in one piece (all members' when each draws its own).
PIECE_BYTES = 64 << 20


@partial(jax.jit, static_argnames=("n", "batch_size", "m"))
def chunk_indices(key_data, first_step, n: int, batch_size: int, m: int):
    """(n, B) indices of steps ``first_step`` .. ``first_step + n - 1``; with a leading member
    axis on ``key_data`` (G, 2) and ``first_step`` (G,), (G, n, B)."""
    def one(key, step):
        steps = step + jnp.arange(n, dtype=jnp.asarray(step).dtype)
        return jax.vmap(lambda s: minibatch_indices(key, s, batch_size, m))(steps)

    if key_data.ndim == 2:
        return jax.vmap(one)(key_data, first_step)
    return one(key_data, first_step)


def check_config(config) -> None:
    """A ``ValueError`` unless ``config`` trains by minibatches, which a stream can feed."""
    if config.batch_size is None or config.optimizer == "lbfgs":
        raise ValueError(f"the data are read a minibatch at a time, but {config.optimizer} with "
                         f"batch_size {config.batch_size} needs every row at once: load the rows "
                         "(saejax.data.load_array), or train with a minibatch optimizer (adam, "
                         "sgd, momentum) and a batch_size.")


class Feed:
    """Reads a stream's minibatches and places them on the device (``place``: ``jnp.asarray``,
    or a sweep's sharded ``put``)."""

    def __init__(self, stream, batch_size: int, dtype, place=jnp.asarray,
                 piece_bytes: int | None = None):
        self.stream, self.batch_size, self.dtype = stream, int(batch_size), np.dtype(dtype)
        self.place, self.piece_bytes = place, piece_bytes or PIECE_BYTES

    def piece_steps(self, members: int = 1) -> int:
        """Steps per piece: as many as ``piece_bytes`` holds, at least one."""
        step_bytes = members * self.batch_size * self.stream.shape[1] * self.dtype.itemsize
        return max(1, self.piece_bytes // step_bytes)

    def pieces(self, key_data, first_step, n: int):
        """``(length, batches)`` for steps ``first_step`` .. ``first_step + n - 1`` in pieces;
        ``key_data`` (G, 2) and ``first_step`` (G,) give each of G members its own batches
        (G, length, B, N)."""
        key_data, first_step = np.asarray(key_data), np.asarray(first_step)
        members = key_data.shape[0] if key_data.ndim == 2 else 1
        idx = np.asarray(chunk_indices(key_data, first_step, n, self.batch_size,
                                       len(self.stream)))
        step_axis = idx.ndim - 2
        per = self.piece_steps(members)
        starts = list(range(0, n, per))

        def read(start):
            part = np.take(idx, np.arange(start, min(start + per, n)), axis=step_axis)
            batches = self.stream.take(part)
            # the evaluation rows were checked; these may be others
            check_finite(batches, f"the activations in {self.stream.home}")
            return part.shape[step_axis], batches.astype(self.dtype, copy=False)

        # one reader thread, ended when the pieces are (or the generator is dropped)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="saejax-feed") as reader:
            pending = reader.submit(read, starts[0])
            for i in range(len(starts)):
                length, batches = pending.result()
                if i + 1 < len(starts):  # read the next piece while this one trains
                    pending = reader.submit(read, starts[i + 1])
                yield length, self.place(batches)


def run_pieces(call, state, feed: Feed, hyper, n: int, axis: int = 0):
    """``call(state, batches, hyper, length) -> (state, rows)`` over the pieces of ``n`` steps,
    the rows joined along the step ``axis`` (1 for a sweep's members)."""
    from saejax.runtime.hosts import fetch

    outs = []
    for length, batches in feed.pieces(*fetch((state.key, state.step)), n):
        state, rows = call(state, batches, hyper, length)
        outs.append(rows)
    if len(outs) == 1:
        return state, outs[0]
    return state, jax.tree.map(lambda *a: jnp.concatenate(a, axis=axis), *outs)
