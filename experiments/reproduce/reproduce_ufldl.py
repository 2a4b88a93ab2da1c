"""UFLDL's published results that saejax covers, reproduced by one command, as one table.

Command:   .venv/bin/python -m experiments.reproduce.reproduce_ufldl --data ../shared/data
           (DIR holds mnist/ and IMAGES_sparsenet.mat or IMAGES.mat; stlSampledPatches.mat,
           if there, makes the ICA row the exercise's colour one)
           .venv/bin/python -m experiments.reproduce.reproduce_ufldl --fast   (embedded data, < 1 minute)
Run time:  the full table about 20 minutes on 2 CPU cores (docs/reproduction.md); --fast under
           a minute.
Prints:    result | UFLDL's figure | saejax's measured figure | tolerance | status, one row per
           result; the table is also written to the run directory (table.md, table.json). Exits
           1 if any row fails, 2 on bad input.

Each row runs the experiment script that owns it (``python -m experiments.reproduce.<name>``,
each in its own directory under the run directory, its output in <name>.log) and reads the
figures it prints, so the table and the scripts cannot disagree:

- gradient check: ``saejax gradcheck`` (float64, every penalty), UFLDL's criterion: relative
  difference below 1e-9;
- sparse autoencoder exercise: ufldl_sparse_autoencoder.py, J after 400 iterations against the
  NumPy + SciPy L-BFGS-B peer (experiments/peers/; UFLDL publishes the filters, not J),
  filters.png;
- MNIST pen strokes: ufldl_mnist.py, mean rho_hat at the target 0.1, filters.png;
- softmax regression on raw MNIST (UFLDL: 92.6%): in this process, lambda 1e-4, 100 L-BFGS
  iterations on the 60,000 training images, accuracy on the 10,000 test images;
- self-taught learning: self_taught_learning.py (UFLDL: about 98% on features, 96% on pixels);
- stacked autoencoder: stacked_autoencoder.py (UFLDL: 87.7% before, 97.6% after fine-tuning);
- topographic sparse coding: sparse_coding.py (the bases arranged topographically, measured
  as the mean |cosine| between neighbours on the torus against the others);
- orthonormal ICA: ica.py, on grayscale 8x8 patches of the embedded photographs unless DIR holds
  the exercise's stlSampledPatches.mat (colour); UFLDL shows localized oriented edges, measured
  as the filters' energy in their strongest 4x4 block and their responses' kurtosis on held-out
  patches, each against a random W with orthonormal rows;
- convolution and pooling, self-taught: stl_rica.py (the newer tutorial's stlExercise: RICA
  filters convolved and square-square-root pooled over digits 0-4, a softmax on top; "~99%"
  test accuracy, "97.5%" with random filters);
- convolutional network: cnn_mnist.py (the newer tutorial's cnnTrain: 9x9 convolution, mean
  pooling, softmax, SGD with momentum for 3 epochs; "above 97%", "around 97.4%");
- PCA and whitening: pca_whitening.py (UFLDL's pca_gen checks: the rotated data's covariance
  is diagonal, PCA whitening without regularization gives the identity on the components
  kept for 99% of the variance, ZCA whitening's covariance is U diag(s/(s+eps)) U^T), pictures
  in pca_whitening/;
- linear decoder: linear_decoder_color.py (UFLDL: mostly oriented edges, grey or coloured, and
  colour-opponent blobs), the share of features whose energy is mostly spatial
  (``saejax.metrics.spatial_energy_share`` at least 0.5) rather than a flat colour square:
  "mostly" read as more than half;
- RICA: rica_mnist.py (the newer tutorial's runSoftICA: 50 features on whitened 9x9 MNIST
  patches; the filters localized and their held-out responses sparse, each measured at least
  1.5 times the random start's);
- convolution and pooling on STL-10: stl10_convolution.py (the older tutorial's cnnExercise:
  "about 80%"), only with UFLDL's stlTrainSubset.mat and stlTestSubset.mat in --stl DIR
  (default: --data DIR); without them the row says "not run" and counts as neither passing
  nor failing.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from experiments.common import (
    add_arguments,
    claim_workdir,
    module_command,
    module_env,
    run_script,
    workdir_of,
)
from saejax.records import files


def script(name, workdir, *args, timeout=1800):
    """Runs experiments.reproduce.<name> (or a saejax command) in workdir/<name>; returns its
    stdout and wall seconds."""
    if name == "gradcheck":
        argv = module_command("saejax.cli", "gradcheck", *args)
    else:
        argv = module_command(f"experiments.reproduce.{name}", *args, "--workdir",
                              workdir / name)
    t0 = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          env=module_env())
    (workdir / f"{name}.log").write_text(done.stdout + done.stderr)
    if done.returncode not in (0, 1) or (name != "gradcheck" and done.returncode):
        raise RuntimeError(f"{name} exited {done.returncode}; see {workdir / f'{name}.log'}")
    return done.stdout, time.perf_counter() - t0


def number(pattern, text):
    found = re.search(pattern, text, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no line matching {pattern!r} in the output")
    return float(found.group(1))


@dataclass(frozen=True)
class Inputs:
    """The data directories the rows read; images and mnist are None with --fast and no --data."""

    data: Path | None
    mnist: Path | None
    images: Path | None
    stl: Path | None


class Table:
    """The rows as they come: each printed at once, all written as table.md and table.json."""

    def __init__(self):
        self.rows = []

    def __call__(self, result, ufldl, measured, tolerance, passed, seconds):
        status = {True: "pass", False: "FAIL", None: "not run"}[passed]
        self.rows.append({"result": result, "ufldl": ufldl, "measured": measured,
                          "tolerance": tolerance, "status": status,
                          "seconds": round(seconds, 1)})
        print(f"{result}: {measured} ({status}, {seconds:.0f} s)", flush=True)

    def write(self, workdir: Path) -> list[str]:
        """Writes and prints the table; returns the results of the rows that failed."""
        table = ("| result | UFLDL | saejax | tolerance | status |\n|---|---|---|---|---|\n"
                 + "".join(f"| {r['result']} | {r['ufldl']} | {r['measured']} | "
                           f"{r['tolerance']} | {r['status']} |\n" for r in self.rows))
        files.write_text(workdir / "table.md", table)
        files.write_json(workdir / "table.json", self.rows)
        print("\n" + table + f"\nrun directory: {workdir}")
        return [r["result"] for r in self.rows if r["status"] == "FAIL"]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="directory with mnist/ and IMAGES_sparsenet.mat (or "
                                       "IMAGES.mat)")
    parser.add_argument("--fast", action="store_true",
                        help="the rows that run on the embedded data, in under a minute")
    parser.add_argument("--stl", help="directory with UFLDL's stlTrainSubset.mat and "
                                      "stlTestSubset.mat (default: --data)")
    add_arguments(parser, "reproduce-ufldl", resumes=False)
    args = parser.parse_args(argv)
    if not args.fast and args.data is None:
        raise ValueError("the full table needs --data DIR (mnist/ and IMAGES_sparsenet.mat); "
                         "--fast runs the rows that need no download.")
    return args


def inputs_of(args) -> Inputs:
    if args.data is None:
        return Inputs(None, None, None, None)
    data = Path(args.data)
    mnist = data / "mnist"
    images = next((p for p in (data / "IMAGES_sparsenet.mat", data / "IMAGES.mat")
                   if p.exists()), None)
    if not mnist.is_dir() or images is None:
        raise FileNotFoundError(f"{data} must hold mnist/ and IMAGES_sparsenet.mat or "
                                "IMAGES.mat.")
    return Inputs(data, mnist, images, Path(args.stl or args.data))


def main(argv=None):
    args = parse_args(argv)
    inputs = inputs_of(args)
    workdir = workdir_of(args)
    claim_workdir(args, workdir)
    files.write_json(workdir / "config.json", {"kind": "run", "experiment": "reproduce-ufldl",
                                                "data": args.data, "fast": args.fast})
    table = Table()
    for each in FAST_ROWS + (() if args.fast else FULL_ROWS):
        each(workdir, inputs, table)
    failed = table.write(workdir)
    if failed:
        print(f"{len(failed)} of {len(table.rows)} rows not reproduced: {'; '.join(failed)}")
        sys.exit(1)


def gradcheck_row(workdir, inputs, row) -> None:
    out, t = script("gradcheck", workdir, "--penalty", "all", "--json")
    checks = json.loads(out)
    worst = max(c["differences"]["analytic~numerical"]["all"] for c in checks["checks"])
    row("gradient check (analytic vs numerical, float64)", "< 1e-9", f"{worst:.1e}", "< 1e-9",
        worst < 1e-9, t)


def exercise_row(workdir, inputs, row) -> None:
    images = inputs.images
    out, t = script("ufldl_sparse_autoencoder", workdir,
                    *(["--data", str(images)] if images else []))
    j = number(r"^J = ([0-9.]+)", out)
    # IMAGES_sparsenet.mat: the NumPy + SciPy peer reached 0.4448; embedded photographs: 0.379
    reference = 0.4448 if images else 0.379
    row("sparse autoencoder exercise: J after 400 iterations (filters: "
        "ufldl_sparse_autoencoder/filters.png)", "edge filters (J not published)",
        f"J = {j:.4f}", f"within 0.01 of {reference}", abs(j - reference) <= 0.01, t)


def pca_row(workdir, inputs, row) -> None:
    out, t = script("pca_whitening", workdir)
    k = number(r"^components for 99% of the variance: ([0-9]+)", out)
    rot = number(r"^x_rot covariance: largest off-diagonal ([0-9.e+-]+)", out)
    white = number(r"^PCA whitening, epsilon 0: .* within ([0-9.e+-]+) of I", out)
    zca = number(r"^ZCA whitening, epsilon [0-9.]+: covariance within ([0-9.e+-]+)", out)
    row("PCA and whitening on 12x12 raw patches: x_rot's covariance diagonal, PCA-white's the "
        "identity on the components kept for 99%, ZCA's U diag(s/(s+eps)) U^T (pictures: "
        "pca_whitening/*.png)", "diagonal; identity; edges enhanced (k not published)",
        f"k = {k:.0f} of 144; off-diagonal {rot:.0e}, from I {white:.0e}, ZCA {zca:.0e}",
        "off-diagonal < 1e-10, from I < 1e-8, ZCA < 1e-10",
        rot < 1e-10 and white < 1e-8 and zca < 1e-10, t)


def mnist_row(workdir, inputs, row) -> None:
    out, t = script("ufldl_mnist", workdir, "--data", str(inputs.mnist))
    rho_hat = number(r"^mean rho_hat ([0-9.]+)", out)
    row("MNIST pen strokes: mean rho_hat (filters: ufldl_mnist/filters.png)",
        "pen strokes, rho 0.1", f"{rho_hat:.4f}", "within 10% of 0.1",
        abs(rho_hat - 0.1) <= 0.01, t)


def softmax_row(workdir, inputs, row) -> None:
    t0 = time.perf_counter()
    accuracy = softmax_on_pixels(inputs.mnist)
    row("softmax regression on raw MNIST", "92.6%", f"{100 * accuracy:.2f}%",
        "within 1 point", abs(100 * accuracy - 92.6) <= 1.0, time.perf_counter() - t0)


def self_taught_rows(workdir, inputs, row) -> None:
    out, t = script("self_taught_learning", workdir, "--data", str(inputs.mnist))
    features = number(r"learned features: ([0-9.]+)%", out)
    pixels = number(r"raw pixels: ([0-9.]+)%", out)
    row("self-taught learning, features", "about 98%", f"{features:.2f}%",
        "within 1 point", abs(features - 98.0) <= 1.0, t)
    row("self-taught learning, raw pixels", "about 96%", f"{pixels:.2f}%", "within 1 point",
        abs(pixels - 96.0) <= 1.0, 0.0)


def stacked_rows(workdir, inputs, row) -> None:
    out, t = script("stacked_autoencoder", workdir, "--data", str(inputs.mnist))
    before = number(r"before fine-tuning: ([0-9.]+)%", out)
    after = number(r"after fine-tuning: ([0-9.]+)%", out)
    row("stacked autoencoder, before fine-tuning", "87.7%", f"{before:.2f}%",
        "at least 86.7%", before >= 86.7, t)
    row("stacked autoencoder, after fine-tuning", "97.6%", f"{after:.2f}%",
        "at least 97.6%", after >= 97.6, 0.0)


def cnn_row(workdir, inputs, row) -> None:
    out, t = script("cnn_mnist", workdir, "--data", str(inputs.mnist))
    accuracy = number(r"^test accuracy: ([0-9.]+)%", out)
    row("convolutional network on MNIST, 3 epochs of SGD (filters: cnn_mnist/filters.png)",
        "above 97% (cnnTrain.m; also 'around 97.4%')", f"{accuracy:.2f}%", "above 97%",
        accuracy > 97.0, t)


def sparse_coding_row(workdir, inputs, row) -> None:
    out, t = script("sparse_coding", workdir, "--images", str(inputs.images))
    near = number(r"^topography: neighbours' mean \|cosine\| ([0-9.]+)", out)
    far = number(r"^topography: .* against ([0-9.]+) for the others", out)
    row("topographic sparse coding, 121 bases on 8x8 patches: neighbouring bases alike "
        "(bases: sparse_coding/bases.png)", "edges arranged topographically",
        f"mean |cos| {near:.3f} for neighbours, {far:.3f} for the others",
        "neighbours at least 1.5 times the others", near >= 1.5 * far, t)


def stl_rica_rows(workdir, inputs, row) -> None:
    out, t = script("stl_rica", workdir, "--data", str(inputs.mnist))
    learned = number(r"^test accuracy, RICA filters: ([0-9.]+)%", out)
    random_ = number(r"^test accuracy, random filters: ([0-9.]+)%", out)
    row("convolution and pooling, self-taught: RICA filters on digits 0-4 (filters: "
        "stl_rica/rica_filters.png)", "~99%", f"{learned:.2f}%", "within 1 point",
        abs(learned - 99.0) <= 1.0, t)
    row("convolution and pooling, self-taught: random filters", "97.5%", f"{random_:.2f}%",
        "within 1 point", abs(random_ - 97.5) <= 1.0, 0.0)
    row("convolution and pooling, self-taught: RICA filters against random ones",
        "+1.5 points", f"{learned - random_:+.2f} points", "RICA ahead", learned > random_,
        0.0)


def linear_decoder_row(workdir, inputs, row) -> None:
    out, t = script("linear_decoder_color", workdir)
    spatial = number(r"^spatial features: ([0-9.]+)%", out)
    row("linear decoder on colour patches: features mostly edges or blobs, not flat colour "
        "(features: linear_decoder_color/features_color.png)",
        "mostly oriented edges, some colour blobs", f"{spatial:.0f}% of features",
        "more than 50%", spatial > 50.0, t)


def rica_row(workdir, inputs, row) -> None:
    """The newer tutorial's RICA exercise (runSoftICA.m): localized filters, sparse responses."""
    out, t = script("rica_mnist", workdir, "--data", str(inputs.mnist))
    local = [number(rf"^localization: {side} ([0-9.]+)", out) for side in ("learned",
                                                                           ".*, random")]
    kurt = [number(rf"^kurtosis: {side} ([0-9.]+)", out) for side in ("learned", ".*, random")]
    row("RICA on whitened 9x9 MNIST patches, 50 features, 500 L-BFGS iterations: localized "
        "filters with sparse responses (filters: rica_mnist/filters.png)",
        "pen-stroke pieces (a picture)", f"energy in the best 4x4 block {local[0]:.3f} (random "
        f"start {local[1]:.3f}); held-out kurtosis {kurt[0]:.1f} (random start {kurt[1]:.1f})",
        "both at least 1.5 times the random start's",
        local[0] >= 1.5 * local[1] and kurt[0] >= 1.5 * kurt[1], t)


def stl10_row(workdir, inputs, row) -> None:
    """The older tutorial's convolution and pooling on STL-10, when the user has its files."""
    out, t = script("stl10_convolution", workdir, "--stl", str(inputs.stl))
    ran = not out.startswith("not run:")
    accuracy = number(r"^test accuracy: ([0-9.]+)%", out) if ran else None
    row("convolution and pooling on STL-10's subset: 400 colour features, 19x19 mean pooling, "
        "softmax", "about 80%", f"{accuracy:.2f}%" if ran else out.strip().split(";")[0],
        "within 3 points", abs(accuracy - 80.0) <= 3.0 if ran else None, t)


def ica_row(workdir, inputs, row) -> None:
    """Orthonormal ICA's row: the exercise's colour patches if DIR holds them, else grayscale."""
    colour = inputs.data / "stlSampledPatches.mat"
    out, t = script("ica", workdir, *(["--patches", str(colour)] if colour.exists() else []))
    local = [number(rf"^localization: {side} ([0-9.]+)", out) for side in ("learned",
                                                                           ".*, random")]
    kurt = [number(rf"^kurtosis: {side} ([0-9.]+)", out) for side in ("learned", ".*, random")]
    data = ("colour (stlSampledPatches.mat)" if colour.exists()
            else "grayscale, not the exercise's colour patches")
    row(f"orthonormal ICA on ZCA-whitened 8x8 patches, {data}: localized filters with sparse "
        "responses (filters: ica/filters.png)", "localized oriented edges",
        f"energy in the best 4x4 block {local[0]:.3f} (random {local[1]:.3f}); held-out "
        f"kurtosis {kurt[0]:.1f} (random {kurt[1]:.1f})", "both at least 1.5 times random's",
        local[0] >= 1.5 * local[1] and kurt[0] >= 1.5 * kurt[1], t)


def softmax_on_pixels(mnist) -> float:
    """UFLDL's softmax exercise: lambda 1e-4, 100 L-BFGS iterations, raw pixels."""
    from saejax.data import load_mnist
    from saejax.softmax import accuracy, train_softmax

    x, y = load_mnist(mnist, "train")
    x_test, y_test = load_mnist(mnist, "test")
    theta, _ = train_softmax(x, y, lam=1e-4, steps=100)
    return accuracy(theta, x_test, y_test)


FAST_ROWS = (gradcheck_row, exercise_row, pca_row)
FULL_ROWS = (mnist_row, softmax_row, self_taught_rows, stacked_rows, cnn_row, sparse_coding_row,
             ica_row, stl_rica_rows, linear_decoder_row, rica_row, stl10_row)


if __name__ == "__main__":
    run_script(main)
