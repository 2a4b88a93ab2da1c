"""TensorBoard summaries beside metrics.jsonl (optional: ``pip install 'saejax[tensorboard]'``).

``saejax train --tensorboard`` writes DIR/tensorboard/: the terms of J, the mean rho_hat and the
gradient norm of every logged step, then the final values (rho_hat min/max and the dead
fraction too) at the last step. ``saejax sweep --tensorboard`` writes each member's final
results under its own tag prefix, ``member0003 rho=0.01,beta=3/reconstruction``. Open them with
``tensorboard --logdir DIR``. The event files are written by TensorBoard's own writer
(``tensorboard.summary.writer``), the one ``torch.utils.tensorboard`` uses too.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

INSTALL = ("--tensorboard needs the tensorboard package: pip install 'saejax[tensorboard]' "
           "(or pip install tensorboard), then run again.")


class ScalarWriter:
    """Scalars into an event file in ``logdir``; ``ValueError`` when tensorboard is missing."""

    def __init__(self, logdir: str | Path):
        try:
            from tensorboard.compat.proto import event_pb2, summary_pb2
            from tensorboard.summary.writer.event_file_writer import EventFileWriter
        except ImportError as err:
            raise ValueError(INSTALL) from err
        self._event, self._summary = event_pb2.Event, summary_pb2.Summary
        self._writer = EventFileWriter(str(logdir))

    def scalars(self, step: int, values: dict, prefix: str = "") -> None:
        """One event at ``step`` with a scalar per finite real value (others are left out)."""
        tags = [self._summary.Value(tag=prefix + name, simple_value=float(v))
                for name, v in values.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
        if tags:
            self._writer.add_event(self._event(wall_time=time.time(), step=int(step),
                                               summary=self._summary(value=tags)))

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def check_available() -> None:
    """Raises the install message now, before any training, when tensorboard is missing."""
    try:
        import tensorboard.summary.writer.event_file_writer  # noqa: F401
    except ImportError as err:
        raise ValueError(INSTALL) from err
