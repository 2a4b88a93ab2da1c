"""The ``saejax`` command; the only place that parses arguments."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from saejax.config import network_name
from saejax.flags import (
    Parser,
    add_train_options,
    checked,
    command,
    config_from_args,
    fit_to_data,
    to_flags,
    versions,
)
from saejax.schema import AXES, DECODERS, PENALTIES, TERMS


def _add_gradcheck(sub) -> None:
    from saejax.architectures.gradcheck import FAMILY_EPS, FAMILY_EPS_OF
    from saejax.config import rule_of
    from saejax.gradcheck import FAMILY_KNOBS, NUMERICAL_EPS
    from saejax.schema import ARCHS

    own = "".join(f", {eps:g} for {arch}" for (arch, dt), eps in FAMILY_EPS_OF.items()
                  if dt == "float32")
    eps_help = (f"finite-difference step, > 0 (default: {NUMERICAL_EPS['float64']:g} in float64; "
                f"in float32 {NUMERICAL_EPS['float32']:g}, and {FAMILY_EPS['float32']:g} for "
                f"the family{own})")

    p = command(sub, "gradcheck", _gradcheck,
                 "compare analytic, autodiff and numerical gradients on a small network")
    p.add_argument("--n-visible", type=checked(int, "positive_int", "n_visible"), default=8,
                   metavar="N", help="input width N (default 8)")
    p.add_argument("--n-hidden", type=checked(int, "positive_int", "n_hidden"), default=5,
                   metavar="N", help="hidden units H (default 5)")
    p.add_argument("--m", type=checked(int, "positive_int", "m"), default=10, metavar="N",
                   help="number of examples (default 10)")
    for flag, choices, default, help_ in (
            ("--penalty", PENALTIES, "all", "sparsity penalties to check (default: all three)"),
            ("--term", TERMS, "loss", "which function to differentiate: the whole loss "
             "(default), one term, or all"),
            ("--decoder", DECODERS, "sigmoid", "output layer: sigmoid (default), linear, or all")):
        p.add_argument(flag, nargs="+", choices=[*choices, "all"], default=[default], help=help_)
    p.add_argument("--tied", nargs="?", const="yes", choices=["yes", "all"], default="no",
                   help="check tied weights W2 = W1^T (as train's --tied), or --tied all for "
                        "both (default: untied)")
    p.add_argument("--no-tied", dest="tied", action="store_const", const="no",
                   help="check untied weights only (the default)")
    p.add_argument("--arch", nargs="+", choices=[*ARCHS, "all"], default=["sigmoid"],
                   help="architectures to check: sigmoid (default; the choices above), the "
                        "family (relu-l1, topk, batchtopk, jumprelu: analytic, autodiff and "
                        "finite differences at points drawn off their kinks), or all")
    for name, default, help_ in (("rho", 0.01, "sparsity target rho"),
                                 ("beta", 3.0, "sparsity weight beta"),
                                 ("lam", 1e-4, "weight decay lambda"),
                                 ("l1", FAMILY_KNOBS["l1"], "relu-l1's L1 coefficient"),
                                 ("l0", FAMILY_KNOBS["l0"], "jumprelu's L0 coefficient")):
        p.add_argument(f"--{name}", type=checked(float, rule_of(name), name), default=default,
                       metavar="X", help=f"{help_} (default {default:g})")
    p.add_argument("--k", type=checked(int, rule_of("k"), "k"), default=FAMILY_KNOBS["k"],
                   metavar="N", help=f"topk's and batchtopk's latents kept per example, at most "
                                     f"--n-hidden (default {FAMILY_KNOBS['k']})")
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                   help="the precision of the problem and of every gradient (default: float64)")
    p.add_argument("--eps", type=checked(float, "positive", "eps"), default=None, metavar="X",
                   help=eps_help)
    p.add_argument("--seed", type=checked(int, "seed", "seed"), default=0, metavar="N",
                   help="the random problem's seed (default: 0)")
    p.add_argument("--stacked", action="store_true",
                   help="also check the stacked network's fine-tuning gradient (two sparse "
                        "layers N-H-H and a 3-class softmax, m examples)")
    p.add_argument("--cnn", action="store_true",
                   help="also check the convolutional network's gradient (4 images of 12x12, "
                        "2 filters of 5x5, mean pooling over 2x2, 4 classes)")
    p.add_argument("--rica", action="store_true",
                   help="also check RICA's gradient (6 filters, 20 patches of 9 pixels)")
    p.add_argument("--sparse-coding", action="store_true",
                   help="also check topographic sparse coding's feature gradient (16 features, "
                        "10 patches of 8 pixels, 5 random groups)")
    p.add_argument("--ica", action="store_true",
                   help="also check orthonormal ICA's gradient (4 orthonormal filters, 20 "
                        "patches of 6 pixels)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")


def _gradcheck(args) -> int:
    """Three-way gradient check: the hand-written gradient against jax.grad, and both against
    central finite differences, per parameter block, with UFLDL's relative difference
    ||a-b||/||a+b||. The family's architectures (--arch) are checked at points drawn off the
    kinks of their losses; jumprelu's threshold has a pseudo-derivative, gated against jax.grad
    only. Exits 1 if any difference exceeds its tolerance."""
    from saejax.schema import ARCHS

    archs = _all(args.arch, ARCHS)
    if args.k > args.n_hidden and {"topk", "batchtopk"} & set(archs):
        raise ValueError(f"k = {args.k} exceeds the {args.n_hidden} latents (--n-hidden); pass "
                         "a smaller --k or more --n-hidden.")
    import jax

    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    from saejax import cnn, gradcheck, ica, rica, sparse_coding, stacked
    from saejax.losses import Hyper

    net = None
    others = {}  # the other networks of the tutorial, small
    if args.cnn:
        others["cnn"] = cnn.check(*cnn.problem(jnp.dtype(args.dtype), args.seed), eps=args.eps)
    if args.rica:
        others["rica"] = rica.check(*rica.problem(jnp.dtype(args.dtype), args.seed),
                                    eps=args.eps)
    if args.sparse_coding:
        others["sparse_coding"] = sparse_coding.check(
            *sparse_coding.problem(jnp.dtype(args.dtype), args.seed), eps=args.eps)
    if args.ica:
        others["ica"] = ica.check(*ica.problem(jnp.dtype(args.dtype), args.seed), eps=args.eps)
    if args.stacked:  # two sparse layers N-H-H and a 3-class softmax, m examples
        net = stacked.check(*stacked.problem((args.n_visible, args.n_hidden, args.n_hidden), 3,
                                             args.m, jnp.dtype(args.dtype), args.seed),
                            args.lam, args.eps)
    result = gradcheck.report(
        args.n_visible, args.n_hidden, args.m, _all(args.penalty, PENALTIES),
        _all(args.term, TERMS), _all(args.decoder, DECODERS),
        {"no": (False,), "yes": (True,), "all": (False, True)}[args.tied],
        Hyper(args.rho, args.beta, args.lam, args.l1, args.k, args.l0), args.dtype, args.eps,
        args.seed, net, archs, others)
    print(json.dumps(result, indent=2) if args.json else gradcheck.format_report(result))
    return 0 if result["passed"] else 1


def _all(chosen: list, choices: tuple) -> tuple:
    return choices if "all" in chosen else tuple(chosen)


def _add_train(sub) -> None:
    p = command(sub, "train", _train,
                 "train the sparse autoencoder (default: the UFLDL exercise on embedded images)")
    add_train_options(p)
    p.add_argument("--workdir", help="a new or empty run directory (default runs/<name>-<time>, "
                   "<name> the preset's or --data's: an array file's stem, a directory's name)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    p.add_argument("--tensorboard", action="store_true",
                   help="also write TensorBoard summaries to WORKDIR/tensorboard (needs "
                        "pip install 'saejax[tensorboard]')")


def _train(args) -> int:
    """Train the sparse autoencoder and write a run directory: config.json, metrics.jsonl,
    summary.json, checkpoints/, filters.png, curves.png, rho_hat.png."""
    import jax

    from saejax import train
    from saejax.config import refuse_lr_for_lbfgs
    from saejax.data import config_data
    from saejax.data.datasets import data_name
    from saejax.data.synthetic import truth_of
    from saejax.records import rundir
    from saejax.runtime import devices

    name = data_name(args.data) or args.preset  # runs/<name>-<time>
    workdir = rundir.choose(args.workdir, args.resume, name, "run")  # before the data
    # A resumed run starts from its own saved settings; flags given again must agree with them
    # (the learning rate and the step count may change).
    base = train.saved_config(workdir) if args.resume else None
    config = config_from_args(args, base=base)
    refuse_lr_for_lbfgs(config, args.lr is not None)
    if config.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    config, x, info = config_data(config, all_rows=base is None and args.num_examples is None)
    devices.announce()  # the first line: what JAX runs on
    config = fit_to_data(config, x, args)
    config.check_k()  # before the line that says training began
    print(
        f"training {network_name(config, x.shape[1])} on {x.shape[0]} examples "
        f"({info['source']}{streamed_note(info)}), {config.optimizer} for {config.steps} steps, {config.dtype}, "
        f"{config.grad} gradient -> {workdir}"
    )
    result = train.run(config, x, workdir, resume=args.resume, progress=not args.no_progress,
                       data_info=info, tensorboard=args.tensorboard, truth=truth_of(info))
    s = result.summary
    activity = (f"mean rho_hat {s['rho_hat_mean']:.4g} (target {config.rho})"
                if config.arch == "sigmoid" else
                f"L0 {s['mean_l0']:.4g}, FVU {s['fvu']:.4g}, shrinkage {s['shrinkage']:.3g}")
    print(
        f"J = {s['final_loss']:.6g} (reconstruction {s['reconstruction']:.4g}, weight decay "
        f"{s['weight_decay']:.4g}, sparsity {s['sparsity']:.4g}); {activity}, dead "
        f"{100 * s['dead_fraction']:.0f}%; {s['steps_this_run']} steps in "
        f"{s['wall_seconds']:.2f} s "
        f"(compile {s['compile_seconds']:.2f} s); {s['iterations']} iterations, "
        f"{s['evaluations']} evaluations, stopped: {s['stop_reason']}"
    )
    if "mcc" in s:
        print(f"against the true dictionary: MCC {s['mcc']:.4f}, "
              f"{100 * s['recovered_fraction']:.1f}% of the features above cosine 0.9, "
              f"firing F1 {s['f1']:.4f}")
    filters = workdir / "filters.png"
    print(f"filters: {filters}" if filters.exists() else f"run directory: {workdir}")
    return 0


def streamed_note(info: dict) -> str:
    """", read a minibatch at a time (J on N rows)" for data streamed from disk, else ""."""
    if "streamed" not in info:
        return ""
    return (", read a minibatch at a time; J on "
            f"{info['streamed']['evaluation_rows']} of its rows")


def _add_sweep(sub) -> None:
    p = command(sub, "sweep", _sweep,
                 "train one autoencoder per grid point of its sparsity knobs (rho and beta; l1, "
                 "k or l0), as one compiled program")
    add_train_options(p, swept=AXES, without=("log_every",))  # a sweep logs no curves
    p.add_argument("--points", action="store_true",
                   help="zip the lists into points instead of taking their cartesian product")
    p.add_argument("--chunk-size", type=checked(int, "positive_int", "chunk_size"), default=64,
                   metavar="N", help="members trained at once (default: 64)")
    p.add_argument("--devices", type=checked(int, "positive_int", "devices"), metavar="N",
                   help="devices to shard over (default: all; on a CPU host, one per core, or "
                        "$SAEJAX_CPU_DEVICES)")
    p.add_argument("--probe", action="store_true",
                   help="add each member's linear-probe accuracy (labelled data: mnist, digits)")
    p.add_argument("--workdir", help="a new or empty output directory (default "
                   "runs/sweep-<name>-<time>, <name> as for train)")
    p.add_argument("--resume", action="store_true",
                   help="continue the sweep in --workdir: its finished blocks are kept, the rest "
                        "trained (the same grid, settings and --chunk-size)")
    p.add_argument("--tensorboard", action="store_true",
                   help="also write each member's results as TensorBoard scalars to "
                        "WORKDIR/tensorboard (needs pip install 'saejax[tensorboard]')")
    multi = p.add_argument_group(
        "several processes", "run the same command in every process (same --workdir); the "
        "members are spread over every process's devices and process 0 writes the results")
    multi.add_argument("--coordinator", metavar="HOST:PORT",
                       help="process 0's address, for jax.distributed.initialize (default: "
                            "none, one process)")
    multi.add_argument("--num-processes", type=checked(int, "positive_int", "num_processes"),
                       metavar="N", help="how many processes take part (default: 1)")
    multi.add_argument("--process-id", type=int, metavar="I",
                       help="this process, 0 to N-1 (default: none, one process)")


def _sweep(args) -> int:
    """Sweep an architecture's sparsity knobs (the sigmoid network's rho and beta; relu-l1's
    --l1, topk's and batchtopk's --k, jumprelu's --l0; and optionally lam, lr, seed): the
    training function vmapped over the grid, in chunks of --chunk-size members, sharded over all
    devices. Writes results.csv, results.json, frontier.png, heatmaps.png (rho x beta),
    filters_grid.png and members/ (orbax) to --workdir."""
    import jax

    from saejax.runtime import devices

    try:
        devices.split_cpu()  # on a CPU host, one device per core: each core trains its share
    except RuntimeError:  # cli.main called from a program that already runs JAX: keep its devices
        pass
    devices.join(args.coordinator, args.num_processes, args.process_id)
    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    from saejax import sweeps
    from saejax.config import refuse_lr_for_lbfgs
    from saejax.data import config_data, training_labels
    from saejax.data.datasets import data_name
    from saejax.data.synthetic import truth_of
    from saejax.records import rundir
    from saejax.runtime.hosts import on_writer

    config = config_from_args(args, swept=AXES)
    if config.arch == "sigmoid" and (args.rho is None or args.beta is None):
        raise ValueError("a sweep needs --rho and --beta values, e.g. --rho 0.01 0.1 --beta 1 3 "
                         "(or --arch with its knob: --arch topk --k 8 16 32)")
    refuse_lr_for_lbfgs(config, args.lr is not None)
    if args.coordinator and not args.workdir:
        raise ValueError("several processes need --workdir: every process names the same one.")
    # process 0 claims the directory (before the data loads) and alone writes it
    # (the others stop with it when it is refused, rather than wait for it in a collective)
    def choose(check=True):
        name = data_name(args.data) or args.preset
        return rundir.choose(args.workdir, args.resume, f"sweep-{name}", "sweep", check)

    workdir = on_writer(choose, f"process 0 could not claim {args.workdir}") or choose(False)
    mode = "points" if args.points else "product"
    grid = sweeps.make_grid(config, args.rho, args.beta, args.lam, args.lr, args.seed, mode,
                            l1=args.l1, k=args.k, l0=args.l0)
    config, x, info = config_data(config, all_rows=args.num_examples is None)
    devices.announce()  # the first line: what JAX runs on
    config = fit_to_data(config, x, args)
    labels = None
    if args.probe:
        labels = training_labels(config.dataset, config.data, config.num_examples)
        if labels is None:
            raise ValueError(f"--probe needs labelled data (mnist or digits), not "
                             f"{config.dataset}.")
        from saejax.sweeps.probe import check_split

        check_split(labels)  # before the line that says the sweep began
    print(f"sweeping {len(grid)} members of {network_name(config, x.shape[1])} on "
          f"{x.shape[0]} examples ({info['source']}{streamed_note(info)}), {config.optimizer} for {config.steps} "
          f"steps -> {workdir}")
    result = sweeps.run_sweep(
        config, x, grid, sweeps.Layout(args.chunk_size, args.devices),
        sweeps.Output(workdir, args.resume, not args.no_progress, info, args.tensorboard),
        sweeps.Probe(labels, truth=truth_of(info)), mode)
    s = result.summary
    if s["resumed_from"]:
        print(f"resumed block {s['resumed_from']['block']} (running/"
              f"{s['resumed_from']['block']:05d}) from its checkpoint at step "
              f"{s['resumed_from']['step']}")
    print(f"{s['members']} members on {s['devices']} device(s), {s['diverged']} diverged, "
          f"{s['wall_seconds']:.1f} s")
    print(f"results: {workdir / 'results.csv'}\nfrontier (L0 against FVU): "
          f"{workdir / 'frontier.png'}")
    if (workdir / "heatmaps.png").exists():
        print(f"heatmaps: {workdir / 'heatmaps.png'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from saejax import cli_data, cli_lm, cli_models

    parser = Parser(prog="saejax", description="The CS294A/UFLDL sparse autoencoder in JAX.")
    parser.add_argument("--version", action="version", version=versions(),
                        help="print saejax's and JAX's versions and exit")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_sweep(sub)
    _add_gradcheck(sub)
    cli_models.add_export(sub)
    cli_models.add_encode(sub)
    cli_data.add_synth(sub)
    cli_lm.add_activations(sub)
    cli_lm.add_evaluate(sub)
    cli_lm.add_features(sub)
    parser.commands = sub.choices  # each command's own parser, for its errors
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown:  # a misspelled flag: the command's own usage, not saejax's
            parser.commands[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    except SystemExit as exit_:  # --help (0), or a bad flag: argparse printed why (2)
        return exit_.code
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from saejax.records.checkpoints import CheckpointError
    from saejax.train import DivergenceError

    try:
        return args.func(args)
    except (ValueError, CheckpointError, FileNotFoundError) as e:  # bad input: one line
        print(f"saejax {args.command}: error: {to_flags(str(e))}", file=sys.stderr)
        return 2
    except OSError as e:  # a file that cannot be read or written: a full disk, no permission
        print(f"saejax {args.command}: error: cannot use {e.filename or 'a file'}: "
              f"{e.strerror or e}. Nothing was overwritten; free some space or choose a "
              "directory you can write to, then run again.", file=sys.stderr)
        return 2
    except DivergenceError as e:
        print(f"saejax {args.command}: {to_flags(str(e))}", file=sys.stderr)
        return 3


def console_main() -> None:
    """The ``saejax`` command: ``main()``, then an exit without the interpreter's teardown.

    Every command has closed what it wrote when ``main`` returns; tearing down JAX's runtime
    would only cost time (docs/benchmarks.md). The streams are flushed, a multi-process run
    leaves its coordinator, and the process ends with ``os._exit``. ``python -m saejax.cli``
    exits the usual way, so that profilers and coverage tools still write their reports.
    """
    code = main()
    if "jax" in sys.modules:
        import jax

        if jax.distributed.is_initialized():
            jax.distributed.shutdown()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


if __name__ == "__main__":
    sys.exit(main())
