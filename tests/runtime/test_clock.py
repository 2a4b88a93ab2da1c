"""runtime.clock: when a checkpoint is due, and that where they fall never changes a run."""

import numpy as np
import pytest
from helpers import small_config, tiny_data

from saejax import train
from saejax.records.checkpoints import Checkpointer
from saejax.runtime.clock import SaveClock


def test_save_clock_is_due_seconds_after_the_last_save():
    now = [100.0]
    clock = SaveClock(10.0, clock=lambda: now[0])
    assert not clock.due()
    now[0] = 109.9
    assert not clock.due()
    now[0] = 110.0
    assert clock.due()
    clock.saved()
    assert not clock.due()
    assert SaveClock(0.0).due()


@pytest.mark.slow
def test_checkpoint_seconds_leaves_out_checkpoints_not_the_result(tmp_path):
    x = tiny_data()
    every = train.run(small_config(steps=12), x, tmp_path / "every", progress=False)
    sparse = train.run(small_config(steps=12, checkpoint_seconds=3600.0), x, tmp_path / "sparse",
                       progress=False)
    assert Checkpointer(tmp_path / "every" / "checkpoints").all_steps() == [5, 10, 12]
    assert Checkpointer(tmp_path / "sparse" / "checkpoints").all_steps() == [12]  # the last
    for k in every.state.params:
        np.testing.assert_array_equal(every.state.params[k], sparse.state.params[k])


def test_a_checkpoint_falls_on_a_multiple_of_every_once_the_seconds_have_passed():
    now = [0.0]
    clock = SaveClock(5.0, clock=lambda: now[0])
    assert not clock.at(10, 10, 9)  # a multiple, but too soon after the start
    now[0] = 5.0
    assert clock.at(10, 10, 9) and clock.at(20, 10, 19)
    assert not clock.at(15, 10, 14) and not clock.at(7, 10, 6)  # due, but not a multiple
    clock.saved()
    now[0] = 9.0
    assert not clock.at(20, 10, 19)  # 4 s after the last save
    now[0] = 10.0
    assert clock.at(20, 10, 19)


def test_a_chunk_that_passes_a_multiple_checkpoints_at_its_end():
    clock = SaveClock(0.0)
    assert clock.at(200, 150, since=100) and clock.at(300, 150, since=200)  # passed 150, 300
    assert not clock.at(400, 150, since=300)  # 301-400 holds no multiple of 150
    assert clock.at(500, 150, since=400) and not clock.at(149, 150, since=0)


@pytest.mark.slow
def test_checkpoint_every_not_a_multiple_of_the_chunk_still_checkpoints_after_each_multiple(
        tmp_path):
    config = small_config(steps=50, steps_per_call=10, checkpoint_every=15, keep_checkpoints=10)
    train.run(config, tiny_data(), tmp_path / "run", progress=False)
    # chunk ends 10..50: 20 passed 15, 30 is 30, 50 passed 45 (and ends the run)
    assert Checkpointer(tmp_path / "run" / "checkpoints").all_steps() == [20, 30, 50]
