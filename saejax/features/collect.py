"""What each latent of an autoencoder trained on a language model's activations reads: how often
it fires, how strongly, the contexts where it fires most, and the tokens its decoder direction
promotes and suppresses through the unembedding.

Codes are computed over every row of the activations cache the model was trained on, block by
block (never all at once), as inference computes them (``train.final.codes``). A context is the
window of tokens around a row in its own context (the model saw the tokens before it); each of
its tokens carries the latent's activation there. The logit effect of latent j is
``W_U d_j`` (the unembedding times the decoder direction, carried back through the data's
normalization), without the final norm, as feature dashboards show it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from saejax.data import normalize
from saejax.data.errors import DataError

BLOCK = 1024  # rows encoded at a time (TopK's selection runs over (BLOCK, H) arrays: at 4,096 rows
# of 4,608 latents they outgrow the cache, and a row costs 1.5 times as much on 2 CPU cores)
BINS = 24  # histogram bins of a latent's nonzero activations


def _counts(top, n_contexts, before, after) -> tuple[int, int, int, int]:
    """The page's counts as ints, checked: at least one latent (the page's script shows one),
    and any number of contexts and of tokens around them."""
    from saejax.checks import check_count

    return (check_count("top", top, "positive_int"),
            *(check_count(name, value, "whole") for name, value in
              (("n_contexts", n_contexts), ("before", before), ("after", after))))


def _encoder(config, params, normalization):
    import jax
    import jax.numpy as jnp

    from saejax.train.final import codes

    dtype, h = next(iter(params.values())).dtype, params["W1"].shape[0]
    p = {k: jnp.asarray(v) for k, v in params.items()}
    run = jax.jit(lambda p, x: codes(p, x, config))  # params as arguments, not constants

    def encode(x, columns=None):
        """The codes (R, H) of rows x (R, N); with ``columns`` (R,), each row's code in its own
        column (R,). Rows go BLOCK at a time, the last block padded with its first row (every
        code is a function of its own row alone), so one compiled program serves every call."""
        out = [np.zeros((0, h) if columns is None else (0,), dtype)]
        for start in range(0, len(x), BLOCK):
            part = normalize.apply(normalization, np.asarray(x[start:start + BLOCK]))
            m = len(part)
            part = np.concatenate([part, np.repeat(part[:1], BLOCK - m, 0)])
            f = np.asarray(run(p, jnp.asarray(part, dtype)))[:m]
            out.append(f if columns is None else f[np.arange(m), columns[start:start + m]])
        return np.concatenate(out)

    return encode


def _running_top(values_C_H, rows_C_H, f_BxH, start, n_top):
    """Merges a block's codes into the running top ``n_top`` values (and rows) of each latent."""
    take = min(n_top, len(f_BxH))
    idx = np.argpartition(-f_BxH, take - 1, axis=0)[:take]
    vals = np.take_along_axis(f_BxH, idx, axis=0)
    allv = np.concatenate([values_C_H, vals])
    allr = np.concatenate([rows_C_H, idx + start])
    keep = np.argsort(-allv, axis=0, kind="stable")[:n_top]
    return np.take_along_axis(allv, keep, axis=0), np.take_along_axis(allr, keep, axis=0)


def collect(config, params, normalization: dict, data_info: dict, top: int = 100,
            n_contexts: int = 20, before: int = 24, after: int = 8,
            unembed=None, token_text=None) -> dict:
    """Each chosen latent's frequency, activation histogram, top contexts and logit effects.

    Args:
      config, params, normalization, data_info: a trained model and its records
        (``records.models``); its data must be a cache of ``saejax activations``.
      top: the latents shown: the ``top`` that fire most often (all of them when larger).
      n_contexts: contexts per latent, highest activation first.
      before, after: tokens of each context shown before and after the one that fired.
      unembed, token_text: the language model's (V, D) unembedding and a function from token
        id to its text; loaded from the model file when not given.

    Returns:
      The page's data (``page.write`` draws it; features.json holds it).

    Raises:
      ValueError: ``top`` below 1, ``n_contexts``, ``before`` or ``after`` below 0.
      DataError: a model not trained on a cache of ``saejax activations``.
    """
    from saejax.data import activation_files as af
    from saejax.model import decoder_weights

    top, n_contexts, before, after = _counts(top, n_contexts, before, after)

    act = data_info.get("activations")
    if not act:
        raise DataError("the model was not trained on a language model's activations: "
                        "`saejax features` needs a model trained with --data DIR, DIR written "
                        "by `saejax activations`.")
    home = Path(act["activations"])
    record = af.read_record(home)
    rpc = record["rows_per_context"]
    tokens = np.concatenate([np.load(home / s["tokens"]) for s in record["shards"]])
    encode = _encoder(config, params, normalization)
    shards = [np.load(home / s["activations"], mmap_mode="r") for s in record["shards"]]
    offsets = np.cumsum([0] + [len(s) for s in shards])

    def rows_of(index):
        out = np.empty((len(index), record["d_model"]), np.float32)
        for i, (lo, hi) in enumerate(zip(offsets[:-1], offsets[1:], strict=True)):
            sel = (index >= lo) & (index < hi)
            out[sel] = shards[i][index[sel] - lo]
        return out

    n = int(offsets[-1])
    h = None
    for start in range(0, n, BLOCK):
        f = encode(rows_of(np.arange(start, min(n, start + BLOCK))))
        if h is None:
            h = f.shape[1]
            fires, peak = np.zeros(h, np.int64), np.zeros(h)
            top_v, top_r = np.zeros((0, h), f.dtype), np.zeros((0, h), np.int64)
        fires += (f > 0).sum(0)
        peak = np.maximum(peak, f.max(0))
        top_v, top_r = _running_top(top_v, top_r, f, start, n_contexts)
    chosen = np.argsort(-fires, kind="stable")[:top]
    hist = _histograms(encode, rows_of, n, chosen, peak[chosen])
    if unembed is None:
        unembed, token_text = _language_model(act)
    decoder = np.asarray(decoder_weights(params, config.tied), np.float64)  # (N, H)
    affine = normalize.per_feature(normalization, decoder.shape[0])
    if affine is not None:  # the direction in the activations' space
        decoder = decoder * affine[1][:, None]
    effects = np.asarray(unembed, np.float64) @ decoder[:, chosen]  # (V, chosen)
    windows = _contexts(encode, rows_of, tokens, top_v[:, chosen], top_r[:, chosen], chosen, rpc,
                        before, after, token_text)
    latents = []
    for c, j in enumerate(chosen):
        order = np.argsort(-effects[:, c], kind="stable")
        latents.append({
            "index": int(j), "frequency": float(fires[j] / n), "max": float(peak[j]),
            "histogram": hist[c], "contexts": windows[c],
            "promoted": [[token_text(int(t)), float(effects[t, c])] for t in order[:10]],
            "suppressed": [[token_text(int(t)), float(effects[t, c])] for t in order[::-1][:10]]})
    return {"model": act["model"], "layer": act["layer"], "site": act["site"], "rows": n,
            "latents_total": int(h), "dead_fraction": float((fires == 0).mean()),
            "arch": config.arch, "latents": latents}


def _histograms(encode, rows_of, n, chosen, peaks) -> list:
    """Counts of each chosen latent's nonzero activations in ``BINS`` equal bins up to its max."""
    counts = np.zeros((len(chosen), BINS), np.int64)
    edges = [np.linspace(0.0, max(p, 1e-12), BINS + 1) for p in peaks]
    for start in range(0, n, BLOCK):
        f = encode(rows_of(np.arange(start, min(n, start + BLOCK))))[:, chosen]
        for c in range(len(chosen)):
            v = f[:, c][f[:, c] > 0]
            counts[c] += np.histogram(v, edges[c])[0]
    return [{"edges": e.tolist(), "counts": k.tolist()} for e, k in zip(edges, counts, strict=True)]


def _contexts(encode, rows_of, tokens, values_CxL, rows_CxL, latents_L, rpc, before, after,
              token_text) -> list:
    """For each latent, the windows around its top rows, each token with the latent's
    activation: every latent's windows encoded together, a block of rows at a time (each
    window padded with its first row).

    Args:
      values_CxL, rows_CxL: each latent's top values and their rows, highest first.
      latents_L: the latents' indices.

    Returns:
      One list of windows per latent, stopping at its first value that is not positive.
    """
    width = before + after + 1
    starts = (rows_CxL // rpc) * rpc
    lo = np.maximum(starts, rows_CxL - before)
    hi = np.minimum(np.minimum(starts + rpc, rows_CxL + after + 1), len(tokens))  # the cache
    # may end inside its last context
    index = lo[..., None] + np.arange(width)  # (C, L, width)
    valid = index < hi[..., None]
    flat = np.where(valid, index, lo[..., None]).ravel()
    columns = np.broadcast_to(np.asarray(latents_L)[None, :, None], index.shape).ravel()
    acts = np.concatenate([np.zeros(0)] + [  # the rows read a block at a time
        encode(rows_of(flat[s:s + BLOCK]), columns[s:s + BLOCK])
        for s in range(0, len(flat), BLOCK)]).reshape(index.shape)
    out = []
    for latent in range(len(latents_L)):
        windows = []
        for c, (v, r) in enumerate(zip(values_CxL[:, latent], rows_CxL[:, latent], strict=True)):
            if v <= 0:
                break
            keep = valid[c, latent]
            windows.append({"row": int(r), "activation": float(v), "focus": int(r - lo[c, latent]),
                            "tokens": [token_text(int(t)) for t in tokens[index[c, latent][keep]]],
                            "values": [float(a) for a in acts[c, latent][keep]]})
        out.append(windows)
    return out


def _language_model(act: dict):
    """The unembedding and the token texts of the model the activations came from."""
    from saejax.activations.splice import lm_of

    lm, _ = lm_of({"activations": act})
    unembed = np.asarray(lm.params.get("unembed", lm.params["embed"]), np.float32)
    return unembed, lambda t: lm.tokenizer.decode([t], skip_special_tokens=False)
