"""The caches of compiled programs: in this process (``program_cache``) and on disk (``enable``).

In the process, every factory of jitted programs is wrapped in ``program_cache`` and called with
``config.program()``, so configs that differ only in traced values, data or logging share one
compiled program; ``clear_program_cache`` forgets them all.

On disk, JAX's persistent compilation cache lets a second process skip compiling. ``train.run``
and ``sweeps.sweep`` (and so the command line) call ``enable()`` before they compile. The cache
lives in ``$SAEJAX_CACHE_DIR`` (default ``~/.cache/saejax/xla``); set ``SAEJAX_CACHE_DIR=off``
to turn it off. A cache directory you configured yourself
(``jax.config.update("jax_compilation_cache_dir", ...)``) is left as it is.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import jax

OFF = ("off", "0", "none", "")

_PROGRAM_CACHES: list = []


def program_cache(build):
    """Caches ``build(program, ...)``, a factory of compiled programs; see ``clear_program_cache``.

    Callers pass ``config.program()``, so configs that differ only in traced values, data or
    logging share one compiled program.
    """
    cached = functools.lru_cache(maxsize=32)(build)
    _PROGRAM_CACHES.append(cached)
    return cached


def clear_program_cache() -> None:
    """Forgets every cached program (training and sweeps), so the next run traces afresh.

    For benchmarks that time compilation and tests that count traces; training never needs it.
    """
    for cached in _PROGRAM_CACHES:
        cached.cache_clear()


def directory() -> Path | None:
    """Where saejax caches compiled programs, or None when ``SAEJAX_CACHE_DIR=off``."""
    value = os.environ.get("SAEJAX_CACHE_DIR")
    if value is None:
        return Path.home() / ".cache" / "saejax" / "xla"
    return None if value.strip().lower() in OFF else Path(value)


def enable() -> Path | None:
    """Turns the persistent cache on (unless off or already configured); returns its path."""
    current = jax.config.jax_compilation_cache_dir
    if current:
        return Path(current)
    path = directory()
    if path is not None:
        jax.config.update("jax_compilation_cache_dir", str(path))
        # Cache every program: saejax's are small but each costs seconds to compile on a CPU.
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return path
