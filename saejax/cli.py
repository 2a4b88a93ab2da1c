"""The ``saejax`` command; the only place that parses arguments."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

PENALTY_NAMES = ("kl", "squared", "l1")
TERM_NAMES = ("loss", "reconstruction", "weight_decay", "sparsity")


def _add_gradcheck(sub) -> None:
    p = sub.add_parser(
        "gradcheck",
        help="compare analytic, autodiff and numerical gradients on a small network",
        description=(
            "Three-way gradient check: the hand-written gradient against jax.grad, and both "
            "against central finite differences, per parameter block, with UFLDL's relative "
            "difference ||a-b||/||a+b||. Exits 1 if any difference exceeds its tolerance."
        ),
    )
    p.add_argument("--n-visible", type=int, default=8, help="input width N (default 8)")
    p.add_argument("--n-hidden", type=int, default=5, help="hidden units H (default 5)")
    p.add_argument("--m", type=int, default=10, help="number of examples (default 10)")
    p.add_argument(
        "--penalty", nargs="+", choices=[*PENALTY_NAMES, "all"], default=["all"],
        help="sparsity penalties to check (default: all three)",
    )
    p.add_argument(
        "--term", nargs="+", choices=[*TERM_NAMES, "all"], default=["loss"],
        help="which function to differentiate: the whole loss (default), one term, or all",
    )
    p.add_argument(
        "--decoder", nargs="+", choices=["sigmoid", "linear", "all"], default=["sigmoid"],
        help="output layer: sigmoid (default), linear, or all",
    )
    p.add_argument(
        "--tied", choices=["no", "yes", "all"], default="no",
        help="tied weights W2 = W1^T: no (default), yes, or all (both)",
    )
    p.add_argument("--rho", type=float, default=0.01, help="sparsity target rho (default 0.01)")
    p.add_argument("--beta", type=float, default=3.0, help="sparsity weight beta (default 3)")
    p.add_argument("--lam", type=float, default=1e-4, help="weight decay lambda (default 1e-4)")
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    p.add_argument("--eps", type=float, default=None, help="finite-difference step (default: per dtype)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=_gradcheck)


def _gradcheck(args) -> int:
    import jax

    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    from saejax import gradcheck
    from saejax.losses import Hyper

    penalties = PENALTY_NAMES if "all" in args.penalty else tuple(args.penalty)
    terms = TERM_NAMES if "all" in args.term else tuple(args.term)
    decoders = ("sigmoid", "linear") if "all" in args.decoder else tuple(args.decoder)
    tieds = {"no": (False,), "yes": (True,), "all": (False, True)}[args.tied]
    hyper = Hyper(args.rho, args.beta, args.lam)
    results = []
    for tied in tieds:
        params, x = gradcheck.problem(
            args.n_visible, args.n_hidden, args.m, jnp.dtype(args.dtype), args.seed, tied
        )
        results += [
            gradcheck.check(params, x, hyper, penalty, term, args.eps, decoder=decoder, tied=tied)
            for decoder in decoders
            for penalty in penalties
            for term in terms
        ]
    sanity = gradcheck.ufldl_sanity_check()
    sanity["passed"] = args.dtype != "float64" or sanity["difference"] < 1e-9
    passed = sanity["passed"] and all(r["passed"] for r in results)
    if args.json:
        print(json.dumps({"sanity": sanity, "checks": results, "passed": passed}, indent=2))
    else:
        print(
            f"network {args.n_visible}-{args.n_hidden}-{args.n_visible}, m={args.m}, "
            f"rho={args.rho}, beta={args.beta}, lam={args.lam}, {args.dtype}, seed={args.seed}"
        )
        print(
            f"UFLDL sanity check of numerical_grad, h(x) = x1^2 + 3 x1 x2 at x = {sanity['x']}: "
            f"relative difference {sanity['difference']:.2e}\n"
        )
        for r in results:
            print(gradcheck.format_table(r) + "\n")
        print("all checks passed" if passed else "SOME CHECKS FAILED")
    return 0 if passed else 1


def _enable_compilation_cache() -> None:
    """JAX's persistent compilation cache, so a second run skips compilation."""
    import jax

    cache = os.environ.get("SAEJAX_CACHE_DIR", Path.home() / ".cache" / "saejax" / "xla")
    jax.config.update("jax_compilation_cache_dir", str(cache))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def _add_train_options(p, swept=()) -> None:
    """The settings of `saejax train`, shared by `saejax sweep`; ``swept`` flags take lists."""
    from saejax.config import DTYPES, GRADS, OPTIMIZERS, PRESETS, SCHEDULES

    def number(flag, kind, help_):
        name = flag[2:].replace("-", "_")
        if name in swept:
            p.add_argument(flag, type=kind, nargs="+", help=help_ + " (space-separated values)")
        else:
            p.add_argument(flag, type=kind, help=help_)

    p.add_argument("--preset", choices=sorted(PRESETS), default="ufldl-patches",
                   help="starting settings (default ufldl-patches: the UFLDL exercise)")
    p.add_argument("--data", help="IMAGES.mat file, sparsenet directory or MNIST directory "
                   "(default: the embedded images for patches; required for mnist)")
    p.add_argument("--num-examples", type=int, help="patches to sample / MNIST images to use")
    p.add_argument("--patch-size", type=int, help="patch side in pixels")
    p.add_argument("--n-hidden", type=int, help="hidden units")
    p.add_argument("--penalty", choices=PENALTY_NAMES, help="sparsity penalty")
    p.add_argument("--decoder", choices=["sigmoid", "linear"], help="output layer")
    p.add_argument("--tied", action="store_const", const=True, default=None,
                   help="tie the weights, W2 = W1^T")
    number("--rho", float, "sparsity target")
    number("--beta", float, "sparsity weight")
    number("--lam", float, "weight decay")
    p.add_argument("--optimizer", choices=OPTIMIZERS)
    p.add_argument("--steps", type=int, help="optimizer iterations")
    p.add_argument("--batch-size", type=int, help="minibatch size (adam/sgd/momentum)")
    number("--lr", float, "learning rate (adam/sgd/momentum)")
    p.add_argument("--schedule", choices=SCHEDULES, help="learning-rate schedule")
    p.add_argument("--momentum", type=float, help="momentum coefficient")
    p.add_argument("--grad", choices=GRADS, help="gradient that drives training")
    p.add_argument("--dtype", choices=DTYPES)
    number("--seed", int, "seed of the data sample, initialization and minibatches")
    p.add_argument("--steps-per-call", type=int, help="steps per compiled call")
    p.add_argument("--log-every", type=int, help="steps between metrics.jsonl lines")
    p.add_argument("--checkpoint-every", type=int, help="steps between checkpoints")
    p.add_argument("--keep-checkpoints", type=int, help="checkpoints kept")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _config_from_args(args, swept=(), base=None):
    """The preset's TrainConfig (or ``base``) with every given flag applied (but swept ones)."""
    from saejax.config import PRESETS, TrainConfig, check_preset

    fields = TrainConfig.__dataclass_fields__
    overrides = {
        k: v for k, v in vars(args).items()
        if k in fields and v is not None and k != "dataset" and k not in swept
    }
    if args.optimizer and args.optimizer != "lbfgs" and args.batch_size is None:
        overrides.setdefault("batch_size", 256)
    if args.optimizer == "lbfgs":
        overrides["batch_size"] = None
    config = (base or PRESETS[args.preset]).replace(**overrides)
    config.validate()
    check_preset(args.preset, config)
    return config


def _add_train(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train the sparse autoencoder (default: the UFLDL exercise on embedded images)",
        description="Train the sparse autoencoder and write a run directory: config.json, "
        "metrics.jsonl, summary.json, checkpoints/, filters.png, curves.png, rho_hat.png.",
    )
    _add_train_options(p)
    p.add_argument("--workdir", help="run directory (default runs/<preset>-<time>)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    p.set_defaults(func=_train)


def _train(args) -> int:
    import jax

    from saejax import train
    from saejax.data import training_data

    if args.resume and not args.workdir:
        raise ValueError("--resume needs --workdir, the run directory to continue.")
    # A resumed run starts from its own saved settings; flags given again must agree with them
    # (the learning rate and the step count may change).
    base = train.saved_config(args.workdir) if args.resume else None
    config = _config_from_args(args, base=base)
    if config.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    _enable_compilation_cache()
    workdir = Path(args.workdir or f"runs/{args.preset}-{time.strftime('%Y%m%d-%H%M%S')}")
    x, info = training_data(
        config.dataset, config.data, config.num_examples, config.patch_size, config.seed
    )
    print(
        f"training {x.shape[1]}-{config.n_hidden}-{x.shape[1]} on {x.shape[0]} examples "
        f"({info['source']}), {config.optimizer} for {config.steps} steps, {config.dtype}, "
        f"{config.grad} gradient -> {workdir}"
    )
    result = train.run(config, x, workdir, resume=args.resume, progress=not args.no_progress,
                       data_info=info)
    s = result.summary
    print(
        f"J = {s['final_loss']:.6g} (reconstruction {s['reconstruction']:.4g}, weight decay "
        f"{s['weight_decay']:.4g}, sparsity {s['sparsity']:.4g}); mean rho_hat "
        f"{s['rho_hat_mean']:.4g} (target {config.rho}), dead {100 * s['dead_fraction']:.0f}%; "
        f"{s['steps_this_run']} steps in {s['wall_seconds']:.2f} s "
        f"(compile {s['compile_seconds']:.2f} s)"
    )
    filters = workdir / "filters.png"
    print(f"filters: {filters}" if filters.exists() else f"run directory: {workdir}")
    return 0


SWEPT = ("rho", "beta", "lam", "lr", "seed")


def _add_sweep(sub) -> None:
    p = sub.add_parser(
        "sweep",
        help="train one autoencoder per (rho, beta, ...) grid point, as one compiled program",
        description="Sweep rho and beta (and optionally lam, lr, seed): the training function "
        "vmapped over the grid, in chunks of --chunk-size members, sharded over all "
        "devices. Writes results.csv, results.json, heatmaps.png, filters_grid.png and "
        "members/ (orbax) to --workdir.",
    )
    _add_train_options(p, swept=SWEPT)
    p.add_argument("--points", action="store_true",
                   help="zip the lists into points instead of taking their cartesian product")
    p.add_argument("--chunk-size", type=int, default=64, help="members trained at once")
    p.add_argument("--devices", type=int, help="devices to shard over (default: all)")
    p.add_argument("--probe", action="store_true",
                   help="add each member's linear-probe accuracy (labelled data: mnist, digits)")
    p.add_argument("--workdir", help="output directory (default runs/sweep-<preset>-<time>)")
    p.set_defaults(func=_sweep)


def _sweep(args) -> int:
    import jax

    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    _enable_compilation_cache()
    from saejax import sweeps
    from saejax.data import training_data, training_labels

    if args.rho is None or args.beta is None:
        raise ValueError("a sweep needs --rho and --beta values, e.g. --rho 0.01 0.1 --beta 1 3")
    config = _config_from_args(args, swept=SWEPT)
    workdir = Path(args.workdir or f"runs/sweep-{args.preset}-{time.strftime('%Y%m%d-%H%M%S')}")
    grid = sweeps.make_grid(config, args.rho, args.beta, args.lam, args.lr, args.seed,
                           "points" if args.points else "product")
    x, info = training_data(
        config.dataset, config.data, config.num_examples, config.patch_size, config.seed
    )
    labels = None
    if args.probe:
        labels = training_labels(config.dataset, config.data, config.num_examples)
        if labels is None:
            raise ValueError(f"--probe needs labelled data (mnist or digits), not "
                             f"{config.dataset}.")
    print(f"sweeping {len(grid)} members of {x.shape[1]}-{config.n_hidden}-{x.shape[1]} on "
          f"{x.shape[0]} examples ({info['source']}), {config.optimizer} for {config.steps} "
          f"steps -> {workdir}")
    result = sweeps.sweep(config, x, args.rho, args.beta, args.lam, args.lr, args.seed,
                         "points" if args.points else "product", args.chunk_size, args.devices,
                         workdir, progress=not args.no_progress, data_info=info,
                         labels=labels)
    s = result.summary
    print(f"{s['members']} members on {s['devices']} device(s), {s['diverged']} diverged, "
          f"{s['wall_seconds']:.1f} s")
    print(f"results: {workdir / 'results.csv'}\nheatmaps: {workdir / 'heatmaps.png'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="saejax", description="The CS294A/UFLDL sparse autoencoder in JAX."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_sweep(sub)
    _add_gradcheck(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from saejax.checkpoint import CheckpointError
    from saejax.train import DivergenceError

    try:
        return args.func(args)
    except (ValueError, CheckpointError) as e:  # bad input: one clear line, no traceback
        print(f"saejax {args.command}: error: {e}", file=sys.stderr)
        return 2
    except DivergenceError as e:
        print(f"saejax {args.command}: {e}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
