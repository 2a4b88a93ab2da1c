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
    assert not clock.at(10, 10)  # a multiple, but too soon after the start
    now[0] = 5.0
    assert clock.at(10, 10) and clock.at(20, 10)
    assert not clock.at(15, 10) and not clock.at(7, 10)  # due, but not a multiple
    clock.saved()
    now[0] = 9.0
    assert not clock.at(20, 10)  # 4 s after the last save
    now[0] = 10.0
    assert clock.at(20, 10)
