"""When a checkpoint is due: at the first chunk end at or after each multiple of
``checkpoint_every`` steps, at most once in ``checkpoint_seconds``."""

from __future__ import annotations

import time


class SaveClock:
    """Whether a checkpoint is due: ``seconds`` have passed since the last one (or the start).

    A checkpoint costs about the same whatever the run, so on a run of milliseconds a step,
    every ``checkpoint_every`` steps would cost a tenth of the training; a run that is killed
    loses at most ``seconds`` and a chunk. Where the checkpoints fall never changes the result:
    a run resumed from any chunk end replays the same computation.
    """

    def __init__(self, seconds: float, clock=time.perf_counter):
        self.seconds, self.clock = seconds, clock
        self.last = clock()

    def due(self) -> bool:
        return self.clock() - self.last >= self.seconds

    def saved(self) -> None:
        self.last = self.clock()

    def at(self, step: int, every: int, since: int) -> bool:
        """A checkpoint at ``step``, a chunk's end: the chunk, which began at ``since``, passed
        a multiple of ``every``, and ``seconds`` have passed since the last. With chunks of 100
        steps and ``every`` 150, checkpoints fall at 200, 300, 500, 600: the first chunk end at
        or after each multiple."""
        return step // every > since // every and self.due()
