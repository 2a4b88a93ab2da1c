"""The newer UFLDL tutorial's convolutional network on MNIST (cnnTrain.m), hand-written backward pass.

Command:   .venv/bin/python -m experiments.reproduce.cnn_mnist --data ../shared/data/mnist
           [--epochs 3] [--workdir DIR]
Run time:  about a minute on 2 CPU cores.
Expected:  "test accuracy: NN.NN%": cnnTrain.m says "accuracy should be above 97% after 3
           epochs of training" and "Accuracy should be around 97.4% after 3 epochs";
           measured 97.07% (seed 0; seeds 0-9: median 96.83%, 95.78-97.15%, four of ten above
           97%; float64 no higher: 96.95% and 96.45% for seeds 0 and 1). reproduce_ufldl's
           row asks for above 97%.

Settings, from the tutorial's page (ufldl.stanford.edu/tutorial, "Exercise: Convolutional
Neural Network": "10 filters of dimension 9x9, and a non-overlapping, contiguous 2x2 pooling
region") and its starter code (amaas/stanford_dl_ex, cnn/cnnTrain.m at version 0.9, whose
"around 97.4%" was written for 10 filters; version 0.9.1 raised numFilters to 20 and kept the
comment; 20 filters gave 93.7-95.3% over seeds 0-3 here, 10 gave 96.7-97.2%),
cnnInitParams.m, minFuncSGD.m: 28x28 images, 9x9 filters with a sigmoid after the convolution,
mean pooling over 2x2, a softmax over the 10 classes; Wc ~ 0.1 N(0, 1), Wd ~ U(-r, r) with
r = sqrt(6 / (10 + 1000 + 1)), zero biases; SGD with momentum on the 60,000
training images: 3 epochs of minibatches of 256 (a fresh permutation each epoch), alpha = 0.1
halved after each epoch, momentum 0.5 and from iteration 10 on 0.95. The cost is the mean
cross-entropy, without weight decay, as cnnCost.m. float32. The gradient is
``saejax.cnn.loss_and_grad``, written by hand and checked against autodiff and finite
differences in tests/test_cnn.py.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from experiments.common import (
    add_arguments,
    claim_workdir,
    count,
    run_script,
    seed_type,
    workdir_of,
)
from saejax import cnn, viz
from saejax.data import load_mnist
from saejax.records import files

SIDE = 28


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="directory of the MNIST idx files")
    parser.add_argument("--epochs", type=count("epochs"), default=3)
    parser.add_argument("--seed", type=seed_type(), default=0)
    add_arguments(parser, "cnn-mnist", resumes=False)
    args = parser.parse_args()
    workdir = workdir_of(args)
    x, y = load_mnist(args.data, "train")
    x_test, y_test = load_mnist(args.data, "test")
    images, test_images = x.reshape(-1, SIDE, SIDE), x_test.reshape(-1, SIDE, SIDE)
    params = cnn.init_params(jax.random.key(args.seed))
    t0 = time.perf_counter()
    params, costs = cnn.train_sgd(params, images, y, epochs=args.epochs, seed=args.seed)
    seconds = time.perf_counter() - t0
    accuracy = float(np.mean(cnn.predict(params, test_images) == np.asarray(y_test)))
    claim_workdir(args, workdir)
    files.write_json(workdir / "config.json", {
        "kind": "run", "experiment": "cnn-mnist", "epochs": args.epochs, "seed": args.seed,
        "results": {"test_accuracy": accuracy, "train_seconds": seconds,
                    "first_cost": float(costs[0]), "last_cost": float(costs[-1]),
                    "iterations": len(costs)}})
    path = viz.save_filters(np.asarray(params["Wc"]).reshape(len(params["Wc"]), -1),
                            workdir / "filters.png", title="the learned 9x9 filters")
    print(f"{len(costs)} SGD iterations in {seconds:.1f} s; cost {costs[0]:.4f} -> "
          f"{np.mean(costs[-20:]):.4f} (mean of the last 20)")
    print(f"test accuracy: {100 * accuracy:.2f}%")
    print(f"filters: {path}")


if __name__ == "__main__":
    run_script(main)
