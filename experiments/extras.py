"""The optional extras a script needs, checked before it does any work.

Standard library only: the PyTorch peers call it too, and their whole process is what the
benchmarks time. A missing package prints one line naming it and the install command, and exits
with status 2, as the command line does for bad input.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def require(extra: str, *modules: str) -> None:
    """Exits with status 2 unless every one of ``modules`` can be imported; the message names
    the missing ones and the pyproject extra that installs them."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        print(f"{Path(sys.argv[0]).name}: error: {', '.join(missing)} "
              f"{'is' if len(missing) == 1 else 'are'} not installed; this script needs "
              f"saejax's '{extra}' extra: pip install -e '.[{extra}]'", file=sys.stderr)
        sys.exit(2)
