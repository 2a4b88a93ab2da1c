"""UFLDL's stacked autoencoder exercise on MNIST: greedy pretraining, softmax, fine-tuning.

Command:   .venv/bin/python -m experiments.reproduce.stacked_autoencoder --data ../shared/data/mnist
           [--ufldl] [--workdir DIR | --resume] [--pretrain-examples N] ...
Run time:  see the README ("Stacked autoencoders") for the measured stages of both modes.
Prints:    "before fine-tuning: NN.NN%" and "after fine-tuning: NN.NN%" (test accuracy on the
           10,000 MNIST test images), then the wall time.

The network is UFLDL's 784-200-200-10 ("Building deep networks for classification",
stackedAEExercise.m; UFLDL reports 87.7% before fine-tuning and 97.6% after):
1. a sparse autoencoder 784-200 (rho 0.1, beta 3, lambda 3e-3, L-BFGS 400 iterations);
2. a second one, 200-200, same settings, on the first one's features a2;
3. softmax regression on the second one's features of all 60,000 training images (lambda 1e-4,
   100 L-BFGS iterations);
4. the whole stack fine-tuned by backpropagation on all 60,000 (hand-written gradient,
   saejax.stacked; weight decay --finetune-lam on the softmax weights, as UFLDL's stackedAECost).
With --ufldl, exactly UFLDL's run: both autoencoders on all 60,000 images, fine-tuning by
full-batch L-BFGS for 400 iterations. By default, the faster run: the autoencoders on the first
--pretrain-examples (20,000) images, fine-tuning by minibatch Adam (--epochs 20, --batch-size
128, --lr 1e-3) on the same gradient.
Each autoencoder is an ordinary saejax run in DIR/layer1, DIR/layer2 (checkpoints, figures);
the fine-tuned network is exported to DIR/model (weights.safetensors, one tensor group per
layer, and cfg.json; ``saejax.records.models.load_stack``), the accuracies to DIR/result.json.
"""

from __future__ import annotations

import argparse
import time

import jax.numpy as jnp

from experiments.common import add_arguments, claim_workdir, count, run_script, workdir_of
from saejax import stacked
from saejax.config import TrainConfig
from saejax.data import load_mnist
from saejax.flags import checked
from saejax.records import files, models, rundir


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="directory of the MNIST idx files")
    parser.add_argument("--ufldl", action="store_true",
                        help="UFLDL's own run: pretraining on all 60,000 images, L-BFGS "
                             "fine-tuning (400 iterations)")
    parser.add_argument("--pretrain-examples", type=count("pretrain_examples"), default=None,
                        help="images the autoencoders train on (default 20,000; 60,000 with "
                             "--ufldl)")
    parser.add_argument("--hidden", type=count("hidden"), nargs="+", default=[200, 200],
                        help="hidden units per layer (default 200 200)")
    parser.add_argument("--pretrain-steps", type=count("pretrain_steps"), default=400)
    parser.add_argument("--softmax-steps", type=count("softmax_steps"), default=100)
    parser.add_argument("--finetune", choices=["adam", "lbfgs"], default=None,
                        help="fine-tuning optimizer (default adam; lbfgs with --ufldl)")
    parser.add_argument("--finetune-steps", type=count("finetune_steps"), default=400,
                        help="L-BFGS iterations")
    parser.add_argument("--epochs", type=count("epochs"), default=20, help="Adam epochs")
    parser.add_argument("--batch-size", type=count("batch_size"), default=128,
                        help="Adam minibatch")
    parser.add_argument("--lr", type=checked(float, "positive", "lr"), default=1e-3,
                        help="Adam learning rate")
    parser.add_argument("--finetune-lam", type=checked(float, "nonnegative", "finetune_lam"),
                        default=1e-4)
    add_arguments(parser, "stacked-autoencoder")
    return parser


def own_settings(flags: dict) -> dict:
    """The flags that define the run: not --workdir, --resume, nor the run_* bookkeeping that
    experiments.common adds (which older records hold other keys of)."""
    return {k: v for k, v in flags.items()
            if k not in ("workdir", "resume") and not k.startswith("run_")}


def main():
    args = build_parser().parse_args()
    workdir = workdir_of(args)
    start = time.perf_counter()
    settings = own_settings(vars(args))
    if args.resume:  # the layers resume from their own checkpoints; the settings must agree
        saved = own_settings(files.read_json(workdir / "config.json").get("settings") or {})
        if saved != settings:
            raise ValueError(f"cannot resume {workdir}: it was started with {saved}, not "
                             f"{settings}. Use another --workdir for other settings.")
        if (workdir / "result.json").exists():
            raise ValueError(f"{workdir} holds a finished run (result.json): there is nothing "
                             "to resume, and nothing was changed. Use another --workdir to run "
                             "it again.")

    pretrain_examples = args.pretrain_examples or (60_000 if args.ufldl else 20_000)
    finetune_with = args.finetune or ("lbfgs" if args.ufldl else "adam")
    t0 = time.perf_counter()
    x, labels = load_mnist(args.data, "train")  # before the directory: a wrong path writes nothing
    x_test, labels_test = load_mnist(args.data, "test")
    if args.resume:
        rundir.hold(workdir)
    else:
        claim_workdir(args, workdir)
        files.write_json(workdir / "config.json", {"kind": "run", "experiment":
                                                    "stacked-autoencoder", "settings": settings})
    print(f"{len(x)} training and {len(x_test)} test images; data {time.perf_counter() - t0:.1f} s;"
          f" pretraining on {pretrain_examples}, fine-tuning by {finetune_with}")

    configs = [TrainConfig(dataset="mnist", n_hidden=h, rho=0.1, beta=3.0, lam=3e-3,
                           steps=args.pretrain_steps) for h in args.hidden]
    t0 = time.perf_counter()
    layers = stacked.pretrain(configs, x[:pretrain_examples], workdir, resume=args.resume,
                              data_info={"source": args.data, "examples": pretrain_examples})
    t_pre = time.perf_counter() - t0
    for i, r in enumerate(layers, 1):
        print(f"layer {i}: {r.summary['steps']} iterations, J = {r.summary['final_loss']:.4f}, "
              f"{r.summary['wall_seconds']:.1f} s")

    t0 = time.perf_counter()
    params = [r.state.params for r in layers]
    net, _ = stacked.softmax_on_top(params, x, labels, lam=1e-4, steps=args.softmax_steps)
    before = stacked.stack_accuracy(net, x_test, labels_test)
    t_soft = time.perf_counter() - t0
    print(f"before fine-tuning: {100 * before:.2f}%  (softmax {t_soft:.1f} s)")

    dtype = net["softmax"]["W"].dtype  # J on all the training data, before and after
    J_before = float(stacked.cost(net, jnp.asarray(x, dtype), jnp.asarray(labels),
                                  args.finetune_lam))
    t0 = time.perf_counter()
    if finetune_with == "lbfgs":
        tuned, info = stacked.finetune(net, x, labels, lam=args.finetune_lam,
                                       steps=args.finetune_steps)
    else:
        tuned, info = stacked.finetune_adam(net, x, labels, lam=args.finetune_lam,
                                            epochs=args.epochs, batch_size=args.batch_size,
                                            lr=args.lr)
    after = stacked.stack_accuracy(tuned, x_test, labels_test)
    t_fine = time.perf_counter() - t0
    print(f"after fine-tuning: {100 * after:.2f}%  (fine-tuning {t_fine:.1f} s, J "
          f"{J_before:.4f} -> {info['final_loss']:.4f})")
    models.export_stack(tuned, workdir / "model", {
        "before_finetuning": before, "after_finetuning": after, "data": args.data})
    files.write_json(workdir / "result.json", {  # last: the mark of a finished run
        "before_finetuning": before, "after_finetuning": after, "finetune_loss": info["loss"],
        "finetune_J": {"before": J_before, "after": info["final_loss"]},
        "seconds": {"pretraining": t_pre, "softmax": t_soft, "finetuning": t_fine}})
    print(f"wall time: {time.perf_counter() - start:.1f} s (pretraining {t_pre:.1f} s)")


if __name__ == "__main__":
    run_script(main)
