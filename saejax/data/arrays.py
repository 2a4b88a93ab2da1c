"""A user's (M, N) array as training data: FILE.npy, FILE.npz or FILE.npz:NAME, checked and described."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from saejax.data.errors import DataError, check_finite

SUFFIXES = (".npy", ".npz")
CHUNK_BYTES = 1 << 20  # the file is hashed a MiB at a time, never read whole


def split_spec(spec: str | Path) -> tuple[Path, str | None]:
    """``(path, name)`` of ``FILE.npy``, ``FILE.npz`` or ``FILE.npz:NAME`` (name None unless given)."""
    text = str(spec)
    head, sep, name = text.rpartition(":")
    if sep and head.lower().endswith(SUFFIXES) and name and "/" not in name:
        return Path(head), name
    return Path(text), None


def is_array_spec(spec) -> bool:
    """Whether a --data value names an array: a file ending in .npy or .npz (or .npz:NAME), or
    a directory of cached activations (``saejax activations``)."""
    from saejax.data import activation_files

    return spec is not None and (split_spec(spec)[0].suffix.lower() in SUFFIXES
                                 or activation_files.is_activations(spec))


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, hex, read in chunks so that any size fits in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def sample_indices(rows: int, num_examples: int, seed: int) -> np.ndarray:
    """The sorted row indices of a seeded sample, without replacement, of ``num_examples`` of
    ``rows`` rows (``np.random.default_rng(seed)``); sorted so a memory-mapped file is read in
    order."""
    return np.sort(np.random.default_rng(seed).choice(rows, size=num_examples, replace=False))


# Each suffix's format: its first bytes (NumPy's .npy header, a zip archive's), and its name.
FORMATS = {".npy": (b"\x93NUMPY", "an .npy file (NumPy's np.save)"),
           ".npz": (b"PK", "an .npz file (a zip archive, NumPy's np.savez)")}


def _check_format(path: Path) -> None:
    """Refuses a file whose first bytes are not its suffix's format (NumPy would try it as a
    pickle, and suggest allow_pickle)."""
    suffix = path.suffix.lower()
    with open(path, "rb") as f:
        head = f.read(max(len(magic) for magic, _ in FORMATS.values()))
    if head.startswith(FORMATS[suffix][0]):
        return
    what = FORMATS[suffix][1]
    other = next((s for s, (magic, _) in FORMATS.items() if head.startswith(magic)), None)
    if other:
        raise DataError(f"{path} is not {what} but {FORMATS[other][1]}: rename it to end in "
                        f"{other}.")
    raise DataError(f"{path} is not {what}: its first bytes are {head!r}. Save a numeric "
                    "(M, N) array with np.save or np.savez.")


def load_array(spec: str | Path, num_examples: int | None = None,
               seed: int = 0) -> tuple[np.ndarray, dict]:
    """Loads an (M, N) array from FILE.npy, FILE.npz (its one array) or FILE.npz:NAME.

    A .npy file is memory-mapped (``np.load(..., mmap_mode="r")``): when ``num_examples`` is less
    than its rows, only the rows of a seeded sample are read, so a file larger than memory can
    still be sampled. NumPy cannot memory-map an .npz member (it is a zip entry, possibly
    compressed), so a member is loaded whole and then sampled.

    Args:
      spec: the file, with ``:NAME`` to pick one array of an .npz.
      num_examples: rows to take; None (or as many as the file holds, or more): all of them, in
        order. Fewer: a sample without replacement, seeded by ``seed``, its rows in file order
        (``sample_indices``).
      seed: seeds the sample.

    Returns:
      ``(x, info)``: x as float32 (float64 stays float64; integers, booleans and float16 become
      float32), and for config.json ``dataset`` ("array"), ``source`` (spec as given),
      ``path`` (absolute), ``npz_name``, ``file_bytes``, ``sha256`` (of the file's bytes),
      ``rows_in_file``, ``shape`` (of x), ``dtype`` (as stored), ``num_examples``, ``sampled``
      and ``sample_seed`` (None unless sampled).

    Raises:
      DataError: a missing file, an unknown or unspecified .npz member (the message lists the
        names), an array that is not 2-D, not numeric or empty, or NaN/Inf values.
    """
    from saejax.data import activation_files

    if activation_files.is_activations(spec):
        return _load_activations(Path(spec), num_examples, seed)
    path, name = split_spec(spec)
    if path.suffix.lower() not in SUFFIXES:
        raise DataError(f"{spec}: an array file ends in .npy or .npz (FILE.npz:NAME picks one "
                        "array of an .npz); save yours with np.save or np.savez.")
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise DataError(f"{path} {what}: give --data an existing .npy or .npz file.")
    if name is not None and path.suffix.lower() == ".npy":
        raise DataError(f"{spec}: only an .npz holds named arrays; drop :{name}.")
    try:
        _check_format(path)
        if path.suffix.lower() == ".npy":
            array = np.load(path, mmap_mode="r")
        else:
            array, name = _npz_member(path, name)
    except DataError:
        raise
    except (ValueError, OSError, EOFError) as err:  # not a NumPy file, or object arrays
        raise DataError(f"{spec} cannot be read as a numeric NumPy array ({err}); save a "
                        "numeric (M, N) array with np.save or np.savez.") from err
    _check_array(array, spec)
    rows = array.shape[0]
    sampled = num_examples is not None and num_examples < rows
    rows_read = sample_indices(rows, num_examples, seed) if sampled else slice(None)
    dtype = np.float64 if array.dtype in (np.float64, np.longdouble) else np.float32
    # A memmap reads only these rows, and is copied so that nothing stays tied to the file; an
    # .npz member is in memory already.
    copy = np.array if isinstance(array, np.memmap) else np.asarray
    x = copy(array[rows_read], dtype=dtype)
    check_finite(x, str(spec))
    info = {"dataset": "array", "source": str(spec), "path": str(path.resolve()),
            "npz_name": name, "file_bytes": path.stat().st_size, "sha256": file_sha256(path),
            "rows_in_file": int(rows), "shape": list(x.shape), "dtype": str(array.dtype),
            "num_examples": int(x.shape[0]), "sampled": bool(sampled),
            "sample_seed": int(seed) if sampled else None}
    return x, info


def _load_activations(home: Path, num_examples, seed) -> tuple[np.ndarray, dict]:
    """``load_array`` of a directory of cached activations: every row of its shards, or a seeded
    sample of them, read from memory maps; its sha256 covers every shard, checked."""
    from saejax.data import activation_files as af

    record = af.read_record(home)
    rows = sum(s["rows"] for s in record["shards"])
    sampled = num_examples is not None and num_examples < rows
    x = af.read_rows(home, record, sample_indices(rows, num_examples, seed) if sampled else None)
    info = {"dataset": "array", "source": str(home), "path": str(home.resolve()),
            "npz_name": None, "file_bytes": sum((home / s["activations"]).stat().st_size
                                                for s in record["shards"]),
            "sha256": af.verify(home, record), "rows_in_file": int(rows),
            "shape": list(x.shape), "dtype": record["dtype"], "num_examples": int(x.shape[0]),
            "sampled": bool(sampled), "sample_seed": int(seed) if sampled else None,
            "activations": af.describe(home, record)}
    return x, info


def describe_array(x) -> dict:
    """The data description of an in-memory (M, N) array, for config.json: ``dataset``
    ("array"), ``source`` ("in-memory array"), ``shape``, ``dtype`` and ``sha256`` (of its
    C-contiguous bytes)."""
    x = np.ascontiguousarray(np.asarray(x))
    return {"dataset": "array", "source": "in-memory array", "shape": list(x.shape),
            "dtype": str(x.dtype), "sha256": hashlib.sha256(memoryview(x).cast("B")).hexdigest()}


def _npz_member(path: Path, name: str | None) -> tuple[np.ndarray, str]:
    with np.load(path) as archive:
        names = list(archive.files)
        if not names:
            raise DataError(f"{path} holds no arrays; save one with np.savez({path.name}, x=...).")
        if name is None:
            if len(names) != 1:
                listed = ", ".join(names)
                raise DataError(f"{path} holds {len(names)} arrays ({listed}); pick one as "
                                f"--data {path}:NAME.")
            name = names[0]
        elif name not in names:
            raise DataError(f"{path} holds no array named {name!r}; its arrays: "
                            f"{', '.join(names) or 'none'}.")
        return archive[name], name


def _check_array(array: np.ndarray, spec) -> None:
    if array.ndim != 2:
        raise DataError(f"{spec} holds an array of shape {array.shape}; training data is 2-D "
                        "(M examples, N features), one example per row: reshape it, e.g. "
                        "x.reshape(len(x), -1).")
    kind = array.dtype.kind
    if kind not in "biuf":
        raise DataError(f"{spec} holds {array.dtype} values; training data must be numeric "
                        "(integers, booleans or floats): convert it with x.astype(np.float32).")
    if array.size == 0:
        raise DataError(f"{spec} holds an empty array of shape {array.shape}; give at least one "
                        "example of at least one feature.")
