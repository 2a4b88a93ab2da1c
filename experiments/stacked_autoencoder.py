"""UFLDL's stacked autoencoder exercise on MNIST: greedy pretraining, softmax, fine-tuning.

Command:   .venv/bin/python experiments/stacked_autoencoder.py --data ../shared/data/mnist
           [--workdir DIR | --resume] [--examples N] [--pretrain-steps N] [--finetune-steps N]
Run time:  see the README ("Stacked autoencoders") for the measured stages.
Prints:    "before fine-tuning: NN.NN%" and "after fine-tuning: NN.NN%" (test accuracy on the
           10,000 MNIST test images), then the wall time.

The network is UFLDL's 784-200-200-10 ("Building deep networks for classification",
stackedAEExercise.m; UFLDL reports 87.7% before fine-tuning and 97.6% after):
1. a sparse autoencoder 784-200 (rho 0.1, beta 3, lambda 3e-3, L-BFGS 400 iterations) on the
   60,000 training images;
2. a second one, 200-200, same settings, on the first one's features a2;
3. softmax regression on the second one's features (lambda 1e-4, 100 L-BFGS iterations);
4. the whole stack fine-tuned by backpropagation (hand-written gradient, saejax.stacked;
   L-BFGS, 400 iterations, weight decay --finetune-lam on the softmax weights, as UFLDL's
   stackedAECost decays the softmax weights only).
Each autoencoder is an ordinary saejax run in DIR/layer1, DIR/layer2 (checkpoints, figures);
the fine-tuned network is exported to DIR/model (weights.safetensors, one tensor group per
layer, and cfg.json; ``saejax.exchange.load_stack``), the accuracies to DIR/result.json.
"""

from __future__ import annotations

import argparse
import time

from saejax import exchange, rundir, stacked
from saejax.config import TrainConfig
from saejax.data import load_mnist


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="directory of the MNIST idx files")
    parser.add_argument("--examples", type=int, default=60_000,
                        help="training images used (default: all 60,000)")
    parser.add_argument("--hidden", type=int, nargs="+", default=[200, 200],
                        help="hidden units per layer (default 200 200)")
    parser.add_argument("--pretrain-steps", type=int, default=400)
    parser.add_argument("--softmax-steps", type=int, default=100)
    parser.add_argument("--finetune-steps", type=int, default=400)
    parser.add_argument("--finetune-lam", type=float, default=1e-4)
    rundir.add_arguments(parser, "stacked-autoencoder")
    args = parser.parse_args()
    workdir = rundir.workdir_of(args)
    start = time.perf_counter()
    settings = {k: v for k, v in vars(args).items() if k not in ("workdir", "resume")}
    if args.resume:  # the layers resume from their own checkpoints; the settings must agree
        saved = rundir.read_json(workdir / "config.json").get("settings")
        if saved != settings:
            raise ValueError(f"cannot resume {workdir}: it was started with {saved}, not "
                             f"{settings}. Use another --workdir for other settings.")
    else:
        workdir.mkdir(parents=True)
        rundir.write_json(workdir / "config.json", {"kind": "run", "experiment":
                                                    "stacked-autoencoder", "settings": settings})

    t0 = time.perf_counter()
    x, labels = load_mnist(args.data, "train", args.examples)
    x_test, labels_test = load_mnist(args.data, "test")
    print(f"{len(x)} training and {len(x_test)} test images; data {time.perf_counter() - t0:.1f} s")

    configs = [TrainConfig(dataset="mnist", n_hidden=h, rho=0.1, beta=3.0, lam=3e-3,
                           steps=args.pretrain_steps) for h in args.hidden]
    t0 = time.perf_counter()
    layers = stacked.pretrain(configs, x, workdir, resume=args.resume,
                              data_info={"source": args.data, "examples": len(x)})
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

    t0 = time.perf_counter()
    tuned, info = stacked.finetune(net, x, labels, lam=args.finetune_lam,
                                   steps=args.finetune_steps)
    after = stacked.stack_accuracy(tuned, x_test, labels_test)
    t_fine = time.perf_counter() - t0
    print(f"after fine-tuning: {100 * after:.2f}%  (fine-tuning {t_fine:.1f} s, J "
          f"{info['loss'][0]:.4f} -> {info['final_loss']:.4f})")
    rundir.write_json(workdir / "result.json", {
        "before_finetuning": before, "after_finetuning": after,
        "finetune_loss": info["loss"], "seconds": {"pretraining": t_pre, "softmax": t_soft,
                                                   "finetuning": t_fine}})
    exchange.export_stack(tuned, workdir / "model", {
        "before_finetuning": before, "after_finetuning": after, "data": args.data})
    print(f"wall time: {time.perf_counter() - start:.1f} s (pretraining {t_pre:.1f} s)")


if __name__ == "__main__":
    rundir.run_script(main)
