"""sweeps.block: L-BFGS members that stop at their own iterations, packed into smaller blocks, still
equal their standalone runs."""

import jax
import numpy as np
import pytest
from helpers import sweep_config as cfg
from helpers import sweep_data as data
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from saejax import sweeps, train
from saejax.losses import Hyper
from saejax.records.sweep_record import BlockCheckpoints
from saejax.sweeps import block
from saejax.train.state import TrainState


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


def test_a_block_checkpoint_puts_back_its_runners_waiting_members_and_flags(tmp_path):
    # Three block slots: members 0 and 2 run in packed slots 0 and 1 (slot 2 is padding),
    # member 1 has stopped and waits on the host; member 2 has diverged.
    rng = np.random.default_rng(0)
    states = TrainState(step=np.array([5, 5, 5], np.int32),
                        params={"W1": rng.normal(size=(3, 2, 4)), "b1": rng.normal(size=(3, 2))},
                        opt_state=(rng.normal(size=(3, 4)),),
                        key=rng.integers(0, 2**31, (3, 2)).astype(np.uint32),
                        since_fired=rng.integers(0, 9, (3, 2)).astype(np.int32))
    waiting = jax.tree.map(lambda a: a[1] + 1.0 if a.dtype.kind == "f" else a[1], states)
    hyper = Hyper(rho=np.array([0.05, 0.2, 0.2]), beta=np.array([1.0, 3.0, 3.0]),
                  lam=np.full(3, 1e-3))
    saved = block.Block(states, hyper, live=np.array([0, 2, -1]), done={1: waiting},
                        diverged=np.array([False, False, True]), steps_done=5)
    store = BlockCheckpoints(tmp_path / "running" / "00000", keep=2)
    store.save(5, saved.to_tree())
    assert store.latest() == 5

    by_member = NamedSharding(Mesh(np.array(jax.devices()[:1]), ("members",)), P("members"))
    like = {"states": states, "waiting": states}
    back = block.Block.from_tree(store.restore(like), store.latest(), False, by_member)
    assert back.steps_done == 5
    np.testing.assert_array_equal(back.live, [0, 2, -1])
    np.testing.assert_array_equal(back.diverged, [False, False, True])
    assert back.diverged.dtype == bool and list(back.done) == [1]
    for got, want in ((back.states, states), (back.done[1], waiting), (back.hyper, hyper)):
        assert jax.tree.structure(got) == jax.tree.structure(want)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            np.testing.assert_array_equal(a, b)
            assert np.asarray(a).dtype == np.asarray(b).dtype
    assert back.states.params["W1"].sharding == by_member
    store.finish()
    assert not (tmp_path / "running").exists()  # removed once the block is saved
