"""Test configuration: float64 and no silent rank promotion, for every test."""

import os
import tempfile
from pathlib import Path

import jax
import pytest
from helpers import DATA

# Gradients are compared in float64; float32 cannot reach the 1e-9 agreement of the UFLDL check.
jax.config.update("jax_enable_x64", True)
# Silent broadcasting is the classic bug of hand-written backprop: make it an error.
jax.config.update("jax_numpy_rank_promotion", "raise")

# Compiled programs go to a cache of this session's own, shared with the subprocesses that tests
# start (resume after SIGKILL, the CLI), never to the user's ~/.cache.
os.environ.setdefault("SAEJAX_CACHE_DIR", tempfile.mkdtemp(prefix="saejax-test-xla-"))


@pytest.fixture
def shared_data() -> Path:
    """The shared data directory; skips the test when it is absent."""
    if not DATA.is_dir():
        pytest.skip(f"shared data not found at {DATA} (set SAEJAX_DATA to its path)")
    return DATA
