"""``saejax export`` and ``saejax encode``: the command line of ``records.models``. Each takes
its model as the first positional argument (``--model`` is kept as an alias for ``encode``)."""

from __future__ import annotations

from pathlib import Path

from saejax.flags import checked, command
from saejax.schema import DATASETS


def add_export(sub) -> None:
    p = command(sub, "export", export,
                 "write a trained model as weights.safetensors + cfg.json, or in SAELens's "
                 "layout")
    p.add_argument("source", help="a run or sweep directory")
    p.add_argument("out", help="output directory (must not hold an export)")
    p.add_argument("--member", type=int, metavar="I",
                   help="the sweep member, the row of results.csv (default: none; a sweep needs "
                        "one)")
    p.add_argument("--format", choices=("saejax", "saelens"), default="saejax",
                   help="saejax: weights.safetensors + cfg.json; saelens: SAELens's "
                        "sae_weights.safetensors + cfg.json, which SAE.load_from_disk loads "
                        "(relu-l1, topk, batchtopk, jumprelu) (default: saejax)")


def export(args) -> int:
    """Export a run's latest checkpoint, or one sweep member, as OUT/weights.safetensors (W1, b1,
    W2, b2 at the dtype trained; no W2 when tied; jumprelu's and batchtopk's thresholds) and
    OUT/cfg.json (the architecture, sizes, its own knobs, lam, decoder, tied, dtype, data, final
    summary), or with --format saelens in SAELens's layout (records.saelens)."""
    from saejax.records import models, saelens

    out = models.export(args.source, args.out, args.member, args.format)
    weights = saelens.WEIGHTS if args.format == "saelens" else models.WEIGHTS
    print(f"exported {args.source}" + (f" member {args.member}" if args.member is not None
                                       else "") + f" -> {out / weights}, "
          f"{out / models.CONFIG}" + (" (SAELens: SAE.load_from_disk(OUT))"
                                      if args.format == "saelens" else ""))
    return 0


def add_encode(sub) -> None:
    p = command(sub, "encode", encode,
                 "write a trained model's hidden features of a data set to a .npy file")
    p.add_argument("model", nargs="?", help="a run, sweep or export directory")
    p.add_argument("--model", dest="model_flag", metavar="MODEL",
                   help="the same, as a flag (default: the positional MODEL)")
    p.add_argument("--member", type=int, metavar="I",
                   help="the sweep member, the row of results.csv (default: none; a sweep needs "
                        "one)")
    p.add_argument("--dataset", choices=DATASETS, help="data set (default: the model's)")
    p.add_argument("--data", metavar="PATH",
                   help="path of the data: FILE.npy, FILE.npz or FILE.npz:NAME (an (M, N) "
                        "array), or a data set's path (default: the model's; a model trained on "
                        "an array file reads it again if it is unchanged)")
    p.add_argument("--num-examples", type=checked(int, "positive_int", "num_examples"),
                   metavar="N", help="examples to encode (default: the model's; for an array, "
                                     "all its rows in file order, even when the model trained "
                                     "on a sample of them; fewer: a seeded sample)")
    p.add_argument("--out", required=True, help="the .npy file to write (must not exist)")


def encode(args) -> int:
    """Hidden features a2 = sigmoid(W1 x + b1) of every example (the architecture's code for
    the others), as an (M, H) array in a .npy file. The data are prepared as the model's config
    prepares them (patch size), then normalized with the numbers recorded at training (never
    refitted); --dataset, --data and --num-examples pick other data."""
    import jax.numpy as jnp
    import numpy as np

    from saejax.data import data_of, normalize
    from saejax.records import models

    if (args.model is None) == (args.model_flag is None):
        raise ValueError("give the model once: saejax encode MODEL --out FILE.npy (a run, sweep "
                         "or export directory).")
    args.model = args.model or args.model_flag
    out = Path(args.out)
    if out.suffix.lower() != ".npy":
        raise ValueError(f"--out {out}: the codes are written as a NumPy .npy file; give a name "
                         "ending in .npy.")
    if out.exists():
        raise ValueError(f"{out} already exists; nothing was changed. Choose another --out.")
    config, params = models.load(args.model, args.member)
    recorded = models.load_data_info(args.model, args.member)
    dtype = next(iter(params.values())).dtype
    if dtype == np.float64:  # a float64 model encodes in float64
        import jax

        jax.config.update("jax_enable_x64", True)
    cache = _cache_to_encode(config, args, recorded)
    if cache is not None:  # read and written a block at a time, never whole
        return _encode_stream(cache, config, params, dtype, out, args.num_examples,
                              models.load_normalization(args.model, args.member), recorded)
    x, info = data_of(config, args.dataset, args.data, args.num_examples, recorded)
    if info.get("reused"):
        print(f"the model was trained on the array at {info['path']}; it is unchanged (sha256 "
              f"{info['sha256'][:12]}...), so it is encoded again")
    x = normalize.apply(models.load_normalization(args.model, args.member), x)
    n_visible = params["W1"].shape[1]  # W1 is (H, N)
    if x.shape[1] != n_visible:
        raise ValueError(f"the model takes {n_visible} inputs but {info['source']} gives "
                         f"{x.shape[1]} per example; encode data of the model's kind.")
    from saejax.checks import check_x

    check_x(x, n_visible, name=f"the data to encode ({info['source']})")  # NaN, complex, ...
    from saejax.train.final import codes

    code = np.asarray(codes({k: jnp.asarray(v) for k, v in params.items()},
                            jnp.asarray(x, dtype), config))
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "xb") as f:  # never overwrites
        np.save(f, code)
    print(f"wrote {out}: {code.shape[0]} x {code.shape[1]} hidden features of {info['source']}")
    return 0


def _cache_to_encode(config, args, recorded):
    """The activations cache that encode reads: --data, or the model's own cache when it was
    trained on one and no other data is named; None for any other data."""
    from saejax.data import activation_files

    if args.data is not None:
        return args.data if activation_files.is_activations(args.data) else None
    own = recorded.get("path") if config.dataset == "array" else None
    if args.dataset in (None, "array") and activation_files.is_activations(own):
        return own
    return None


def _encode_stream(home, config, params, dtype, out, num_examples, normalization,
                   recorded) -> int:
    """``encode`` of an activations cache: its rows read, encoded and written into the .npy a
    block at a time (``data.stream``); the file appears complete or not at all."""
    import os

    import jax.numpy as jnp
    import numpy as np

    from saejax.data.stream import ActivationStream
    from saejax.train.final import codes

    stream, info = ActivationStream.open(home, num_examples, config.seed)
    if recorded.get("path") == str(Path(home).resolve()) and recorded.get("sha256") not in (
            None, info["sha256"]):
        raise ValueError(f"the model was trained on the activations in {home}, but they have "
                         "changed since (their sha256 differs from the model's record): pass "
                         "--data DIR to encode another cache.")
    stream.normalization = normalization
    m, n_visible = stream.shape
    if n_visible != params["W1"].shape[1]:
        raise ValueError(f"the model takes {params['W1'].shape[1]} inputs but {home} holds "
                         f"{n_visible} per row; encode activations of the model's site.")
    device_params = {k: jnp.asarray(v) for k, v in params.items()}
    h = params["W1"].shape[0]
    tmp = out.with_name(f".{out.name}.partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        codes_MxH = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=(m, h))
        start = 0
        for block in stream.blocks():
            codes_MxH[start:start + len(block)] = np.asarray(
                codes(device_params, jnp.asarray(block, dtype), config))
            start += len(block)
        codes_MxH.flush()
        del codes_MxH
        os.link(tmp, out)  # fails rather than overwrite a file made meanwhile
    finally:  # complete or not at all: no partial file stays behind
        tmp.unlink(missing_ok=True)
    print(f"wrote {out}: {m} x {h} hidden features of {home}, read a block at a time")
    return 0
