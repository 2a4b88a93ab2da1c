"""Activations on disk: a language model's activations at one site, over a text, written as
memory-mapped .npy shards with their token ids and one record; a killed run resumes.

The text's documents are tokenized and joined into one stream, which is cut into contexts of
``context`` tokens: the BOS token, then ``context - 1`` tokens of the stream. Each context's rows
are its positions after the BOS (``keep_bos`` keeps the BOS position too), so a cache of N
tokens holds N rows of d_model values, in order, context after context. Shards are whole
contexts (the last one cut at N rows), each written in one step and then listed in
activations.json, so a kill between shards loses at most the shard being written.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path

import numpy as np

from saejax.activations import text as text_mod
from saejax.data.activation_files import RECORD, read_record
from saejax.data.errors import DataError
from saejax.records import files

logger = logging.getLogger(__name__)
IDENTITY = ("model_sha256", "model_dtype", "layer", "site", "context", "keep_bos", "dtype",
            "text_sha256", "tokens_requested", "contexts_per_shard")


@dataclasses.dataclass(frozen=True)
class CacheConfig:
    """What to cache. The fields of ``IDENTITY`` must match for a run to resume a cache."""

    layer: int  # the block, from 0
    site: str = "resid_post"  # one of llama.SITES
    tokens: int = 300_000  # rows to write (tokens, BOS positions excluded unless kept)
    context: int = 128  # tokens per context, the BOS included
    batch_size: int = 16  # contexts per forward pass
    keep_bos: bool = False  # also keep each context's BOS position as a row
    dtype: str = "float32"  # stored dtype: float32 or float16
    model_dtype: str = "float32"  # the model's weights: float32 or bfloat16
    shard_tokens: int = 65_536  # rows per shard (rounded down to whole contexts)


def _identity(config: CacheConfig, model_sha: str, text_sha: str, per_shard: int) -> dict:
    return {"model_sha256": model_sha, "model_dtype": config.model_dtype,
            "layer": config.layer, "site": config.site,
            "context": config.context, "keep_bos": config.keep_bos, "dtype": config.dtype,
            "text_sha256": text_sha, "tokens_requested": config.tokens,
            "contexts_per_shard": per_shard}


def check(config: CacheConfig, model_config=None) -> None:
    """A ``DataError`` naming the first setting that cannot be used (with ``model_config``, also
    the ones the model bounds: the layer and the context)."""
    from saejax.schema import CACHE_DTYPES, LM_DTYPES, LM_SITES

    if config.site not in LM_SITES:
        raise DataError(f"--site {config.site!r}: choose one of {', '.join(LM_SITES)}.")
    limit = 10 ** 9 if model_config is None else model_config.context_length
    if not 2 <= config.context <= limit:  # the model's length is known once it is loaded
        bound = "" if model_config is None else f" ({limit})"
        raise DataError(f"--context {config.context}: a context holds the BOS and at least one "
                        f"token, and at most the model's context length{bound}.")
    if model_config is not None and not 0 <= config.layer < model_config.n_layers:
        raise DataError(f"--layer {config.layer}: the model has blocks 0 to "
                        f"{model_config.n_layers - 1}.")
    for name, value, allowed in (("dtype", config.dtype, CACHE_DTYPES),
                                 ("model-dtype", config.model_dtype, LM_DTYPES)):
        if value not in allowed:
            raise DataError(f"--{name} {value!r}: choose one of {', '.join(allowed)}.")
    if config.tokens < 1 or config.batch_size < 1 or config.shard_tokens < 1:
        raise DataError("--tokens, --batch-size and --shard-tokens are counts of at least 1.")


def _resume_point(out: Path, identity: dict) -> dict | None:
    """The record to continue, None for a new cache; a ``DataError`` for anything else."""
    if (out / RECORD).is_file():
        record = read_record(out, complete=False)
        differ = [k for k in IDENTITY if record["identity"].get(k) != identity[k]]
        if differ:
            raise DataError(f"{out} holds an activations cache with other settings ("
                            f"{', '.join(differ)} differ): nothing was changed. Choose another "
                            "--out, or repeat that cache's own command to finish it.")
        if record["complete"]:
            raise DataError(f"{out} already holds this activations cache, complete "
                            f"({record['tokens']} tokens): nothing was changed. Train on it "
                            f"with --data {out}, or choose another --out.")
        return record
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"{out} exists and is not an activations cache: nothing was changed. "
                        "Choose a new --out directory.")
    return None


def contexts_of(tokenizer, docs: list[str], bos_id: int, context: int,
                limit: int | None = None) -> np.ndarray:
    """(n, context) int32: BOS, then the next ``context - 1`` tokens of the documents' joined
    token stream; with ``limit``, at most that many contexts (documents are tokenized only
    until they fill them)."""
    body, pieces, have, chunk = context - 1, [], 0, 64
    for start in range(0, len(docs), chunk):
        if limit is not None and have >= limit * body:
            break
        new = [np.asarray(e.ids, np.int32)
               for e in tokenizer.encode_batch(docs[start:start + chunk])]
        pieces += new
        have += sum(len(p) for p in new)
    stream = np.concatenate(pieces) if pieces else np.zeros(0, np.int32)
    n = len(stream) // body if limit is None else min(limit, len(stream) // body)
    out = np.empty((n, context), np.int32)
    out[:, 0] = bos_id
    out[:, 1:] = stream[:n * body].reshape(n, body)
    return out


def write(out: str | Path, model: str | Path, text: str | Path, config: CacheConfig,
          progress: bool = True) -> dict:
    """Writes (or resumes) the cache of ``model``'s activations over ``text`` in ``out``.

    Args:
      out: the cache directory: new, empty, or an unfinished cache of the same settings.
      model: a Llama-architecture .gguf path, or ``smollm2``.
      text: a text file, a directory of text files, ``pydoc:`` or ``stdlib:``.
      config: what to cache.
      progress: show a bar of tokens written, with tokens/s.

    Returns:
      The complete record (activations.json).

    Raises:
      DataError: bad settings, a model or text that cannot be used, a text too short for one
        context, or an ``out`` that holds something else (nothing is overwritten).
    """
    from saejax.models import gguf_file, llama

    check(config)
    out = Path(out)
    path = gguf_file.resolve(model)
    docs, text_info = text_mod.documents(text)
    rows_per_context = config.context - 1 + int(config.keep_bos)
    per_shard = max(1, config.shard_tokens // rows_per_context)
    identity = _identity(config, files.sha256(path), text_info["sha256"], per_shard)
    record = _resume_point(out, identity)
    lm = llama.load(path, config.model_dtype)
    check(config, lm.config)
    wanted = math.ceil(config.tokens / rows_per_context)
    contexts = contexts_of(lm.tokenizer, docs, lm.bos_id, config.context, wanted)
    if len(contexts) == 0:
        raise DataError(f"the text ({text_info['source']}) holds fewer than {config.context - 1} "
                        "tokens: give more text or a shorter --context.")
    if len(contexts) < wanted:
        logger.warning("the text holds %d contexts of %d tokens, %d rows; the cache will hold "
                       "those, not the %d tokens asked for", len(contexts), config.context,
                       len(contexts) * rows_per_context, config.tokens)
    total = min(config.tokens, len(contexts) * rows_per_context)
    if record is None:
        out.mkdir(parents=True, exist_ok=True)
        record = _new_record(lm, path, identity, config, text_info, total, rows_per_context)
        files.write_json(out / RECORD, record)
    else:  # a killed writer may have left a shard's temporary file
        for stale in out.glob(".*.tmp"):
            stale.unlink()
    _write_shards(out, lm, contexts, config, record, per_shard, progress)
    record["stats"] = _stats(out, record)
    record["complete"] = True
    files.write_json(out / RECORD, record)
    return record


def _new_record(lm, path, identity, config, text_info, total, rows_per_context) -> dict:
    return {"format": 1, "identity": identity, "complete": False,
            "model": {"name": lm.name, "file": str(path.resolve()), "sha256":
                      identity["model_sha256"], "architecture": "llama",
                      "n_layers": lm.config.n_layers, "d_model": lm.config.d_model,
                      "dtype": config.model_dtype},
            "layer": config.layer, "site": config.site, "context": config.context,
            "bos": {"id": lm.bos_id, "kept": config.keep_bos}, "rows_per_context":
            rows_per_context, "d_model": lm.config.d_model, "dtype": config.dtype,
            "text": text_info, "tokens_requested": config.tokens, "tokens": total,
            "shards": []}


def _write_shards(out, lm, contexts, config, record, per_shard, progress) -> None:
    import jax
    from tqdm import tqdm

    from saejax.models import llama

    first_row = 1 - int(config.keep_bos)
    done = sum(s["rows"] for s in record["shards"])
    bar = tqdm(total=record["tokens"], initial=done, unit="tok", unit_scale=True,
               disable=not progress, dynamic_ncols=True, desc="activations")
    for i in range(len(record["shards"]), math.ceil(len(contexts) / per_shard)):
        ctx = contexts[i * per_shard:(i + 1) * per_shard]
        acts = []
        for b in range(0, len(ctx), config.batch_size):
            batch = ctx[b:b + config.batch_size]
            padded = np.concatenate([batch, np.repeat(batch[:1], config.batch_size - len(batch),
                                                      0)])  # one compiled shape
            a = llama.activations(lm.params, padded, lm.config, config.layer, config.site)
            acts.append(np.asarray(jax.device_get(a))[:len(batch), first_row:])
            bar.update(len(batch) * acts[-1].shape[1])
        x = np.concatenate(acts).reshape(-1, lm.config.d_model).astype(config.dtype)
        ids = ctx[:, first_row:].reshape(-1)
        keep = min(len(x), record["tokens"] - done)
        x, ids = x[:keep], ids[:keep]
        names = (f"activations_{i:05d}.npy", f"tokens_{i:05d}.npy")
        for name, array in zip(names, (x, ids), strict=True):
            files.replace(out / name, lambda tmp, a=array: _save(tmp, a))
        record["shards"].append({"activations": names[0], "tokens": names[1], "rows": keep,
                                 "sha256": files.sha256(out / names[0]),
                                 "tokens_sha256": files.sha256(out / names[1])})
        files.write_json(out / RECORD, record)
        done += keep
    bar.n = done
    bar.close()


def _save(tmp: Path, array: np.ndarray) -> None:
    with open(tmp, "wb") as f:  # a file object: np.save would add .npy to a name
        np.save(f, array)


def _stats(out: Path, record: dict) -> dict:
    """The mean activation's norm, and the mean and spread of each row's norm (float64)."""
    total, norms, count = np.zeros(record["d_model"]), [], 0
    for s in record["shards"]:
        x = np.load(out / s["activations"], mmap_mode="r").astype(np.float64)
        total += x.sum(0)
        norms.append(np.linalg.norm(x, axis=1))
        count += len(x)
    norms = np.concatenate(norms)
    return {"rows": count, "mean_norm": float(np.linalg.norm(total / count)),
            "row_norm_mean": float(norms.mean()), "row_norm_std": float(norms.std()),
            "rms": float(np.sqrt((norms ** 2).mean() / record["d_model"]))}
