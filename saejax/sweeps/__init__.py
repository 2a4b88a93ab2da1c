"""Hyperparameter sweeps as one compiled program: vmap of the training chunk over a grid.

The rooms: ``grid`` (the members, checked), ``program`` (the vmapped, cached chunk),
``block`` (one block of members to the end; L-BFGS packing; block checkpoints), ``probe`` (a
linear probe per member) and ``runner`` (``sweep``, orchestration only); the records live in
``saejax.records.sweep_record``, the figures in ``saejax.viz.figures``.

The member axis is sharded over every device with a ``Mesh`` and ``NamedSharding`` (on a CPU
host, ``saejax sweep`` makes one device per core: ``saejax.runtime.devices``); the data is
replicated once per device, never per member. Members never communicate: a minibatch program
holds no collectives, and an L-BFGS loop only counts its running members each tick. Across
hosts, call ``jax.distributed.initialize()`` first: the mesh is built from ``jax.devices()``,
inputs are global arrays made with ``jax.make_array_from_callback``, and results are gathered
with ``process_allgather`` (``saejax.runtime.hosts``); process 0 alone writes the sweep
directory.
"""

from saejax.records.sweep_record import load_member
from saejax.sweeps.grid import Grid, make_grid
from saejax.sweeps.program import make_sweep_chunk
from saejax.sweeps.runner import Layout, Output, Probe, SweepResult, run_sweep, sweep

__all__ = ["Grid", "Layout", "Output", "Probe", "SweepResult", "load_member", "make_grid",
           "make_sweep_chunk", "run_sweep", "sweep"]
