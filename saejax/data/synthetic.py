"""Synthetic data with a known dictionary: sparse features in superposition, seeded and recorded.

Each example is x = c D (+ noise): c_F a sparse code of F true features (feature i fires with
probability p_i, Zipf-ordered, with a magnitude when it fires) and D_FxD a dictionary of F unit
rows in d < F dimensions, so the features share the space (superposition). A sparse autoencoder
trained on x can be scored against D and against the saved true codes of a held-out set.

The randomness is one ``np.random.SeedSequence(seed)`` spawned into four streams, used in this
order: the dictionary; the hierarchy's parents; the held-out codes and noise; the training codes
and noise, ``CHUNK`` rows at a time (codes, then noise, per chunk). The held-out set therefore
does not depend on ``num_examples``, and one config always gives the same bytes.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import ndtri

from saejax.data.arrays import file_sha256
from saejax.data.errors import DataError

X_FILE = "x.npy"  # the training examples, (M, d): what `saejax train --data` reads
RECORD = "synth.json"
FORMAT = "saejax-synthetic"
FILES = ("x", "heldout_x", "heldout_codes", "dictionary", "probabilities", "parents")
MAGNITUDES = ("folded-normal", "exponential", "constant")
CHUNK = 10_000  # training rows drawn at once: the dense codes of one chunk are all that is held


def _setting(default, help: str):
    return dataclasses.field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class SynthConfig:
    """Everything that defines a synthetic set; it checks itself when built (``DataError``)."""

    n_dims: int = _setting(64, "d, each example's dimension (< n_features: superposition)")
    n_features: int = _setting(512, "F, the number of true feature directions")
    num_examples: int = _setting(200_000, "training examples")
    num_heldout: int = _setting(10_000, "held-out examples, whose true codes are saved")
    mean_l0: float = _setting(8.0, "expected number of active true features per example")
    zipf_exponent: float = _setting(0.5, "a: feature i fires with probability proportional to "
                                         "(i + 1) ** -a, capped at 1")
    magnitude: str = _setting("folded-normal", "a firing feature's value: folded-normal "
                              "|N(mean, std)|, exponential (that mean) or constant (the mean)")
    magnitude_mean: float = _setting(1.0, "the magnitude's mean parameter, > 0")
    magnitude_std: float = _setting(0.5, "folded-normal's std parameter, >= 0")
    correlation: float = _setting(0.0, "in [0, 1): groups of group-size consecutive features "
                                       "fire together (Gaussian copula; 0: independent)")
    group_size: int = _setting(8, "features per correlated group")
    hierarchy: float = _setting(0.0, "in [0, 1): the fraction of features that are children; "
                                     "a child fires only when its parent fires")
    noise_std: float = _setting(0.0, "std of Gaussian noise added to x (codes stay clean)")
    seed: int = _setting(0, "seeds everything; the same settings give the same bytes")

    def __post_init__(self):
        def need(ok, name, allowed):
            if not ok:
                flag = "--" + name.replace("_", "-")
                raise DataError(f"synthetic data: {name} = {getattr(self, name)!r} ({flag} on the "
                                f"command line), but it must be {allowed}.")

        def integer(name, low):
            value = getattr(self, name)
            need(isinstance(value, int) and not isinstance(value, bool) and value >= low, name,
                 f"an integer >= {low}")

        def real(name):
            value = getattr(self, name)
            need(isinstance(value, (int, float)) and not isinstance(value, bool)
                 and math.isfinite(value), name, "a finite number")
            return float(value)

        F = self.n_features
        integer("n_features", 2)
        integer("n_dims", 1)
        need(self.n_dims < F, "n_dims", f"less than n_features = {F} (superposition)")
        integer("num_examples", 1)
        integer("num_heldout", 1)
        need(0 < real("mean_l0") <= F, "mean_l0", f"in (0, n_features = {F}]")
        need(real("zipf_exponent") >= 0, "zipf_exponent", ">= 0")
        need(self.magnitude in MAGNITUDES, "magnitude", f"one of {', '.join(MAGNITUDES)}")
        need(real("magnitude_mean") > 0, "magnitude_mean", "> 0")
        need(real("magnitude_std") >= 0, "magnitude_std", ">= 0")
        need(0 <= real("correlation") < 1, "correlation", "in [0, 1)")
        integer("group_size", 1)
        need(0 <= real("hierarchy") < 1 and round(self.hierarchy * F) < F, "hierarchy",
             f"in [0, 1) with round(hierarchy * n_features) < n_features = {F} (feature 0 is "
             "always a root)")
        need(real("noise_std") >= 0, "noise_std", ">= 0")
        integer("seed", 0)


@dataclass(frozen=True, eq=False)
class SyntheticSet:
    """A generated (or loaded) set: x_MxD, heldout_x_HxD and heldout_codes_HxF (float32),
    dictionary D_FxD (float32, unit rows), probabilities p_F (float64), parents parent_F (int64,
    -1 for a root) and the config that made them."""

    x: np.ndarray
    heldout_x: np.ndarray
    heldout_codes: np.ndarray
    dictionary: np.ndarray
    probabilities: np.ndarray
    parents: np.ndarray
    config: SynthConfig


def true_dictionary(rng: np.random.Generator, n_features: int, n_dims: int) -> np.ndarray:
    """D_FxD: F Gaussian rows scaled to unit norm (in float64, then cast to float32)."""
    D_FxD = rng.standard_normal((n_features, n_dims))
    return (D_FxD / np.linalg.norm(D_FxD, axis=1, keepdims=True)).astype(np.float32)


def firing_probabilities(n_features: int, mean_l0: float, zipf_exponent: float) -> np.ndarray:
    """p_F, p_i = min(1, c (i + 1) ** -a) with c chosen so that sum(p) = mean_l0: nonincreasing,
    feature 0 the most frequent.

    Water filling, in closed form: with the k most frequent features capped at 1, the rest share
    mean_l0 - k, so c = (mean_l0 - k) / sum_{i >= k} w_i; k is the smallest count for which the
    first uncapped feature stays at or below 1.
    """
    if mean_l0 >= n_features:
        return np.ones(n_features)
    w_F = np.arange(1, n_features + 1, dtype=np.float64) ** -float(zipf_exponent)
    tail_F = np.cumsum(w_F[::-1])[::-1]  # tail_F[k] = sum_{i >= k} w_i
    c_F = (mean_l0 - np.arange(n_features)) / tail_F
    k = int(np.argmax(c_F * w_F <= 1))  # exists: k = floor(mean_l0) qualifies
    p_F = np.minimum(1.0, c_F[k] * w_F)
    p_F[:k] = 1.0
    return p_F


def parents_of(rng: np.random.Generator, n_features: int, hierarchy: float) -> np.ndarray:
    """parent_F: -1 for a root, else the root the feature depends on.

    The children are a seeded random subset of round(hierarchy * F) features among 1..F-1; each
    is given a parent drawn uniformly among the roots of smaller index (feature 0 is always a
    root, so there is one). Parents are roots, so the tree has one level, and a parent is at
    least as frequent as its child (p is nonincreasing).
    """
    parent_F = np.full(n_features, -1, dtype=np.int64)
    n_children = round(hierarchy * n_features)
    if n_children == 0:
        return parent_F
    children = np.sort(rng.choice(np.arange(1, n_features), size=n_children, replace=False))
    roots = np.setdiff1d(np.arange(n_features), children)
    before = np.searchsorted(roots, children)  # roots of smaller index than each child, >= 1
    parent_F[children] = roots[rng.integers(0, before)]
    return parent_F


def sample_codes(rng: np.random.Generator, m: int, p_F: np.ndarray, parent_F: np.ndarray,
                 config: SynthConfig) -> np.ndarray:
    """Draws m true codes, codes_MxF (float32): which features fire, then their magnitudes.

    A child uses q_i = p_i / p_parent for its own draw and fires only when its parent fires too,
    so its marginal stays p_i; this holds exactly when correlation is 0 (a correlated parent in
    the child's group makes the two fire together more often). With correlation r > 0, each
    group of group_size consecutive features shares a normal draw s: z_i = sqrt(r) s + sqrt(1 - r)
    e_i, and feature i's draw succeeds where Phi(z_i) < q_i, computed as z_i < Phi^-1(q_i). A
    firing feature takes a magnitude from config.magnitude; the rest are 0.

    Args:
      rng: the stream to draw from (uniforms or normals for firing, then the magnitudes).
      m: the number of codes.
      p_F: firing probabilities, nonincreasing (``firing_probabilities``).
      parent_F: each feature's parent, -1 for a root (``parents_of``).
      config: the magnitude, correlation and group_size.

    Returns:
      codes_MxF, float32.
    """
    n_features = len(p_F)
    child = parent_F >= 0
    q_F = p_F.copy()
    q_F[child] = p_F[child] / p_F[parent_F[child]]
    r = config.correlation
    if r > 0:
        group_F = np.arange(n_features) // config.group_size
        shared_MxG = rng.standard_normal((m, int(group_F[-1]) + 1))
        z_MxF = math.sqrt(1 - r) * rng.standard_normal((m, n_features))
        z_MxF += math.sqrt(r) * shared_MxG[:, group_F]
        fires_MxF = z_MxF < ndtri(q_F)
    else:
        fires_MxF = rng.random((m, n_features)) < q_F
    fires_MxF[:, child] &= fires_MxF[:, parent_F[child]]  # parents are roots: one pass suffices
    n_fire = int(fires_MxF.sum())
    mean, std = config.magnitude_mean, config.magnitude_std
    if config.magnitude == "folded-normal":
        values = np.abs(rng.normal(mean, std, n_fire))
    elif config.magnitude == "exponential":
        values = rng.exponential(mean, n_fire)
    else:
        values = np.full(n_fire, mean)
    codes_MxF = np.zeros((m, n_features), dtype=np.float32)
    codes_MxF[fires_MxF] = values  # row-major: the same draws land in the same places
    return codes_MxF


def _examples(rng, codes_MxF, D_FxD, noise_std) -> np.ndarray:
    """x_MxD = codes D (in float64, from the float32 arrays that are saved) + noise, float32."""
    x_MxD = codes_MxF.astype(np.float64) @ D_FxD.astype(np.float64)
    if noise_std > 0:
        x_MxD += noise_std * rng.standard_normal(x_MxD.shape)
    return x_MxD.astype(np.float32)


def generate(config: SynthConfig) -> SyntheticSet:
    """Generates the set ``config`` defines (see the module docstring for the streams' order).

    Args:
      config: the settings.

    Returns:
      A SyntheticSet. The training codes are drawn ``CHUNK`` rows at a time and only their
      product x (plus noise) is kept; the held-out codes are kept with their heldout_x.
    """
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(4)]
    D_FxD = true_dictionary(streams[0], config.n_features, config.n_dims)
    parent_F = parents_of(streams[1], config.n_features, config.hierarchy)
    p_F = firing_probabilities(config.n_features, config.mean_l0, config.zipf_exponent)
    heldout_codes = sample_codes(streams[2], config.num_heldout, p_F, parent_F, config)
    heldout_x = _examples(streams[2], heldout_codes, D_FxD, config.noise_std)
    x_MxD = np.empty((config.num_examples, config.n_dims), dtype=np.float32)
    for start in range(0, config.num_examples, CHUNK):
        rows = min(CHUNK, config.num_examples - start)
        codes_MxF = sample_codes(streams[3], rows, p_F, parent_F, config)
        x_MxD[start:start + rows] = _examples(streams[3], codes_MxF, D_FxD, config.noise_std)
    return SyntheticSet(x_MxD, heldout_x, heldout_codes, D_FxD, p_F, parent_F, config)


def facts(data: SyntheticSet) -> dict:
    """Measured facts of a set: the held-out codes' mean L0 and range of per-feature firing
    frequency, and the largest |cosine| between two distinct dictionary rows."""
    fires = data.heldout_codes != 0
    frequency_F = fires.mean(axis=0)
    D_FxD = data.dictionary.astype(np.float64)
    cosine_FxF = np.abs(D_FxD @ D_FxD.T)
    np.fill_diagonal(cosine_FxF, 0.0)
    return {"heldout_mean_l0": float(fires.sum(axis=1).mean()),
            "heldout_firing_frequency": {"min": float(frequency_F.min()),
                                         "max": float(frequency_F.max())},
            "max_abs_cosine": float(cosine_FxF.max())}


def write(out: str | Path, config: SynthConfig) -> Path:
    """Generates the set and writes it to the directory ``out`` (created if needed).

    Each array goes to OUT/<name>.npy (``FILES``, x.npy the training examples), each written
    whole or not at all; synth.json comes last, with the format, the config, the saejax version,
    each file's sha256 and the measured ``facts``.

    Args:
      out: the directory.
      config: the settings.

    Returns:
      ``out`` as a Path.

    Raises:
      DataError: ``out`` is a file, or already holds synth.json or one of the arrays (nothing is
        written or changed).
    """
    from saejax.records import files

    out = Path(out)
    taken = [name for name in (RECORD, *(f"{n}.npy" for n in FILES)) if (out / name).exists()]
    if out.exists() and not out.is_dir():
        raise DataError(f"{out} is a file; give saejax synth a directory to write the set to.")
    if taken:
        raise DataError(f"{out} already holds {', '.join(taken)}; nothing was changed. Choose "
                        "another directory, or remove that set first.")
    data = generate(config)
    out.mkdir(parents=True, exist_ok=True)
    sha = {}
    for name in FILES:
        path = out / f"{name}.npy"
        files.replace(path, _saver(getattr(data, name)))
        sha[path.name] = file_sha256(path)
    files.write_json(out / RECORD, {"format": FORMAT, "config": dataclasses.asdict(config),
                                    "saejax_version": _version(), "sha256": sha,
                                    "facts": facts(data)})
    return out


def _saver(array: np.ndarray):
    def save(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.save would add .npy to the temporary name
            np.save(f, array)

    return save


def _version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("saejax")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return None


def is_synthetic(path: str | Path) -> bool:
    """Whether ``path`` is a directory holding a synthetic set's record (synth.json)."""
    return (Path(path) / RECORD).is_file()


def load(path: str | Path) -> SyntheticSet:
    """Loads a set that ``write`` wrote, checking every file against its recorded sha256.

    Args:
      path: the directory.

    Returns:
      The SyntheticSet, its x memory-mapped (read-only) and the other arrays in memory.

    Raises:
      DataError: no readable synth.json of this format, or a file missing or changed since it
        was written (the message names it).
    """
    from saejax.records import files

    path = Path(path)
    try:
        record = files.read_json(path / RECORD)
    except files.RecordError as err:
        raise DataError(f"{path} holds no readable synthetic set: {err}") from err
    if record.get("format") != FORMAT:
        raise DataError(f"{path / RECORD} is not a synthetic set's record (its format is "
                        f"{record.get('format')!r}, not {FORMAT!r}).")
    arrays = {}
    for name in FILES:
        file = path / f"{name}.npy"
        if not file.is_file():
            raise DataError(f"{file} is missing; run `saejax synth` again to write the set.")
        if file_sha256(file) != record.get("sha256", {}).get(file.name):
            raise DataError(f"{file} has changed since it was written (its sha256 differs from "
                            f"{RECORD}'s); run `saejax synth` again to write the set.")
        arrays[name] = np.load(file, mmap_mode="r" if name == "x" else None)
    try:
        config = SynthConfig(**record.get("config", {}))
    except TypeError as err:
        raise DataError(f"{path / RECORD} holds settings this version does not know: {err}; "
                        "run `saejax synth` again to write the set.") from err
    return SyntheticSet(**arrays, config=config)


def truth_of(info: dict) -> SyntheticSet | None:
    """The synthetic set behind training data, from its description (``datasets.config_data``
    marks an array that is a set's x.npy with ``"synthetic"``: the set's directory), checked
    against its record; None for any other data."""
    return load(info["synthetic"]) if info.get("synthetic") else None
