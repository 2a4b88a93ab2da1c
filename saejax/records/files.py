"""Files saejax writes: whole or not at all, with the mode the user's umask gives, and
checksums that tell a file that changed after it was written.

    replace(path, write)        ``write(tmp)`` fills a temporary file of a name no other
                                process uses, created as ``open`` creates a file (0644 under
                                umask 022, 0600 under 077), then renamed over ``path``: a
                                kill leaves the old contents or the new, never a mix
    write_text / write_json     the same for text and JSON
    read_json                   JSON read back, or a ``RecordError`` naming the file
    sha256(path)                the hex digest of a file's bytes
    digest(tree)                the sha256 of a tree of arrays (names, dtypes, shapes, bytes)
    fingerprint(data)           a short hash of training data, which a resume must match

``RecordError`` is the error for a record that cannot be read or written: a missing, garbled or
corrupt file, a full disk or a read-only directory. Its message names the file and what to do;
the command line exits 2 with it.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import uuid
from pathlib import Path

import numpy as np


class RecordError(ValueError):
    """A file of a run, a sweep or an export that cannot be read or written as it should."""


def replace(path: str | Path, write) -> Path:
    """Writes ``path`` in one step: ``write(tmp)`` fills a temporary file beside it (a unique
    name, so two processes never share one, created with mode 0666 less the umask, as ``open``
    creates a file), which is renamed over ``path``. A failure leaves ``path`` as it was and no
    temporary file behind; an ``OSError`` (a full disk, a read-only directory) becomes a
    ``RecordError`` naming ``path``."""
    path = Path(path)
    name = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        mode = _create(name)
    except OSError as err:
        raise _write_error(path, err) from err
    try:
        write(name)
        os.chmod(name, mode)  # a writer that made its own file (safetensors: 0600) gets it too
        os.replace(name, path)
    except OSError as err:
        raise _write_error(path, err) from err
    finally:
        if name.exists():
            name.unlink()
    return path


def _create(name: Path) -> int:
    """Creates the empty file ``name`` as ``open`` would (0666 less the umask, which is read
    here without being changed) and returns its mode."""
    fd = os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
    try:
        return stat.S_IMODE(os.fstat(fd).st_mode)
    finally:
        os.close(fd)


def write_text(path: str | Path, text: str) -> Path:
    """Replaces ``path``'s contents with ``text`` (UTF-8) in one step (``replace``)."""
    return replace(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: str | Path, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=2) + "\n")


def read_json(path: str | Path, kind: type | None = dict):
    """The JSON in ``path``; a ``RecordError`` naming the file when it is missing, unreadable,
    not UTF-8, not JSON, or (``kind``) not a JSON object."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise RecordError(f"{path} is missing: is {path.parent} a run directory?") from err
    except UnicodeDecodeError as err:
        raise RecordError(f"{path} is not UTF-8 text: the file is corrupt. {_RESTORE}") from err
    except json.JSONDecodeError as err:
        raise RecordError(f"{path} is not readable JSON ({err}). {_RESTORE}") from err
    except OSError as err:
        raise RecordError(f"cannot read {path}: {err.strerror or err}.") from err
    if kind is not None and not isinstance(obj, kind):
        raise RecordError(f"{path} holds a JSON {type(obj).__name__}, not the "
                          f"{kind.__name__} saejax writes there. {_RESTORE}")
    return obj


_RESTORE = "Restore it from a copy, or start again in another directory."


def sha256(path: str | Path) -> str:
    """The sha256 of the bytes of ``path``, as hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def digest(tree: dict, prefix: str = "") -> str:
    """The sha256 of a nested dict of arrays: every leaf's name, dtype, shape and bytes, in
    sorted order, so that the same values give the same digest wherever they were saved."""
    h = hashlib.sha256()
    for name, leaf in _leaves(tree, prefix):
        a = np.ascontiguousarray(np.asarray(leaf))
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def fingerprint(data, stream_sha256: str | None = None) -> str:
    """A short hash of the training data as trained on (normalized): what a run or sweep
    records so that a resume on other data is refused. For an activations stream, ``data`` is
    its evaluation rows and ``stream_sha256`` its cache's verified digest."""
    rows = hashlib.sha256(memoryview(np.ascontiguousarray(data)).cast("B")).hexdigest()[:16]
    if stream_sha256 is None:
        return rows
    return hashlib.sha256((stream_sha256 + rows).encode()).hexdigest()[:16]


def _leaves(tree: dict, prefix: str):
    for key in sorted(tree):
        name = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(tree[key], dict):
            yield from _leaves(tree[key], name)
        else:
            yield name, tree[key]


def _write_error(path: Path, err: OSError) -> RecordError:
    return RecordError(f"cannot write {path}: {err.strerror or err}. Nothing there was changed; "
                       "free some space or choose a directory you can write to, then run "
                       "again (with resume=True to continue a run).")
