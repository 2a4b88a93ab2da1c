"""What several test files share: paths, small problems and configs, and readers of what saejax
writes. Each helper is defined here once; a helper used by one file lives beside its users."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

# Imports of jax and saejax wait for the first call: tests/conftest.py imports this module
# before it configures jax.

# --- Paths -----------------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]  # the repository root, whatever the test's depth
PACKAGE = REPO / "saejax"
DATA = Path(os.environ.get("SAEJAX_DATA", REPO.parent / "shared" / "data"))
MAT_FILE = DATA / "IMAGES_sparsenet.mat"
SPARSENET_DIR = DATA / "olshausen_sparsenet_trainset"
MNIST_DIR = DATA / "mnist"


def require(path: Path) -> None:
    """Skips the test when ``path`` (a file of the shared data) is absent."""
    if not path.exists():
        pytest.skip(f"{path} not found; set SAEJAX_DATA to the shared data directory to run this")


# --- Problems ---------------------------------------------------------------------------------


def make_problem(n=7, h=4, m=9, seed=0, dtype=None):
    """UFLDL params of an n-h-n network with non-zero biases, and m examples x in [0, 1);
    float64 unless ``dtype`` says otherwise."""
    import jax
    import jax.numpy as jnp

    import saejax

    dtype = jnp.float64 if dtype is None else dtype
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    params = saejax.init_params(k1, n, h, dtype)
    # Non-zero biases exercise the bias paths.
    params["b1"] = 0.3 * jax.random.normal(k2, (h,), dtype)
    params["b2"] = -0.2 * jnp.ones((n,), dtype)
    x = jax.random.uniform(k3, (m, n), dtype, 0.0, 1.0)
    return params, x


def tiny_data(m=40, n=16, seed=0):
    """m examples of width n, uniform in (0.05, 0.95): a run's training data in miniature."""
    return np.random.default_rng(seed).uniform(0.05, 0.95, (m, n))


def small_config(**kw):
    """A float64 run of 5 hidden units that logs every step and checkpoints every 5 steps."""
    from saejax.config import TrainConfig

    base = dict(n_hidden=5, rho=0.1, beta=3.0, lam=1e-3, dtype="float64", steps_per_call=5,
                checkpoint_every=5, checkpoint_seconds=0, log_every=1)
    return TrainConfig(**{**base, **kw})


def sweep_data(m=48, n=16, seed=0):
    """A sweep's training data in miniature: 48 examples."""
    return tiny_data(m, n, seed)


def sweep_config(**kw):
    """The settings a small test sweep's members share: Adam on minibatches of 8, 12 steps."""
    from saejax.config import TrainConfig

    base = dict(n_hidden=4, rho=0.1, beta=3.0, lam=1e-3, dtype="float64", optimizer="adam",
                lr=0.02, batch_size=8, steps=12, steps_per_call=6)
    return TrainConfig(**{**base, **kw})


def sweep_cli(workdir, optimizer, *extra):
    """argv of a `saejax sweep` of 6 members in blocks of 2 on 200 digits, in a new process:
    the sigmoid network's rho x beta by adam or lbfgs, or (``optimizer="topk"``) topk's k x seed
    by adam."""
    adam = ["--optimizer", "adam", "--batch-size", "16", "--steps", "400", "--steps-per-call",
            "100"]
    rho_beta = ["--rho", "0.05", "0.1", "0.2", "--beta", "0.5", "3"]
    steps = {"adam": [*adam, *rho_beta],
             "lbfgs": ["--optimizer", "lbfgs", "--steps", "150", "--steps-per-call", "50",
                       *rho_beta],
             "topk": [*adam, "--arch", "topk", "--k", "1", "2", "4", "--seed", "0", "1"]}
    return [sys.executable, "-m", "saejax.cli", "sweep", "--preset", "digits",
            "--num-examples", "200", "--n-hidden", "6", "--chunk-size", "2", "--dtype",
            "float32", *steps[optimizer], "--workdir", str(workdir), "--no-progress", *extra]


# --- Reading back what saejax wrote -----------------------------------------------------------


def snapshot(directory):
    """Every file's bytes and modification time, to prove nothing was touched."""
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in directory.rglob("*") if p.is_file()}


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_png(path, expected_hw):
    """Checks the file is a PNG of about ``expected_hw`` pixels and small; returns its pixels."""
    import matplotlib.image

    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) < 150_000
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[2] in (3, 4)
    h, w = expected_hw
    assert abs(pixels.shape[0] - h) <= 2 and abs(pixels.shape[1] - w) <= 2, pixels.shape
    return pixels


# --- Property tests ---------------------------------------------------------------------------


def property_settings(max_examples: int = 15):
    """The hypothesis settings of the property tests: a bounded number of examples (the fast tier
    keeps its budget), no deadline (an example of a new shape compiles), and a failing example
    printed with its reproduction blob (and its seed: tests/conftest.py). The database
    (.hypothesis/) replays failures first.
    Under mutmut (make mutants) each test draws three examples."""
    from hypothesis import HealthCheck, settings

    if "MUTANT_UNDER_TEST" in os.environ:  # make mutants: thousands of runs, three examples each
        max_examples = min(max_examples, 3)
    return settings(max_examples=max_examples, deadline=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
