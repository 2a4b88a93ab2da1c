"""sweeps.program: the sweep compiles once whatever the grid size, and sharded over four devices it
equals one device, with no collectives and the data never copied per member."""

import os
import subprocess
import sys
import textwrap

import pytest
from helpers import sweep_config as cfg
from helpers import sweep_data as data

from saejax import sweeps, train
from saejax.runtime.compile_cache import clear_program_cache
from saejax.schema import MEMBER_EVALS
from saejax.sweeps import program


def test_compiles_once_whatever_the_grid_size(monkeypatch):
    traces = []
    real = train.make_train_chunk

    def counting(config, batched=False):
        chunk = real(config, batched)

        def traced(*args, **kw):
            traces.append(kw.get("num_steps"))
            return chunk(*args, **kw)

        return traced

    monkeypatch.setattr(program, "make_train_chunk", counting)
    clear_program_cache()
    x = data()
    for g in (4, 8, 12):  # 1, 2 and 3 blocks of 4 members
        sweeps.sweep(cfg(), x, rho=[0.01 * (i + 1) for i in range(g)], beta=[3.0], chunk_size=4,
                    progress=False)
    assert traces == [6], traces  # one trace of the 6-step chunk, whatever the grid size


SHARDED = textwrap.dedent("""
    import jax, numpy as np
    jax.config.update("jax_enable_x64", True)
    assert jax.device_count() == 4, jax.devices()
    import saejax
    from saejax import sweeps, train
    from saejax.config import TrainConfig
    x = np.random.default_rng(0).uniform(0.05, 0.95, (48, 16))
    c = TrainConfig(n_hidden=4, rho=0.1, dtype="float64", optimizer="adam", lr=0.02,
                    batch_size=8, steps=12, steps_per_call=6)
    grid = dict(rho=[0.05, 0.1, 0.2], beta=[1.0, 3.0])
    a = sweeps.sweep(c, x, chunk_size=8, num_devices=4, progress=False, **grid)
    b = sweeps.sweep(c, x, chunk_size=8, num_devices=1, progress=False, **grid)
    assert a.summary["devices"] == 4 and a.summary["chunk_size"] == 8
    for k in a.params:
        np.testing.assert_allclose(a.params[k], b.params[k], rtol=1e-12, atol=1e-14)
    # The compiled program: members sharded, data replicated, no collectives, no per-member copy.
    from functools import partial
    import jax.numpy as jnp
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    mesh = Mesh(np.array(jax.devices()), ("members",))
    states = jax.vmap(partial(train.init_state, c, 16))(jnp.arange(8, dtype=jnp.int32),
                                                        jnp.full(8, 0.02))
    states = jax.device_put(states, NamedSharding(mesh, P("members")))
    hyper = jax.device_put(saejax.Hyper(jnp.full(8, 0.1), jnp.full(8, 3.0), jnp.full(8, 1e-3)),
                           NamedSharding(mesh, P("members")))
    xd = jax.device_put(jnp.asarray(x), NamedSharding(mesh, P()))
    run = jax.jit(sweeps.make_sweep_chunk(c),
                  static_argnames="num_steps")
    compiled = run.lower(states, xd, hyper, num_steps=6).compile()
    hlo = compiled.as_text()
    for op in ("all-gather", "all-reduce", "all-to-all", "collective-permute"):
        assert op not in hlo, op
    assert "f64[8,48,16]" not in hlo and "f64[2,48,16]" not in hlo, "data copied per member"
    out_states, _ = compiled(states, xd, hyper)
    assert out_states.params["W1"].sharding.spec == P("members")
    assert len(out_states.params["W1"].sharding.device_set) == 4
    print("OK")
""")


@pytest.mark.slow
def test_sharded_equals_unsharded_on_four_cpu_devices():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
               JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", SHARDED], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stderr[-3000:]


def test_a_minibatch_sweep_evaluates_its_members_as_member_eval_says(monkeypatch):
    # Adam's members share their full batch, or their minibatches when their seeds are equal
    # (as here): "folded" then traces one folded evaluation of the whole block.
    from saejax import folded

    calls = []
    real = folded.folded_terms_and_grad

    def recording(params, *args, **kw):
        calls.append(params["W1"].shape)
        return real(params, *args, **kw)

    monkeypatch.setattr(folded, "folded_terms_and_grad", recording)
    grid = dict(rho=[0.01, 0.02, 0.05, 0.1], beta=[3.0], chunk_size=4, progress=False)
    for batch_size, how, want in ((None, "folded", [(4, 4, 16)]), (8, "folded", [(4, 4, 16)]),
                                  (8, "blocked", [])):
        calls.clear()
        clear_program_cache()
        sweeps.sweep(cfg(member_eval=how, batch_size=batch_size, steps=2, steps_per_call=2),
                     data(), **grid)
        assert calls == want, (batch_size, how)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:member_eval 'kernel' is a GPU kernel")
@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_a_sweep_is_the_same_whichever_member_evaluation_it_compiles(optimizer):
    # member_eval changes only how the members' evaluation is laid out (blocked, whole, folded
    # into wide products, one kernel per member, interpreted here): float64 sweeps of each end
    # at the same params, member for member, by L-BFGS and by full-batch Adam.
    import jax
    import numpy as np

    from saejax.config import TrainConfig

    jax.config.update("jax_enable_x64", True)
    x = np.random.default_rng(3).uniform(0.1, 0.9, (2100, 12))  # two blocks of the blocked one
    base = TrainConfig(n_hidden=5, steps=12, steps_per_call=12, dtype="float64",
                       optimizer=optimizer, **({} if optimizer == "lbfgs" else {"lr": 0.05}))
    results = {how: sweeps.sweep(base.replace(member_eval=how), x, rho=[0.01, 0.1],
                                 beta=[0.3, 3.0], chunk_size=4, progress=False)
               for how in MEMBER_EVALS}
    want = results["blocked"]
    for how in MEMBER_EVALS[1:]:
        got = results[how]
        assert [r["iterations"] for r in got.rows] == [r["iterations"] for r in want.rows]
        for k in want.params:
            np.testing.assert_allclose(got.params[k], want.params[k], rtol=1e-9, atol=1e-12,
                                       err_msg=f"{how} {k}")
