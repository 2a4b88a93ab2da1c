"""Sweeps: a member equals a standalone run, sharding, chunking, compile-once, divergence, files."""

import csv
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from saejax import sweeps, train
from saejax.config import TrainConfig
from saejax.runtime.compile_cache import clear_program_cache
from saejax.sweeps import block, program


def data(m=48, n=16, seed=0):
    return np.random.default_rng(seed).uniform(0.05, 0.95, (m, n))


def cfg(**kw):
    base = dict(n_hidden=4, rho=0.1, beta=3.0, lam=1e-3, dtype="float64", optimizer="adam",
                lr=0.02, batch_size=8, steps=12, steps_per_call=6)
    return TrainConfig(**{**base, **kw})


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["adam", "sgd", "lbfgs"])
def test_member_equals_standalone_run(optimizer):
    kw = {"optimizer": optimizer}
    if optimizer == "lbfgs":
        kw.update(batch_size=None, steps=10, steps_per_call=5)
    c = cfg(**kw)
    x = data()
    res = sweeps.sweep(c, x, rho=[0.05, 0.2], beta=[0.5, 3.0], lr=[0.02, 0.05], seed=[0, 1],
                      chunk_size=16, progress=False)
    assert len(res.rows) == 16
    for i in (0, 7, 13):
        row = res.rows[i]
        alone = train.run(c.replace(rho=row["rho"], beta=row["beta"], lr=row["lr"],
                                    seed=row["seed"]), x, progress=False)
        for k, v in alone.state.params.items():
            np.testing.assert_allclose(res.params[k][i], v, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(row["final_loss"], alone.summary["final_loss"], rtol=1e-10)
        np.testing.assert_allclose(row["dead_fraction"], alone.summary["dead_fraction"])


@pytest.mark.slow
def test_lbfgs_block_packs_its_runners_and_members_still_equal_standalone_runs(monkeypatch):
    """L-BFGS members finish at different ticks; runners are packed into smaller blocks."""
    packs = []
    real = block.pack

    def counting(packed, *args):
        packs.append(len(packed.states.step))
        return real(packed, *args)

    monkeypatch.setattr(block, "pack", counting)
    c = cfg(optimizer="lbfgs", batch_size=None, steps=60, steps_per_call=30)
    x = data()
    res = sweeps.sweep(c, x, rho=[0.05, 0.2], beta=[0.5, 3.0], lam=[0.1, 1e-3], chunk_size=8,
                       progress=False)
    assert packs and packs[0] == 8  # the 8-member block was packed at least once
    assert len({r["evaluations"] for r in res.rows}) > 1  # members finished at different ticks
    for i, row in enumerate(res.rows):
        alone = train.run(c.replace(rho=row["rho"], beta=row["beta"], lam=row["lam"]), x,
                          progress=False)
        np.testing.assert_allclose(row["final_loss"], alone.summary["final_loss"], rtol=1e-10)
        # lam = 0.1 collapses the weights to ~1e-9, the trivial minimum: there the search
        # wanders in rounding noise and may count a few evaluations more or less; 60
        # iterations amplify float64 rounding elsewhere to ~1e-8
        for k, v in alone.state.params.items():
            np.testing.assert_allclose(res.params[k][i], v, rtol=1e-6, atol=1e-9)
        if row["lam"] < 0.01:
            for k in ("iterations", "evaluations", "stop_reason"):
                assert row[k] == alone.summary[k], (i, k)


@pytest.mark.slow
def test_chunked_equals_unchunked():
    x = data()
    a = sweeps.sweep(cfg(), x, rho=[0.05, 0.1, 0.2], beta=[1.0, 3.0], chunk_size=6,
                    progress=False)
    b = sweeps.sweep(cfg(), x, rho=[0.05, 0.1, 0.2], beta=[1.0, 3.0], chunk_size=4,
                    progress=False)  # 4 + 2 members, the second block padded
    for k in a.params:
        np.testing.assert_allclose(a.params[k], b.params[k], rtol=1e-12, atol=1e-14)
    assert [r["final_loss"] for r in a.rows] == pytest.approx([r["final_loss"] for r in b.rows],
                                                               rel=1e-12)


def test_compiles_once_whatever_the_grid_size(monkeypatch):
    traces = []
    real = train.make_train_chunk

    def counting(config):
        chunk = real(config)

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


@pytest.mark.slow
def test_diverged_member_is_isolated():
    x = data()
    c = cfg(optimizer="sgd", dtype="float32")
    res = sweeps.sweep(c, x, rho=[0.1], beta=[3.0], lr=[0.1, 1e30, 0.2], chunk_size=3,
                      progress=False)
    assert [r["diverged"] for r in res.rows] == [False, True, False]
    assert np.isnan(res.rows[1]["final_loss"])
    for i in (0, 2):
        alone = train.run(c.replace(lr=res.rows[i]["lr"]), x, progress=False)
        np.testing.assert_allclose(res.rows[i]["final_loss"], alone.summary["final_loss"],
                                   rtol=1e-6)


def test_run_directory(tmp_path, monkeypatch):
    from saejax import viz

    drawn, save_heatmaps = {}, viz.save_heatmaps

    def recording(rho_values, beta_values, panels, path, title=None):
        drawn.update(rho=rho_values, beta=beta_values, panels=panels, path=path)
        return save_heatmaps(rho_values, beta_values, panels, path, title)

    monkeypatch.setattr(viz, "save_heatmaps", recording)
    x = data()
    res = sweeps.sweep(cfg(), x, rho=[0.2, 0.05], beta=[3.0, 0.3, 1.0], chunk_size=4,
                      workdir=tmp_path, progress=False)
    with open(tmp_path / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(float(r["rho"]), float(r["beta"])) for r in rows] == [
        (r, b) for r in (0.2, 0.05) for b in (3.0, 0.3, 1.0)
    ]
    for key in ("rho", "beta", "lam", "lr", "seed", "final_loss", "reconstruction",
                "weight_decay", "sparsity", "rho_hat_mean", "rho_hat_max", "dead_fraction",
                "diverged"):
        assert key in rows[0]
    assert json.loads((tmp_path / "results.json").read_text())[4]["beta"] == 0.3
    for name in ("heatmaps.png", "filters_grid.png", "config.json"):
        assert (tmp_path / name).is_file(), name
    # The heatmaps show each member's own numbers in its (rho, beta) cell, axes sorted.
    assert drawn["path"] == tmp_path / "heatmaps.png"
    np.testing.assert_array_equal(drawn["rho"], [0.05, 0.2])
    np.testing.assert_array_equal(drawn["beta"], [0.3, 1.0, 3.0])
    assert list(drawn["panels"]) == ["reconstruction", "rho_hat_mean", "dead_fraction"]
    for row in res.rows:
        i, j = [0.05, 0.2].index(row["rho"]), [0.3, 1.0, 3.0].index(row["beta"])
        for key, panel in drawn["panels"].items():
            assert panel[i, j] == row[key], (key, row)
    member = sweeps.load_member(tmp_path, 4)
    for k, v in member.items():
        np.testing.assert_array_equal(v, res.params[k][4])


def test_points_mode_and_bad_grids():
    c = cfg()
    g = sweeps.make_grid(c, rho=[0.1, 0.2], beta=[1.0, 2.0], lam=[0.0, 1e-3], mode="points")
    assert len(g) == 2 and g.lam == (0.0, 1e-3) and g.lr == (c.lr, c.lr)
    assert len(sweeps.make_grid(c, rho=[0.1, 0.2], beta=[1, 2, 3], seed=[0, 1])) == 12
    bad = [
        (dict(rho=[], beta=[1.0]), "empty"),
        (dict(rho=[0.1, 1.0], beta=[1.0]), "strictly inside"),
        (dict(rho=[0.1], beta=[-1.0]), "beta must be finite and >= 0"),
        (dict(rho=[0.1], beta=[1.0], lam=[-1e-3]), "lam must be finite and >= 0"),
        (dict(rho=[0.1, 0.2], beta=[1.0], mode="points"), "same length"),
        (dict(rho=[0.1], beta=[1.0], seed=[1.5]), "whole number"),
        (dict(rho=[0.1], beta=[1.0], seed=[2**32 + 5]), "whole number"),
    ]
    for kw, message in bad:
        with pytest.raises(ValueError, match=message):
            sweeps.make_grid(c, **kw)
    x = data()
    with pytest.raises(ValueError, match="chunk_size must be at least 1"):
        sweeps.sweep(c, x, rho=[0.1], beta=[1.0], chunk_size=0, progress=False)
    with pytest.raises(ValueError, match="asked for 64 devices"):
        sweeps.sweep(c, x, rho=[0.1], beta=[1.0], num_devices=64, progress=False)


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


@pytest.mark.slow
def test_sweep_cli(tmp_path, capsys):
    from saejax import cli

    code = cli.main(["sweep", "--preset", "digits", "--rho", "0.05", "0.1", "--beta", "1", "3",
                     "--steps", "4", "--steps-per-call", "2", "--workdir", str(tmp_path),
                     "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "heatmaps" in out
    with open(tmp_path / "results.csv") as f:
        assert len(list(csv.DictReader(f))) == 4
    assert cli.main(["sweep", "--rho", "0.1", "2", "--beta", "1",
                     "--workdir", str(tmp_path / "b")]) == 2
    assert "strictly inside" in capsys.readouterr().err
    assert cli.main(["sweep", "--rho", "0.1", "0.2", "--beta", "1", "--points",
                     "--workdir", str(tmp_path / "c")]) == 2
    assert "same length" in capsys.readouterr().err


@pytest.mark.slow
def test_lbfgs_members_run_at_their_own_pace():
    # Members whose line searches take different numbers of evaluations, and who stop at
    # different iterations, each still equal their standalone run: same iterations, same
    # evaluations, same stop reason, same params.
    c = cfg(optimizer="lbfgs", batch_size=None, steps=60, steps_per_call=25)
    x = data()
    res = sweeps.sweep(c, x, rho=[0.02, 0.3], beta=[0.0, 10.0], lam=[1e-4, 0.1],
                      chunk_size=8, progress=False)
    counts = {(r["iterations"], r["evaluations"]) for r in res.rows}
    assert len(counts) > 1, counts  # the members did not move in lockstep
    for i, row in enumerate(res.rows):
        alone = train.run(c.replace(rho=row["rho"], beta=row["beta"], lam=row["lam"]), x,
                          progress=False)
        s = alone.summary
        assert row["stop_reason"] == s["stop_reason"], i
        if s["stop_reason"] == "no_decrease":
            # converged to float64's last digits: which iteration finds no more decrease is
            # decided by rounding, batched or not
            assert abs(row["iterations"] - s["iterations"]) <= 3, i
        else:
            assert (row["iterations"], row["evaluations"]) == (s["iterations"],
                                                               s["evaluations"]), i
        # 60 iterations amplify the float64 rounding of batched arithmetic: J agrees to 1e-8,
        # and params to ~1e-6 along directions where J is nearly flat.
        np.testing.assert_allclose(row["final_loss"], s["final_loss"], rtol=1e-8)
        for k, v in alone.state.params.items():
            np.testing.assert_allclose(res.params[k][i], v, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_a_large_grids_filter_montage_shows_a_subset_and_says_so(tmp_path, monkeypatch):
    from saejax import viz

    drawn, save = {}, viz.save_filter_grid

    def recording(filters, rho_values, beta_values, path, channels=1, patch_shape=None,
                  title=None):
        drawn.update(filters=np.asarray(filters), rho=rho_values, beta=beta_values, title=title)
        return save(filters, rho_values, beta_values, path, channels, patch_shape, title)

    monkeypatch.setattr(viz, "save_filter_grid", recording)
    rho = [0.01 * (i + 1) for i in range(7)]
    res = sweeps.sweep(cfg(steps=2, steps_per_call=2), data(), rho=rho, beta=[1.0, 3.0],
                       chunk_size=14, workdir=tmp_path, progress=False)
    keep = [rho[i] for i in (0, 2, 3, 5, 6)]  # 5 of 7, evenly spaced, both ends kept
    np.testing.assert_allclose(drawn["rho"], keep)
    np.testing.assert_allclose(drawn["beta"], [1.0, 3.0])
    assert drawn["title"].startswith("5 of 7 rho values x 2 of 2 beta values")
    # each drawn cell holds its own member's W1
    for i, r in enumerate(keep):
        for j, b in enumerate([1.0, 3.0]):
            member = next(k for k, row in enumerate(res.rows) if (row["rho"], row["beta"]) == (r, b))
            np.testing.assert_array_equal(drawn["filters"][i, j], res.params["W1"][member])
