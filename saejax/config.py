"""Typed training configuration and the named presets of ``saejax train``."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

OPTIMIZERS = ("lbfgs", "adam", "sgd", "momentum")
SCHEDULES = ("constant", "cosine", "warmup_cosine")
GRADS = ("analytic", "autodiff")
DTYPES = ("float32", "float64")
DATASETS = ("patches", "mnist", "digits", "color-patches")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run; library functions take it, never flags."""

    # --- data ---
    dataset: str = "patches"  # "patches", "mnist", "digits" or "color-patches" (ZCA-whitened)
    data: str | None = None  # path: IMAGES.mat, sparsenet dir or MNIST dir; None = embedded
    num_examples: int = 10_000  # patches to sample, or MNIST images to take (the first ones)
    patch_size: int = 8  # side of a square patch, pixels (patches only)
    # --- model and loss ---
    n_hidden: int = 25  # hidden units H
    penalty: str = "kl"  # sparsity penalty: "kl", "squared" or "l1"
    rho: float = 0.01  # target mean activation, in (0, 1)
    beta: float = 3.0  # weight of the sparsity penalty, >= 0
    lam: float = 1e-4  # weight decay on W1 and W2, >= 0
    decoder: str = "sigmoid"  # output layer: "sigmoid" (a3 = s(z3)) or "linear" (a3 = z3)
    tied: bool = False  # tied weights, W2 = W1^T
    # --- optimization ---
    optimizer: str = "lbfgs"  # "lbfgs" (full batch, zoom line search), "adam", "sgd", "momentum"
    steps: int = 400  # optimizer iterations
    batch_size: int | None = None  # examples per minibatch step; None = full batch
    lr: float = 1e-2  # learning rate (peak, for a schedule); unused by L-BFGS
    schedule: str = "constant"  # learning-rate schedule: "constant", "cosine", "warmup_cosine"
    momentum: float = 0.9  # momentum coefficient of the "momentum" optimizer
    lbfgs_memory: int = 100  # L-BFGS history length (minFunc's default corrections: 100)
    grad: str = "analytic"  # which gradient drives training: "analytic" or "autodiff"
    dtype: str = "float32"  # "float32" or "float64" (float64 needs jax_enable_x64)
    seed: int = 0  # seeds the data sample, the initialization and the minibatches
    # --- loop, logging, checkpoints ---
    steps_per_call: int = 100  # optimizer steps per compiled call (lax.scan)
    log_every: int = 1  # write a metrics.jsonl line every this many steps (and the last)
    checkpoint_every: int = 100  # save a checkpoint every this many steps (and at the end)
    keep_checkpoints: int = 3  # at most this many checkpoints are kept

    def replace(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def validate(self) -> None:
        """Raises ValueError naming the first setting that cannot work."""
        choices = {
            "optimizer": OPTIMIZERS, "schedule": SCHEDULES, "grad": GRADS, "dtype": DTYPES,
            "dataset": DATASETS, "penalty": ("kl", "squared", "l1"),
            "decoder": ("sigmoid", "linear"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {list(allowed)}, got {getattr(self, name)!r}.")
        if not 0.0 < self.rho < 1.0:
            raise ValueError(f"rho must lie strictly inside (0, 1), got {self.rho}.")
        for name in ("beta", "lam"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {value}.")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must lie in [0, 1), got {self.momentum}.")
        for name in ("steps", "n_hidden", "steps_per_call", "log_every", "checkpoint_every",
                     "keep_checkpoints", "num_examples", "patch_size", "lbfgs_memory", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < (name != "seed"):
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be positive (or None for full batch), got {self.batch_size}.")
        if self.optimizer == "lbfgs" and self.batch_size is not None:
            raise ValueError("L-BFGS is a full-batch method: leave batch_size unset (None).")
        if self.optimizer != "lbfgs" and not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be finite and > 0, got {self.lr}.")


# The presets of `saejax train`; any field can be overridden on the command line.
PRESETS = {
    # UFLDL's sparse autoencoder exercise: 10,000 8x8 natural patches, 64-25-64, L-BFGS 400.
    "ufldl-patches": TrainConfig(),
    # UFLDL on MNIST: the first 10,000 training digits, 784-196-784.
    "mnist": TrainConfig(dataset="mnist", n_hidden=196, rho=0.1, beta=3.0, lam=3e-3),
    # scikit-learn's 8x8 digits (embedded, 1,797 images), 64-25-64.
    "digits": TrainConfig(dataset="digits", rho=0.1, beta=3.0, lam=1e-4),
    # UFLDL's linear decoder exercise on 8x8x3 colour patches of the embedded photographs,
    # ZCA-whitened (epsilon 0.1): 192-400-192 with a linear decoder.
    "color-patches": TrainConfig(dataset="color-patches", num_examples=20_000, n_hidden=400,
                                 rho=0.035, beta=5.0, lam=3e-3, decoder="linear"),
}

# Decoders a preset's data allows: ZCA-whitened inputs are not in [0, 1], so a sigmoid output
# cannot reconstruct them.
PRESET_DECODERS = {"color-patches": ("linear",)}


def check_preset(preset: str, config: TrainConfig) -> None:
    """Raises ValueError when the settings do not suit the preset's data."""
    allowed = PRESET_DECODERS.get(preset, ("sigmoid", "linear"))
    if config.decoder not in allowed:
        raise ValueError(
            f"the {preset} preset supports decoder {' or '.join(allowed)}, not "
            f"{config.decoder!r}: its ZCA-whitened inputs are not in [0, 1], so a sigmoid "
            f"output cannot reconstruct them. Pass --decoder {allowed[0]}."
        )
