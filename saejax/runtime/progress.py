"""What the person sees while saejax trains: a progress bar, and imports done while XLA works."""

from __future__ import annotations

import importlib
import logging
import threading

logger = logging.getLogger(__name__)


def progress_bar(total, initial, enabled):
    """A tqdm bar over steps (plain text: also fine in notebooks, with no widget needed)."""
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="step",
                dynamic_ncols=True, leave=True)


def prefetch_imports() -> threading.Thread:
    """Imports matplotlib (through saejax.viz) and orbax in a background thread.

    Each takes a second or more to import. The training loop leaves the interpreter idle while
    XLA computes, so a thread started before training hides that cost from the checkpoints and
    figures that need them.
    """

    def load():
        try:
            importlib.import_module("orbax.checkpoint")
            importlib.import_module("saejax.viz")
        except Exception:  # the main thread imports them itself when it needs them
            logger.debug("background import failed", exc_info=True)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    return thread
