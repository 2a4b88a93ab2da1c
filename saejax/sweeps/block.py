"""Training one block of members to the end: chunks of the compiled sweep program, L-BFGS
runners packed into smaller blocks as members stop, and checkpoints of the whole block.

L-BFGS members stop at different iterations. Whenever a quarter of the block's slots hold
stopped members, the runners are packed into a smaller block (sizes fall in quarters of the
first, so at most three more compilations), and the stopped members wait on the host without
their L-BFGS memory.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from saejax import optim
from saejax.losses import Hyper
from saejax.runtime.clock import SaveClock
from saejax.runtime.hosts import agreed, fetch, put
from saejax.schema import HYPER
from saejax.sweeps.program import without_memory
from saejax.train.state import count_arrays, stopped
from saejax.train.step import chunk_lengths


@dataclass
class Block:
    """A block of members in training, as packed on the devices.

    ``live[i]`` is the block slot whose member sits in slot i (-1: padding); ``done`` maps the
    block slots of stopped members to their host states; ``diverged`` is per block slot.
    """

    states: object
    hyper: Hyper
    live: np.ndarray
    done: dict
    diverged: np.ndarray
    steps_done: int = 0

    def to_tree(self) -> dict:
        """The block as one pytree of host arrays (every process takes part in the gather)."""
        states, hyper = fetch((self.states, self.hyper))
        template = jax.tree.map(lambda a: np.zeros_like(a[0] if a.ndim else a),
                                without_memory(states))
        slots = len(self.diverged)
        waiting = [self.done.get(j, template) for j in range(slots)]
        return {"states": states,
                "hyper": {k: np.asarray(getattr(hyper, k)) for k in HYPER
                          if getattr(hyper, k) is not None},
                "waiting": jax.tree.map(lambda *a: np.stack(a), *waiting),
                "is_waiting": np.isin(np.arange(slots), list(self.done)),
                "live": np.asarray(self.live), "diverged": np.asarray(self.diverged)}

    @classmethod
    def from_tree(cls, tree: dict, step: int, shared: bool, by_member: NamedSharding) -> Block:
        """The block that ``to_tree`` gave, back on the devices."""
        replicated = NamedSharding(by_member.mesh, P())
        states = jax.tree.map(lambda a: put(np.asarray(a), by_member if np.ndim(a) else
                                            replicated), tree["states"])
        if shared:  # the step and minibatch key are one for all members
            states = states.replace(step=put(np.asarray(states.step), replicated),
                                    key=put(np.asarray(states.key), replicated))
        hyper = Hyper(**{k: put(np.asarray(v), by_member) for k, v in tree["hyper"].items()})
        done = {int(j): jax.tree.map(lambda a, j=j: np.asarray(a)[j], tree["waiting"])
                for j in np.flatnonzero(np.asarray(tree["is_waiting"]))}
        return cls(states, hyper, np.asarray(tree["live"]), done,
                   np.asarray(tree["diverged"]).astype(bool), step)


def train_block(run_chunk, states, hyper, data, config, shared, by_member, bar, label,
                after_first=None, store=None):
    """Trains one block of members to the end; returns ``(states, diverged)`` in block order.

    Args:
      run_chunk: the compiled sweep chunk (``sweeps.program``).
      states, hyper: the block's fresh member states and hyperparameters, on the devices.
      data: the training data, replicated on every device.
      config: the settings the members share.
      shared: every member draws the same minibatches (one seed): the step and key are shared.
      by_member: the sharding of the member axis.
      bar, label: the progress bar and this block's name on it.
      after_first: called once the first chunk has run (imports that overlap training).
      store: ``BlockCheckpoints``; the block is saved at the first chunk end at or after each
        multiple of ``config.checkpoint_every``, at most once in ``config.checkpoint_seconds``
        (process 0's clock decides for every process), and a saved one is continued from.
    """
    size = len(hyper.rho)
    n_dev = by_member.mesh.devices.size
    quarter = n_dev * math.ceil(size / (4 * n_dev))
    block = Block(states, hyper, np.arange(size), {}, np.zeros(size, bool))
    if store is not None and store.latest() is not None:
        step = store.latest()
        like = {"states": states, "waiting": without_memory(states)}
        block = Block.from_tree(store.restore(like), step, shared, by_member)
        bar.update(step)
    clock = SaveClock(config.checkpoint_seconds)
    lbfgs = config.optimizer == "lbfgs"
    for n in chunk_lengths(block.steps_done, config.steps, config.steps_per_call):
        end = block.steps_done + n
        _run_to(end, n, run_chunk, block, data, config, shared, quarter, by_member, after_first)
        after_first = None
        block.steps_done = end
        bar.update(n)
        bar.set_postfix(block=label, diverged=int(block.diverged.sum()))
        if lbfgs and bool(np.all(fetch(stopped(block.states)) | (block.live < 0))):
            bar.update(config.steps - end)  # all have stopped
            break
        if store is not None and end < config.steps and agreed(
                clock.at(end, config.checkpoint_every, end - n)):
            store.save(end, block.to_tree())
            clock.saved()
    return _unpacked(block, by_member), block.diverged


def _run_to(end, n, run_chunk, block, data, config, shared, quarter, by_member, after_first):
    """Runs the block's members to iteration ``end``; L-BFGS packs its runners on the way."""
    lbfgs = config.optimizer == "lbfgs"
    size = len(block.live)
    exit_at = size - quarter if lbfgs and size > quarter else 0
    while True:
        block.states, metrics = run_chunk(block.states, data, block.hyper, num_steps=n,
                                          shared_batches=shared, end=end if lbfgs else None,
                                          exit_at=exit_at)
        if after_first is not None:
            after_first()
            after_first = None
        loss, valid = fetch((metrics["loss"], metrics["valid"]))  # (size, n)
        bad = ~np.where(valid, np.isfinite(loss), True).all(axis=1)
        live = block.live
        block.diverged[live[live >= 0]] |= bad[live >= 0]
        if exit_at == 0:
            return
        step, _, stop = fetch(count_arrays(block.states))
        alive = (stop == optim.RUNNING) & (block.live >= 0)
        if not np.any(alive & (step < end)):
            return
        if quarter * math.ceil(alive.sum() / quarter) < len(block.live):
            pack(block, alive, quarter, by_member)
        size = len(block.live)
        exit_at = size - quarter if size > quarter else 0
        if exit_at >= np.sum(alive & (step < end)):
            exit_at = 0  # the stragglers sit at end: no smaller block before the next chunk


def pack(block: Block, alive, quarter, by_member) -> None:
    """The members still alive, packed into the smallest block of whole quarters.

    The stopped members go to the host without their L-BFGS memory (they never tick again);
    the runners are gathered on the devices, so no memory crosses to the host and back (at
    784-196 it is 247 MB a member).
    """
    host = fetch(without_memory(block.states))
    for i in np.flatnonzero(~alive & (block.live >= 0)):
        block.done[block.live[i]] = jax.tree.map(lambda a, i=i: a[i], host)
    keep = np.flatnonzero(alive)
    size = quarter * math.ceil(len(keep) / quarter)
    slots = np.concatenate([keep, np.full(size - len(keep), keep[0])])  # padding: copies...
    stop = np.asarray(host.opt_state.stop)[slots]
    stop[len(keep):] = optim.BUDGET  # ...that never move
    replicated = NamedSharding(by_member.mesh, P())
    take = _take(by_member)
    slots = put(slots.astype(np.int32), replicated)
    packed = take(block.states, slots)
    block.states = packed.replace(opt_state=packed.opt_state.replace(stop=put(stop, by_member)))
    block.hyper = take(block.hyper, slots)
    block.live = np.concatenate([block.live[keep], np.full(size - len(keep), -1)])


@functools.cache
def _take(by_member: NamedSharding):
    """``take(tree, slots)``: the members in ``slots`` of every leaf, on the devices."""
    return jax.jit(lambda tree, slots: jax.tree.map(lambda a: a[slots], tree),
                   out_shardings=by_member)


def _unpacked(block: Block, by_member):
    """Every member back in its block slot (without its L-BFGS memory, if any had stopped)."""
    if not block.done:
        return block.states
    host = fetch(without_memory(block.states))
    for i in np.flatnonzero(block.live >= 0):
        block.done[block.live[i]] = jax.tree.map(lambda a, i=i: a[i], host)
    whole = jax.tree.map(lambda *a: np.stack(a), *[block.done[j]
                                                    for j in range(len(block.diverged))])
    return jax.tree.map(lambda a: put(np.asarray(a), by_member), whole)
