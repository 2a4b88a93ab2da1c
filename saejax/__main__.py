"""``python -m saejax``: the ``saejax`` command, ending as ``python -m saejax.cli`` does."""

import sys

from saejax.cli import main

sys.exit(main())
