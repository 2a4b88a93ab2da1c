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

# Under mutmut (make mutants), each mutant's process would compile every program its tests use
# anew: JAX's persistent cache, shared by those processes, loads the programs a mutant did not
# change from disk instead (a mutated program has other HLO, so it misses and compiles).
if "MUTANT_UNDER_TEST" in os.environ:
    jax.config.update("jax_compilation_cache_dir",
                      str(Path(__file__).resolve().parents[1] / ".jax-cache"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)

# Compiled programs go to a cache of this session's own, shared with the subprocesses that tests
# start (resume after SIGKILL, the CLI), never to the user's ~/.cache.
os.environ.setdefault("SAEJAX_CACHE_DIR", tempfile.mkdtemp(prefix="saejax-test-xla-"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed property test prints the seed hypothesis drew it from (its failing example is
    kept in .hypothesis/ and replayed first by the next run); ``--hypothesis-seed=N`` repeats
    the draws."""
    outcome = yield
    report = outcome.get_result()
    seed = getattr(getattr(item, "obj", None), "_hypothesis_internal_use_generated_seed", None)
    if report.when == "call" and report.failed and seed is not None:
        report.sections.append(("hypothesis seed",
                                f"{seed} (repeat its draws with --hypothesis-seed={seed})"))


@pytest.fixture
def shared_data() -> Path:
    """The shared data directory; skips the test when it is absent."""
    if not DATA.is_dir():
        pytest.skip(f"shared data not found at {DATA} (set SAEJAX_DATA to its path)")
    return DATA


@pytest.fixture(autouse=True)
def _trace_afresh_under_mutmut_stats():
    """Under mutmut's coverage run (make mutants), each test traces its jitted functions afresh.

    mutmut learns which tests call a function by recording the calls; a jitted function whose
    trace a previous test cached is not called again in Python, so without this the later test
    would not be run against that function's mutants.
    """
    if os.environ.get("MUTANT_UNDER_TEST") == "stats":
        jax.clear_caches()
    yield
