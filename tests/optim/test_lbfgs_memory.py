"""The L-BFGS memory of saejax.optim: both ways through it give the two-loop recursion, a tick
reads it twice, a fresh state's dtypes, and a bfloat16 memory keeps rounded pairs (cast before
they are written), is read as it is kept on an H100, and reaches the minimum."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from lbfgs_reference import np_two_loop, run

from saejax import optim


@pytest.mark.parametrize("passes", ["dot", pytest.param("reduce", marks=pytest.mark.slow)])
def test_both_ways_through_the_memory_give_the_two_loop_of_numpy(passes, monkeypatch):
    # optim.lbfgs.MEMORY_PASSES picks, per platform, matrix products or fused reductions for the
    # passes over S and Y; either is the same recursion.
    monkeypatch.setitem(optim.lbfgs.MEMORY_PASSES, jax.default_backend(), passes)
    rng = np.random.default_rng(5)
    n, m = 9, 4
    S, Y = rng.normal(size=(m, n)), rng.normal(size=(m, n))
    Y = Y + 3 * S  # y.s > 0
    rho = 1.0 / np.sum(S * Y, axis=1)
    g = rng.normal(size=n)
    h = (S[-1] @ Y[-1]) / (Y[-1] @ Y[-1])
    got = jax.jit(optim.two_loop)(jnp.asarray(g), jnp.asarray(S), jnp.asarray(Y),
                                  jnp.asarray(rho), jnp.asarray(m), h, jnp.asarray(S @ Y.T),
                                  jnp.asarray(Y @ Y.T))
    np.testing.assert_allclose(got, np_two_loop(g, list(zip(S, Y))), rtol=1e-12, atol=1e-14)
    # and the memory the ring keeps through a run
    _, _, opt, _ = run(lambda x: jnp.sum((x - 1.0) ** 4) + jnp.sum(x ** 2), np.arange(6.0), 15,
                       memory=3)
    np.testing.assert_allclose(np.asarray(opt.SY), np.asarray(opt.S) @ np.asarray(opt.Y).T,
                               rtol=1e-12, atol=1e-300)


@pytest.mark.filterwarnings("ignore:Some donated buffers were not usable")
def test_a_tick_reads_its_memory_twice_and_writes_one_pair():
    # The memory work of a tick: write the new pair into its row, one pass over S and Y for the
    # new Gram row and column and S g, Y g, and one pass for the direction. XLA's cost model of
    # the compiled tick (memory donated, as the drivers donate it) counts S's bytes about 5.5
    # times (S and Y read twice, the rows written): a third pass over both would add 2.
    m, p = 20, 50_000
    opt = optim.init_lbfgs({"x": jnp.zeros(p)}, m)

    def memory_work(opt, s, y, g):
        S, Y, rho, stored, h, SY, YY, Sgy, Ygsy = optim.lbfgs._remember(
            opt, s, y, jnp.dot(y, s), True, False, g)
        return optim.two_loop(g, S, Y, rho, stored, h, SY, YY, Sgy[:, 0], Ygsy[:, 0]), S, Y

    v = jnp.ones(p)
    compiled = jax.jit(memory_work, donate_argnums=0).lower(opt, v, v, v).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    assert cost["bytes accessed"] <= 6.0 * opt.S.nbytes, cost["bytes accessed"] / opt.S.nbytes


def _rosen_wide(x):
    return jnp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def test_a_bfloat16_memory_keeps_rounded_pairs_and_the_two_loop_of_them():
    # The memory keeps each pair rounded to bfloat16; 1 / (y.s), the Gram matrices and H0 are
    # those of the rounded pairs, so the direction is NumPy's two-loop recursion of exactly the
    # pairs it keeps (float32 sums).
    x0 = np.linspace(-1.2, 1.0, 8)
    params, step, opt, _ = run(_rosen_wide, x0, 30, memory=4, dtype=jnp.float32,
                               memory_dtype=jnp.bfloat16)
    assert opt.S.dtype == opt.Y.dtype == jnp.bfloat16 and opt.rho.dtype == jnp.float32
    S, Y = np.asarray(opt.S, np.float64), np.asarray(opt.Y, np.float64)
    order = [(int(opt.stored) - 4 + i) % 4 for i in range(4)]  # oldest first
    np.testing.assert_allclose(np.asarray(opt.rho), 1 / np.sum(S * Y, axis=1), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(opt.SY), S @ Y.T, rtol=1e-5, atol=1e-7)
    g = np.asarray(opt.grad, np.float64)
    want = np_two_loop(g, [(S[i], Y[i]) for i in order])
    got = optim.two_loop(opt.grad, opt.S, opt.Y, opt.rho, opt.stored, opt.h_diag, opt.SY,
                         opt.YY)
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=1e-6 * np.abs(want).max())


@pytest.mark.slow
def test_a_bfloat16_memory_reaches_the_minimum_as_the_float32_one_does():
    x0 = np.linspace(-1.2, 1.0, 8)
    for memory_dtype in (None, jnp.bfloat16):
        params, step, opt, _ = run(_rosen_wide, x0, 300, memory=10, dtype=jnp.float32,
                                   memory_dtype=memory_dtype)
        np.testing.assert_allclose(params["x"], np.ones(8), atol=2e-3, err_msg=str(memory_dtype))


BFLOAT16_ON_H100 = """
import jax, jax.numpy as jnp
from functools import partial
from experiments.bench.gpu_compile import h100
from saejax import sweeps, train
from saejax.config import PRESETS
from saejax.losses import Hyper
G, P = 8, 64 * 25 * 2 + 25 + 64
config = PRESETS["ufldl-patches"].replace(lbfgs_memory_dtype="bfloat16", member_eval="whole")
put = jax.sharding.SingleDeviceSharding(h100())
states = jax.eval_shape(jax.vmap(partial(train.init_state, config, 64), (0, 0, None)),
                        jnp.arange(G), jnp.ones(G), jnp.zeros(64))
S = lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=put)
chunk = jax.jit(sweeps.make_sweep_chunk(config), static_argnames="num_steps", donate_argnums=0)
print(chunk.trace(jax.tree.map(S, states), S(jnp.zeros((1000, 64))),
                  jax.tree.map(S, Hyper(*(jnp.ones(G),) * 3)), num_steps=10).lower().compile(
    ).as_text())
"""


@pytest.mark.slow
def test_on_an_h100_a_bfloat16_memory_is_read_as_it_is_kept():
    # XLA's GPU compiler, given an H100's description (no GPU needed), builds the sweep's
    # program: the memory stays bfloat16 through memory, widened inside the fusions that read
    # it; no float32 copy of it is ever written, which would cost what the bfloat16 saves.
    import os
    import subprocess
    import sys

    from experiments.bench import gpu_compile

    if not gpu_compile.available():
        pytest.skip(gpu_compile.MISSING)
    proc = subprocess.run([sys.executable, "-c", BFLOAT16_ON_H100], capture_output=True,
                          text=True, env=dict(os.environ, JAX_PLATFORMS="cpu"), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    written = buffers_of(proc.stdout, 8 * 100 * 3289)
    assert written and {dtype for dtype, _ in written} == {"bf16"}, written


def buffers_of(hlo: str, size: int) -> list[tuple[str, str]]:
    """(dtype, op) of every buffer of ``size`` values that the optimized ``hlo`` writes: the
    instructions outside fusion bodies, but for parameters and views of other buffers."""
    import re

    found, inside_fusion = [], False
    for line in hlo.splitlines():
        head = re.match(r"^(?:ENTRY )?%?([\w.\-]+) .*\{$", line)
        if head:
            inside_fusion = head.group(1).startswith(("fused", "wrapped"))
            continue
        op = re.match(r"^\s+(?:ROOT )?%?[\w.\-]+ = (\w+)\[([\d,]*)\]\S* ([\w\-]+)\(", line)
        if inside_fusion or not op or op.group(3) in ("parameter", "bitcast",
                                                       "get-tuple-element", "tuple"):
            continue
        if int(np.prod([int(d) for d in op.group(2).split(",") if d])) == size:
            found.append((op.group(1), op.group(3)))
    return found


def test_a_fresh_state_counts_in_int32_and_keeps_the_params_and_memory_dtypes():
    opt = optim.init_lbfgs({"x": jnp.zeros(3, jnp.float32)}, 4, jnp.bfloat16)
    assert opt.S.dtype == opt.Y.dtype == jnp.bfloat16 and opt.S.shape == (4, 3)
    for name in ("rho", "SY", "YY", "h_diag", "value", "grad", "direction", "best_grad"):
        assert getattr(opt, name).dtype == jnp.float32, name
    for name in ("stored", "evaluations", "stop"):  # counters, compared and checkpointed as such
        assert getattr(opt, name).dtype == jnp.int32 and int(getattr(opt, name)) == 0, name
    assert opt.started.dtype == bool and not bool(opt.started) and bool(opt.search.ended)


def test_a_pair_is_cast_to_the_memory_dtype_before_it_is_written():
    # Writing float64 into a bfloat16 memory makes JAX warn of a lossy implicit cast in the
    # scatter, and a future JAX refuses it: the pair is cast first, in its own dtype's rounding.
    opt = optim.init_lbfgs({"x": jnp.zeros(5, jnp.float32)}, 3, jnp.bfloat16)
    s = jnp.linspace(-1.3, 1.1, 5, dtype=jnp.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        S, Y, *_ = optim.lbfgs._remember(opt, s, 2 * s, jnp.dot(2 * s, s), True, False, s)
    np.testing.assert_array_equal(np.asarray(S[0], np.float32),
                                  np.asarray(s.astype(jnp.bfloat16), np.float32))
    np.testing.assert_array_equal(np.asarray(Y[0], np.float32),
                                  np.asarray((2 * s).astype(jnp.bfloat16), np.float32))
