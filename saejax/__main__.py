"""``python -m saejax``: the ``saejax`` command, exiting the usual way (as ``python -m saejax.cli``)."""

import sys

from saejax.cli import main

sys.exit(main())
