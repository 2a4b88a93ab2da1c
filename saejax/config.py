"""Typed training configuration, checked when it is built, and the presets of ``saejax train``.

Each field of ``TrainConfig`` is declared with ``setting``, which records three things beside the
default: the help text (``saejax train`` and ``saejax sweep`` make every field but ``dataset`` a
flag, with this text as its help), the rule its value must obey, and which side of the compiled
program it is on:

- ``program=True``: the setting shapes the compiled training program (network size, optimizer,
  dtype, ...). ``TrainConfig.program()`` keeps exactly these, and compiled programs are cached
  on it.
- ``program=False``: the setting only feeds the program values (rho, beta, lam and the learning
  rate are traced leaves; the seed picks the initialization) or shapes the data and the logging.

A field declared without ``setting`` makes this module refuse to import, so a new field cannot be
added without deciding its side.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from saejax.schema import (
    ARCHS,
    DATASETS,
    DECODERS,
    DTYPES,
    GRADS,
    HYPER,
    KNOBS,
    LBFGS_ARCHS,
    LBFGS_MEMORY_DTYPES,
    MEMBER_EVALS,
    NORMALIZATIONS,
    OPTIMIZERS,
    OWN_SETTINGS,
    PENALTIES,
    SCHEDULES,
)

# Minibatch size of adam / sgd / momentum when batch_size is left at "auto".
DEFAULT_BATCH_SIZE = 256
AUTO = "auto"


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# Rules a numeric setting obeys: (test, how the error message states the rule).
RULES = {
    "open_unit": (lambda v: _is_number(v) and 0.0 < v < 1.0, "must lie strictly inside (0, 1)"),
    "fraction": (lambda v: _is_number(v) and 0.0 <= v < 1.0, "must lie in [0, 1)"),
    "nonnegative": (lambda v: _is_number(v) and math.isfinite(v) and v >= 0,
                    "must be finite and >= 0"),
    "positive": (lambda v: _is_number(v) and math.isfinite(v) and v > 0, "must be finite and > 0"),
    "positive_int": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
                     "must be a positive integer"),
    "whole": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
              "must be a whole number >= 0"),
    "batch_size": (lambda v: v is None or v == AUTO or (
        isinstance(v, int) and not isinstance(v, bool) and v >= 1),
        "must be a positive integer or auto (full batch: None)"),
    "step_count": (lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v < 2**31,
                   "must be a positive integer below 2**31 (steps are counted in int32)"),
    "seed": (lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**31,
             "must be a whole number in [0, 2**31)"),
}


def check_value(name: str, value, rule: str) -> None:
    """Raises ValueError naming ``name`` unless ``value`` obeys ``RULES[rule]``."""
    test, statement = RULES[rule]
    if not test(value):
        raise ValueError(f"{name} {statement}, got {value!r}.")


def setting(default, help: str, *, program: bool, rule: str | None = None,
            choices: tuple | None = None):
    """A ``TrainConfig`` field: default, help text, value rule or choices, and program side."""
    return dataclasses.field(default=default, metadata={
        "help": help, "program": program, "rule": rule, "choices": choices})


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run; library functions take it, never flags.

    The config checks itself when built: ``TrainConfig(rho=2.0)`` raises ``ValueError`` naming
    rho. ``batch_size="auto"`` (the default) becomes 256 for adam / sgd / momentum and None
    (full batch) for L-BFGS; ``replace(optimizer=...)`` chooses it again unless a batch size is
    given too. ``None`` asks for full-batch steps with any optimizer.
    """

    # --- data ---
    dataset: str = setting("patches", "training data (the preset picks it; a .npy or .npz "
                           "--data picks array)", program=False, choices=DATASETS)
    data: str | None = setting(
        None, "an (M, N) array as FILE.npy, FILE.npz (its one array) or FILE.npz:NAME; a "
        "directory saejax synth or saejax activations wrote; or an IMAGES.mat file, sparsenet "
        "directory or MNIST directory (unset: the embedded images; mnist needs it)",
        program=False)
    normalize: str = setting(
        "none", "normalization of the data, recorded with the model and applied again at "
        "encode time: none, ufldl (each example's mean removed, clipped at 3 std, scaled into "
        "[0.1, 0.9]) or "
        "standardize (per-feature mean 0, std 1)", program=False, choices=NORMALIZATIONS)
    num_examples: int = setting(
        10_000, "patches to sample, or MNIST or digits images to take (the first), or rows of "
        "a --data array or activations directory to sample (default: 10000; every row of an "
        "array or activations directory)",
        program=False, rule="positive_int")
    patch_size: int = setting(8, "side of a square patch in pixels (patches only)",
                              program=False, rule="positive_int")
    # --- model and loss ---
    arch: str = setting("sigmoid", "the sparse autoencoder: sigmoid (UFLDL's, penalty on "
                        "rho_hat), relu-l1, topk, batchtopk or jumprelu (linear decoders)",
                        program=True, choices=ARCHS)
    n_hidden: int = setting(25, "hidden units (latents) H", program=True, rule="positive_int")
    penalty: str = setting("kl", "sparsity penalty", program=True, choices=PENALTIES)
    rho: float = setting(0.01, "target mean activation rho, in (0, 1)", program=False,
                         rule="open_unit")
    beta: float = setting(3.0, "weight beta of the sparsity penalty, >= 0", program=False,
                          rule="nonnegative")
    lam: float = setting(1e-4, "weight decay lambda on W1 and W2, >= 0", program=False,
                         rule="nonnegative")
    decoder: str = setting(AUTO, "output layer of the sigmoid network: sigmoid (a3 = s(z3)) or "
                           "linear (a3 = z3); auto: the preset's (sigmoid; linear for "
                           "color-patches), and linear for the other architectures, whose "
                           "decoders are linear", program=True,
                           choices=(*DECODERS, AUTO))
    tied: bool = setting(False, "tie the weights, W2 = W1^T (sigmoid only)", program=True)
    l1: float = setting(1.0, "relu-l1: L1 coefficient of the codes, each weighted by its decoder column's norm, >= 0",
                        program=False, rule="nonnegative")
    k: int = setting(16, "topk: latents kept per example; batchtopk: on average, k * batch "
                     "kept per batch", program=False, rule="positive_int")
    l0: float = setting(1e-2, "jumprelu: L0 coefficient, >= 0", program=False,
                        rule="nonnegative")
    bandwidth: float = setting(1e-3, "jumprelu: kernel width eps of the thresholds' gradient",
                               program=True, rule="positive")
    aux_k: int = setting(256, "topk, batchtopk: dead latents (at most) that the auxiliary loss "
                         "reconstructs the residual with", program=True, rule="positive_int")
    aux_coeff: float = setting(1 / 32, "topk, batchtopk: weight of the auxiliary loss on dead "
                               "latents (0: none)", program=True, rule="nonnegative")
    dead_window: int = setting(100_000, "topk, batchtopk: a latent that fired on none of this "
                               "many training examples is dead for the auxiliary loss",
                               program=True, rule="positive_int")
    # --- optimization ---
    optimizer: str = setting(AUTO, "lbfgs (full batch, strong-Wolfe line search), adam, sgd or "
                             "momentum; auto: the preset's (lbfgs) for sigmoid, adam for the "
                             "others",
                             program=True, choices=(*OPTIMIZERS, AUTO))
    steps: int = setting(400, "optimizer iterations", program=True, rule="step_count")
    batch_size: int | str | None = setting(
        AUTO, f"examples per minibatch step (auto: {DEFAULT_BATCH_SIZE} for adam/sgd/momentum, "
        "full batch for lbfgs)", program=True, rule="batch_size")
    lr: float = setting(1e-2, "learning rate, the peak of a schedule (adam/sgd/momentum)",
                        program=False, rule="positive")
    schedule: str = setting("constant", "learning-rate schedule", program=True,
                            choices=SCHEDULES)
    momentum: float = setting(0.9, "momentum coefficient of the momentum optimizer, in [0, 1)",
                              program=True, rule="fraction")
    lbfgs_memory: int = setting(100, "L-BFGS history length (minFunc's default: 100)",
                                program=True, rule="positive_int")
    lbfgs_memory_dtype: str = setting(
        "same", "how the L-BFGS memory keeps its pairs: same (the params' dtype, minFunc's "
        "algorithm) or bfloat16 (each pair rounded, half the bytes a float32 tick reads on a "
        "GPU; the sums stay in the params' dtype; on the CPU it costs more memory and time)",
        program=True, choices=LBFGS_MEMORY_DTYPES)
    grad: str = setting("analytic", "gradient that drives training", program=True,
                        choices=GRADS)
    member_eval: str = setting(
        AUTO, "how a sweep evaluates its sigmoid-network members at once (a run has one): "
        "blocked (each member over blocks of examples, vmapped), whole (each member on all "
        "examples, vmapped), folded (all members' products stacked into wide ones) or kernel "
        "(one GPU kernel per member, its temporaries on chip; interpreted elsewhere, slowly); "
        "auto: the rule measured per platform (docs/gpu.md), recorded in a sweep's "
        "config.json",
        program=True, choices=(*MEMBER_EVALS, AUTO))
    dtype: str = setting("float32", "float32, or float64 (needs jax_enable_x64)", program=True,
                         choices=DTYPES)
    seed: int = setting(0, "seed of the data sample, the initialization and the minibatches",
                        program=False, rule="seed")
    # --- loop, logging, checkpoints ---
    steps_per_call: int = setting(100, "optimizer steps per compiled call (lax.scan)",
                                  program=False, rule="step_count")
    log_every: int = setting(1, "steps between metrics.jsonl lines (the last is always written)",
                             program=False, rule="step_count")
    checkpoint_every: int = setting(100, "steps between checkpoints, each at the first chunk "
                                    "end at or after a multiple (and one at the end)",
                                    program=False, rule="step_count")
    checkpoint_seconds: float = setting(
        60.0, "least seconds between two checkpoints before the end: a checkpoint every "
        "checkpoint_every steps is skipped until this long after the last (0: never skipped)",
        program=False, rule="nonnegative")
    keep_checkpoints: int = setting(3, "checkpoints kept", program=False, rule="positive_int")

    def __post_init__(self) -> None:
        family = self.arch != "sigmoid"
        if self.decoder == AUTO:
            object.__setattr__(self, "decoder", "linear" if family else "sigmoid")
        if self.optimizer == AUTO:
            object.__setattr__(self, "optimizer", "adam" if family else "lbfgs")
        if self.batch_size == AUTO:
            size = None if self.optimizer == "lbfgs" else DEFAULT_BATCH_SIZE
            object.__setattr__(self, "batch_size", size)
        self.validate()

    def replace(self, **changes) -> TrainConfig:
        """A copy with ``changes``. A new architecture picks its own decoder and optimizer, and
        a new optimizer its own batch size, unless they are given too."""
        if "arch" in changes:
            changes.setdefault("decoder", AUTO)
            changes.setdefault("optimizer", AUTO)
        if "optimizer" in changes and "batch_size" not in changes:
            changes["batch_size"] = AUTO
        return dataclasses.replace(self, **changes)

    def validate(self) -> None:
        """Raises ValueError naming the first setting that cannot work (run when built)."""
        for f in dataclasses.fields(self):
            value, meta = getattr(self, f.name), f.metadata
            if meta["choices"] is not None and value not in meta["choices"]:
                raise ValueError(f"{f.name} must be one of {list(meta['choices'])}, got {value!r}.")
            if meta["rule"] is not None:
                check_value(f.name, value, meta["rule"])
        if not isinstance(self.tied, bool):
            raise ValueError(f"tied must be True or False, got {self.tied!r}.")
        if self.data is not None and not isinstance(self.data, str):
            raise ValueError(f"data must be a path string or None, got {self.data!r}.")
        if self.optimizer == "lbfgs" and self.batch_size is not None:
            raise ValueError(f"batch_size must be None for L-BFGS, a full-batch method; got "
                             f"{self.batch_size}. On the command line, leave --batch-size out "
                             "(or pass auto); in Python, pass batch_size=None.")
        self._check_arch()

    def _check_arch(self) -> None:
        """The architecture's own rules: what its network and loss allow."""
        if self.arch == "sigmoid":
            return
        if self.decoder != "linear":
            raise ValueError(f"the {self.arch} architecture has a linear decoder; leave --decoder "
                             f"out (or pass linear), not {self.decoder!r}.")
        if self.tied:
            raise ValueError(f"tied weights are the sigmoid network's; {self.arch} trains an "
                             "encoder and a decoder of its own (initialized as transposes).")
        if self.optimizer == "lbfgs" and self.arch not in LBFGS_ARCHS:
            raise ValueError(
                f"L-BFGS cannot train {self.arch}: its loss jumps where a latent enters or leaves "
                "the selection (top-k, a threshold), and a line search needs a continuous "
                f"function. Use --optimizer adam (or sgd, momentum); L-BFGS trains "
                f"{' and '.join(LBFGS_ARCHS)}.")

    def check_k(self, k=None) -> None:
        """Raises ValueError when topk's or batchtopk's k (``self.k``, or a swept value) exceeds
        the latents. Checked where a run or sweep starts, not when a config is built: a sweep's
        base k is never trained."""
        k = self.k if k is None else k
        if self.arch in ("topk", "batchtopk") and k > self.n_hidden:
            raise ValueError(f"k = {k} exceeds the {self.n_hidden} latents (n_hidden); "
                             "pass a smaller --k or more --n-hidden.")

    def program(self) -> TrainConfig:
        """This config with every setting outside the compiled program reset to its default.

        Two configs with equal ``program()`` run the same compiled training program: rho, beta,
        lam and the learning rate are traced leaves, the seed only picks the initial state, and
        the data and logging settings never enter it. Compiled programs are cached on this key.
        """
        return dataclasses.replace(self, **{f.name: f.default for f in dataclasses.fields(self)
                                            if not f.metadata["program"]})


# Settings added after records were first written, with the value every earlier run and sweep
# trained with: a config.json without the setting is read as having this value.
EARLIER_DEFAULTS = {"member_eval": "blocked", "lbfgs_memory_dtype": "same"}

# Settings that only say how progress is logged and checkpointed: a resumed run or sweep may
# change them, as they leave the training untouched.
RECORD_SETTINGS = ("log_every", "checkpoint_every", "checkpoint_seconds", "keep_checkpoints")
# A resumed run may also go on with another learning rate or a larger budget (config.json's
# segments say which steps ran with which), and another member_eval, which only sweeps use. A
# sweep may not: its members' rows would no longer describe one training each.
RUN_RESUMABLE = ("lr", "steps", "member_eval", *RECORD_SETTINGS)


def refuse_lr_for_lbfgs(config: TrainConfig, lr_given: bool) -> None:
    """Raises ValueError when a learning rate is given to L-BFGS, whose line search picks
    every step."""
    if config.optimizer == "lbfgs" and lr_given:
        raise ValueError("--lr does not apply to L-BFGS, whose line search chooses every step: "
                         "leave it out, or pick --optimizer adam, sgd or momentum.")


def rule_of(name: str) -> str | None:
    """The value rule of the TrainConfig field ``name`` (see ``RULES``)."""
    return TrainConfig.__dataclass_fields__[name].metadata["rule"]


def program_fields() -> tuple:
    """Names of the settings that shape the compiled program (see the module docstring)."""
    return tuple(f.name for f in dataclasses.fields(TrainConfig) if f.metadata["program"])


_undecided = [f.name for f in dataclasses.fields(TrainConfig) if "program" not in f.metadata]
if _undecided:
    raise TypeError(f"TrainConfig fields {_undecided} must be declared with setting(..., "
                    "program=True or False): say whether they shape the compiled program.")


# The presets of `saejax train`; any field can be overridden on the command line.
PRESETS = {
    # UFLDL's sparse autoencoder exercise: 10,000 8x8 natural patches, 64-25-64, L-BFGS 400.
    "ufldl-patches": TrainConfig(),
    # UFLDL on MNIST: the first 10,000 training digits, 784-196-784.
    "mnist": TrainConfig(dataset="mnist", n_hidden=196, rho=0.1, beta=3.0, lam=3e-3),
    # scikit-learn's 8x8 digits (embedded, 1,797 images), 64-25-64.
    "digits": TrainConfig(dataset="digits", num_examples=1797, rho=0.1, beta=3.0, lam=1e-4),
    # UFLDL's linear decoder exercise on 8x8x3 colour patches of the embedded photographs,
    # ZCA-whitened (epsilon 0.1): 192-400-192 with a linear decoder.
    "color-patches": TrainConfig(dataset="color-patches", num_examples=20_000, n_hidden=400,
                                 rho=0.035, beta=5.0, lam=3e-3, decoder="linear"),
}

# Decoders a preset's data allows: ZCA-whitened inputs are not in [0, 1], so a sigmoid output
# cannot reconstruct them.
PRESET_DECODERS = {"color-patches": ("linear",)}


def network_name(config: TrainConfig, n_visible: int) -> str:
    """The network in words: "64-25-64", or "topk 64-256-64" for the family."""
    sizes = f"{n_visible}-{config.n_hidden}-{n_visible}"
    return sizes if config.arch == "sigmoid" else f"{config.arch} {sizes}"


def check_preset(preset: str, config: TrainConfig) -> None:
    """Raises ValueError when the settings do not suit the preset's data."""
    allowed = PRESET_DECODERS.get(preset, DECODERS)
    if config.decoder not in allowed:
        raise ValueError(
            f"the {preset} preset supports decoder {' or '.join(allowed)}, not "
            f"{config.decoder!r}: its ZCA-whitened inputs are not in [0, 1], so a sigmoid "
            f"output cannot reconstruct them. Pass --decoder {allowed[0]}."
        )


# Which architectures read each knob (lam: all) and each setting of some architectures only.
OWNERS = {**{name: tuple(a for a in ARCHS if name in KNOBS[a]) or ARCHS for name in HYPER},
          **OWN_SETTINGS}


def check_own_knobs(arch: str, given, saved: bool = False) -> None:
    """Raises ValueError when ``given`` (the settings a user set) holds a knob (``KNOBS``) or a
    setting (``OWN_SETTINGS``) of other architectures only: it would be recorded and do nothing.
    ``lam`` belongs to all. ``saved``: the architecture is a resumed run's own, which cannot
    change."""
    others = [a for a in given if arch not in OWNERS[a]]
    if not others:
        return
    what = "knob" if all(a in HYPER for a in others) else "setting"
    one = len(others) == 1
    belong = sorted({n for a in others for n in OWNERS[a]})
    raise ValueError(
        f"{', '.join(others)} {f'is not a {what}' if one else f'are not {what}s'} of {arch} "
        f"({'it belongs' if one else 'they belong'} to {', '.join(belong)}); {arch}'s "
        f"{'knobs are' if len(KNOBS[arch]) > 1 else 'knob is'} {' and '.join(KNOBS[arch])}. "
        + (f"The run resumed is {arch} (its config.json says so): leave "
           f"{', '.join('--' + a.replace('_', '-') for a in others)} out." if saved else
           "Pass --arch to pick the architecture."))
