"""A directory of cached activations (``saejax activations`` writes one) read as training data:
its record, its rows across memory-mapped shards, and one checksum of them all."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from saejax.data.errors import DataError, check_finite
from saejax.records import files

RECORD = "activations.json"


def is_activations(path) -> bool:
    """Whether ``path`` is a directory holding an activations record."""
    return path is not None and (Path(path) / RECORD).is_file()


def read_record(home: str | Path, complete: bool = True) -> dict:
    """The record of the cache in ``home``; with ``complete``, a ``DataError`` unless every
    shard it asked for was written."""
    path = Path(home) / RECORD
    if not path.is_file():
        raise DataError(f"{home} holds no activations cache (no {RECORD}): the directory "
                        "`saejax activations` wrote was moved or removed since, or never was "
                        "one. Give the cache's directory, or cache the activations again.")
    record = files.read_json(path)
    if not isinstance(record.get("tokens"), int) or not isinstance(record.get("shards", []), list):
        raise DataError(f"{path} is not the record of an activations cache (it names no token "
                        "count or shards): cache the activations again with `saejax activations`.")
    if complete and not record.get("complete"):
        done = sum(s["rows"] for s in record.get("shards", []))
        raise DataError(f"{home} holds an unfinished activations cache ({done} of "
                        f"{record.get('tokens')} tokens): run the same `saejax activations` "
                        "command again to finish it, then train on it.")
    return record


def shard_digest(shards: list) -> str:
    """One sha256 for a cache: of its shards' names and recorded sha256s, in order."""
    h = hashlib.sha256()
    for s in shards:
        h.update(f"{s['activations']}|{s['sha256']}|{s['tokens']}|{s['tokens_sha256']}\n"
                 .encode())
    return h.hexdigest()


def verify(home: str | Path, record: dict) -> str:
    """``shard_digest`` after checking every shard's bytes against its recorded sha256."""
    for s in record["shards"]:
        for key, sum_key in (("activations", "sha256"), ("tokens", "tokens_sha256")):
            path = Path(home) / s[key]
            if not path.is_file():
                raise DataError(f"{path} is missing from the activations cache in {home}: "
                                "write the cache again (saejax activations).")
            if files.sha256(path) != s[sum_key]:
                raise DataError(f"{path} has changed since it was written (its sha256 differs "
                                "from activations.json): write the cache again.")
    return shard_digest(record["shards"])


def read_rows(home: str | Path, record: dict, rows=None, dtype=np.float32) -> np.ndarray:
    """Rows of the cache's activations, as ``dtype``: all of them (``rows`` None) or the sorted
    global row indices ``rows``, read shard by shard from memory maps."""
    total = sum(s["rows"] for s in record["shards"])
    x = np.empty((total if rows is None else len(rows), record["d_model"]), dtype)
    start = filled = 0  # filled in place: no second copy of a cache as large as memory allows
    for s in record["shards"]:
        shard = np.load(Path(home) / s["activations"], mmap_mode="r")
        n = shard.shape[0]
        if rows is None:
            x[start:start + n] = shard
            filled += n
        else:
            lo, hi = np.searchsorted(rows, [start, start + n])
            x[filled:filled + hi - lo] = shard[rows[lo:hi] - start]
            filled += hi - lo
        start += n
    if filled != len(x):
        raise DataError(f"the shards in {home} hold {start} rows, not the {total} its record "
                        "lists: write the cache again (saejax activations).")
    check_finite(x, f"the activations in {home}")
    return x


def relocated(data_info: dict, home: str | Path) -> dict:
    """A trained model's data description (config.json's ``data``) pointed at ``home``, a copy of
    the cache it was trained on in another place: a ``DataError`` unless its shards are the very
    ones recorded (their digest equals the ``sha256`` the model recorded)."""
    record = read_record(home)
    digest = verify(home, record)
    if digest != data_info.get("sha256"):
        raise DataError(f"{home} is not the activations cache the model was trained on: its "
                        "shards' digest differs from the one in the model's record. Give a copy "
                        "of that cache.")
    path = str(Path(home).resolve())
    return {**data_info, "path": path, "source": str(home),
            "activations": {**data_info["activations"], "activations": path}}


def describe(home: str | Path, record: dict) -> dict:
    """What a run records about the activations it trained on."""
    return {"activations": str(Path(home).resolve()), "model": record["model"]["name"],
            "model_file": record["model"]["file"], "model_sha256": record["model"]["sha256"],
            "model_dtype": record["model"]["dtype"], "bos_id": record["bos"]["id"],
            "layer": record["layer"], "site": record["site"], "context": record["context"],
            "bos_kept": record["bos"]["kept"], "text": record["text"]["source"],
            "text_sha256": record["text"]["sha256"]}
