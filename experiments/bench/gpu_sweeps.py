"""The sweeps experiments.bench.gpu_check times: the exercise's and MNIST's, their members against
standalone runs, a sweep against a loop, their ticks alone, and the matmul peak their GFLOP/s
are read against."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from experiments.common import matmul_gflops, median_seconds
from saejax import kernel, sweeps, train
from saejax.config import PRESETS, TrainConfig
from saejax.data import training_data
from saejax.losses import Hyper


@dataclass
class Problems:
    """The two problems the checks share, and what one check finds for those after it."""

    quick: bool  # tiny settings: a CPU smoke test
    exercise: TrainConfig  # the UFLDL exercise: 64-25-64 on 10,000 8x8 patches, L-BFGS
    x: np.ndarray  # its patches
    mnist: TrainConfig  # 784-196 on MNIST digits, L-BFGS
    xm: np.ndarray  # its digits
    side: int  # the exercise's grid is side x side members
    mnist_side: int  # the MNIST sweeps' grid is mnist_side x mnist_side
    mnist_chunk: int  # members of an MNIST sweep trained at once
    rows: list = field(default_factory=list)  # the first exercise sweep's rows
    timings: dict = field(default_factory=dict)  # 784-196 evaluation seconds by member_eval
    peak: dict = field(default_factory=dict)  # "value": the matmul peak, GFLOP/s
    tuned: dict = field(default_factory=dict)  # the kernel check's fastest block and warps

    @classmethod
    def load(cls, images, mnist_dir, quick: bool, mnist_side: int, mnist_chunk: int):
        """The exercise on ``images`` (None: the embedded ones) and 784-196 on the digits of
        ``mnist_dir``: 400 and 50 iterations, or 20 and 3 when ``quick``."""
        steps = 20 if quick else 400
        exercise = PRESETS["ufldl-patches"].replace(data=images, steps=steps, steps_per_call=steps)
        steps = 3 if quick else 50
        mnist = PRESETS["mnist"].replace(data=mnist_dir, num_examples=1000 if quick else 10_000,
                                         steps=steps, steps_per_call=steps)
        return cls(quick, exercise, training_data("patches", images)[0], mnist,
                   training_data("mnist", mnist_dir, mnist.num_examples)[0],
                   4 if quick else 32, 2 if quick else mnist_side, mnist_chunk)

    @property
    def sizes(self) -> tuple[int, int, int]:
        """(m, n, h) of the MNIST problem."""
        return self.xm.shape[0], self.xm.shape[1], self.mnist.n_hidden

    def grid(self, side: int | None = None):
        """The exercise's (rho, beta) grid, side x side (default: its own side)."""
        side = self.side if side is None else side
        return np.geomspace(0.005, 0.2, side), np.geomspace(0.1, 10, side)

    def mnist_grid(self, side: int | None = None):
        """The MNIST sweeps' (rho, beta) grid, side x side (default: mnist_side)."""
        side = self.mnist_side if side is None else side
        return np.geomspace(0.02, 0.2, side), np.geomspace(0.3, 10, side)

    def gflops(self, evaluations: float, seconds: float) -> float:
        """GFLOP/s of ``evaluations`` 784-196 member evaluations (10 m n h FLOPs each)."""
        m, n, h = self.sizes
        return 10.0 * m * n * h * evaluations / seconds / 1e9

    def peak_gflops(self) -> float:
        """The matmul peak of the "matmul" check; measured here if that check did not run."""
        if "value" not in self.peak:
            matmul_peak(self)
        return self.peak["value"]

    def of_peak(self, gflops: float) -> str:
        return (f"{gflops:.0f} GFLOP/s = **{100 * gflops / self.peak_gflops():.0f}%** of the "
                f"{self.peak_gflops():.0f} GFLOP/s matmul peak")


def timed_sweep(config, x, rho, beta, chunk):
    """(compile-and-run seconds, run seconds, result): the second call reuses the programs."""
    t0 = time.perf_counter()
    sweeps.sweep(config, x, rho, beta, chunk_size=chunk, progress=True)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = sweeps.sweep(config, x, rho, beta, chunk_size=chunk, progress=False)
    return first, time.perf_counter() - t0, result


def exercise_sweep(p: Problems, how: str) -> str:
    """The exercise's whole sweep with member_eval ``how``; the first one's rows stay in p."""
    members = p.side ** 2
    first, run, res = timed_sweep(p.exercise.replace(member_eval=how), p.x, *p.grid(), members)
    p.rows = p.rows or res.rows
    evals = sum(r["evaluations"] for r in res.rows)
    stops = {}
    for r in res.rows:
        stops[r["stop_reason"]] = stops.get(r["stop_reason"], 0) + 1
    return (f"**{run:.1f} s** (first call, with compilation: {first:.1f} s); {evals} member "
            f"evaluations, {1e3 * run / (evals / members):.1f} ms a tick; stop reasons {stops}")


def member_evals(p: Problems, hows) -> str:
    """One evaluation of every member of a block (1,024 at 64-25, 64 at 784-196) with each
    member_eval in ``hows``; the 784-196 times stay in p.timings."""
    out = []
    for name, config, data, g in (("64-25", p.exercise, p.x, 4 if p.quick else 1024),
                                  ("784-196", p.mnist, p.xm, 4 if p.quick else 64)):
        states = jax.vmap(lambda s, c=config, d=data: train.init_state(c, d.shape[1], seed=s))(
            jnp.arange(g))
        hyper = Hyper(jnp.full(g, 0.1), jnp.full(g, 3.0), jnp.full(g, config.lam))
        data = jnp.asarray(data, jnp.float32)
        flops = 10.0 * data.shape[0] * data.shape[1] * config.n_hidden * g
        for how in hows:
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
                p.timings[how] = t
            out.append(f"{name} x {g} {how}: {1e3 * t:.2f} ms ({flops / t / 1e9:.0f} GFLOP/s)")
    return "; ".join(out)


def members_vs_standalone(p: Problems) -> str:
    """The first and last members of the first exercise sweep against standalone runs."""
    out = []
    for r in (p.rows[0], p.rows[-1]):
        s = train.run(p.exercise.replace(rho=float(r["rho"]), beta=float(r["beta"])), p.x,
                      progress=False).summary
        out.append(f"rho {r['rho']:.3g} beta {r['beta']:.3g}: J {r['final_loss']:.5f} "
                   f"({r['stop_reason']}, {r['iterations']} it.) vs standalone "
                   f"{s['final_loss']:.5f} ({s['stop_reason']}, {s['iterations']} it.)")
    return "; ".join(out)


def sweep_against_loop(p: Problems) -> str:
    """The 4 x 4 grid (2 x 2 when quick) as one sweep against a loop of its standalone runs,
    both compiled beforehand, and the members' final J against the standalone runs'."""
    grid_rho, grid_beta = [0.005, 0.01, 0.03, 0.1], [0.3, 1.0, 3.0, 10.0]
    if p.quick:
        grid_rho, grid_beta = grid_rho[:2], grid_beta[:2]
    n_members = len(grid_rho) * len(grid_beta)
    _, swept, res = timed_sweep(p.exercise, p.x, grid_rho, grid_beta, n_members)
    train.run(p.exercise, p.x, progress=False)  # compiles the standalone program
    t0 = time.perf_counter()
    alone = [train.run(p.exercise.replace(rho=float(r), beta=float(b)), p.x, progress=False)
             for r in grid_rho for b in grid_beta]
    loop = time.perf_counter() - t0
    diffs = [abs(row["final_loss"] - a.summary["final_loss"]) / abs(a.summary["final_loss"])
             for row, a in zip(res.rows, alone, strict=True)]
    worst = int(np.argmax(diffs))
    return (f"sweep {swept:.2f} s / loop {loop:.2f} s = **{swept / loop:.2f}x**; members vs "
            f"standalone: largest rel. diff of final J {100 * diffs[worst]:.3f}% (rho "
            f"{res.rows[worst]['rho']:.3g}, beta {res.rows[worst]['beta']:.3g}), "
            f"{sum(d <= 1e-3 for d in diffs)} of {n_members} within 0.1%")


def matmul_peak(p: Problems) -> str:
    """The matmul peak, left in p.peak: the best of a square float32 matmul and the 784-196
    step's three shapes."""
    m, n, h = p.sizes
    shapes = [(2048,) * 3 if p.quick else (4096,) * 3, (m, n, h), (m, h, n), (h, m, n)]
    rates = {s: matmul_gflops(*s) for s in shapes}
    p.peak["value"] = max(rates.values())
    return ", ".join(f"{'x'.join(map(str, s))}: {g:.0f} GFLOP/s" for s, g in rates.items())


def fastest_member_eval(p: Problems) -> str:
    """The member evaluation the evals check found fastest at 784-196 (else the config's rule)."""
    return min(p.timings, key=p.timings.get) if p.timings else "auto"


def mnist_sweep(p: Problems, config) -> str:
    """The MNIST sweep with ``config``, in GFLOP/s against the matmul peak."""
    first, run, res = timed_sweep(config, p.xm, *p.mnist_grid(),
                                  min(p.mnist_chunk, p.mnist_side ** 2))
    gflops = p.gflops(sum(r["evaluations"] for r in res.rows), run)
    return (f"{run:.1f} s (first call {first:.1f} s); {p.of_peak(gflops)}; mean final J "
            f"{np.mean([r['final_loss'] for r in res.rows]):.5f}")


def adam_config(p: Problems):
    """Full-batch Adam on the MNIST problem: no L-BFGS memory, one evaluation a step."""
    steps = 5 if p.quick else 100
    return p.mnist.replace(optimizer="adam", lr=1e-3, batch_size=None, steps=steps,
                           steps_per_call=steps)


def mnist_adam_sweep(p: Problems) -> str:
    adam = adam_config(p)
    first, run, res = timed_sweep(adam, p.xm, *p.mnist_grid(), p.mnist_side ** 2)
    return (f"{run:.1f} s (first call {first:.1f} s); "
            f"{p.of_peak(p.gflops(adam.steps * len(res.rows), run))}")


def one_step(config, data) -> str:
    """One value-and-gradient evaluation of one member, in ms and GFLOP/s."""
    evaluate = jax.jit(train.make_evaluate(config))
    params = train.init_state(config, data.shape[1], seed=0).params
    x = jnp.asarray(data, jnp.float32)
    hyper = Hyper(config.rho, config.beta, config.lam)
    t = median_seconds(lambda: jax.block_until_ready(evaluate(params, x, hyper)), 21, warmup=3)
    flops = 10.0 * data.shape[0] * data.shape[1] * config.n_hidden
    return f"{1e3 * t:.3f} ms, {flops / t / 1e9:.0f} GFLOP/s"


def steady_state(p: Problems) -> str:
    """Sweeps at two lengths, so that the difference is the ticks alone: the seconds a sweep
    pays once (initial states, final statistics, results to the host) drop out. At 784-196:
    64 members, 100 pairs (as they are and in bfloat16) and 10, 50 and 150 iterations; the
    exercise at 200 and 400, its pairs as they are and in bfloat16. With --quick one memory
    each, so that both code paths run: 10 pairs in bfloat16 at 784-196, the exercise's as
    they are."""
    m, n, h = p.sizes
    side, mside = (4, 2) if p.quick else (32, 8)
    # minFunc's 100 pairs, the same kept in bfloat16 (half the bytes a tick reads), and 10;
    # with --quick one memory per network, the two kinds between them
    memories = ((10, "bfloat16"),) if p.quick else ((100, "same"), (100, "bfloat16"), (10, "same"))
    exercise_kept = ("same",) if p.quick else ("same", "bfloat16")
    out = []

    def two_lengths(config, data, grid, lengths):
        (s0, e0, _), (s1, e1, j1) = [_length(config.replace(steps=k, steps_per_call=k), data,
                                             grid) for k in lengths]
        return s0, s1, (s1 - s0) / (e1 - e0), j1  # seconds per member evaluation, all members

    for pairs, kept in memories:
        config = p.mnist.replace(member_eval="whole", lbfgs_memory=pairs,
                                 lbfgs_memory_dtype=kept)
        lengths = (3, 6) if p.quick else (50, 150)
        s0, s1, per_eval, j1 = two_lengths(config, p.xm, p.mnist_grid(mside), lengths)
        memory = f"{pairs} pairs" + (" in bfloat16" if kept == "bfloat16" else "")
        out.append(f"{n}-{h}, {mside ** 2} members, {memory}: {lengths[0]} it. {s0:.2f} s, "
                   f"{lengths[1]} it. {s1:.2f} s (mean J {j1:.4f}); the ticks alone "
                   f"**{100 * p.gflops(1, per_eval) / p.peak_gflops():.0f}%** of peak")
        print("   " + out[-1], flush=True)
    lengths = (10, 20) if p.quick else (200, 400)
    for kept in exercise_kept:
        config = p.exercise.replace(member_eval="whole", lbfgs_memory_dtype=kept)
        s0, s1, per_eval, j1 = two_lengths(config, p.x, p.grid(side), lengths)
        out.append(f"exercise, {side ** 2} members, pairs in {kept}: {lengths[0]} it. {s0:.2f} "
                   f"s, {lengths[1]} it. {s1:.2f} s (mean J {j1:.5f}); the ticks alone "
                   f"{1e3 * per_eval * side ** 2:.1f} ms a tick")
    return "; ".join(out)


def _length(config, data, grid):
    """(seconds of a sweep after compilation, member evaluations of all members, their mean
    final J)."""
    _, run, res = timed_sweep(config, data, *grid, len(grid[0]) * len(grid[1]))
    return (run, sum(r["evaluations"] for r in res.rows),
            float(np.mean([r["final_loss"] for r in res.rows])))


def memory_passes(p: Problems) -> str:
    """saejax.optim.lbfgs's two ways through the memory S, Y ("dot" and "reduce"), each set as
    this platform's and timed alone (the passes of one tick, vmapped over members) and in whole
    sweeps: the exercise's 1,024 members and 64 members at 784-196."""
    from saejax.optim import lbfgs
    from saejax.runtime.compile_cache import clear_program_cache

    platform, saved = jax.default_backend(), dict(lbfgs.MEMORY_PASSES)
    shapes = ((4, 3289, 100), (2, 20000, 10)) if p.quick else \
        ((1024, 3289, 100), (64, 308308, 100), (128, 308308, 10))
    mgrid = p.mnist_grid(2 if p.quick else 8)
    m, n, h = p.sizes
    out = []
    try:
        for how in ("dot", "reduce"):
            lbfgs.MEMORY_PASSES[platform] = how
            clear_program_cache()
            for g, size, pairs in shapes:
                keys = jax.random.split(jax.random.key(0), 6)
                S, Y = (jax.random.normal(keys[i], (g, pairs, size)) for i in (0, 1))
                u, v, w = (jax.random.normal(keys[i], (g, size)) for i in (2, 3, 4))
                c = jax.random.normal(keys[5], (g, pairs))
                passes = jax.jit(jax.vmap(lambda S, Y, u, v, w, c: (
                    lbfgs._dots(S, u, w), lbfgs._dots(Y, u, v, w),
                    u + lbfgs._combination(c, S) - lbfgs._combination(c, Y))))
                t = median_seconds(lambda f=passes, a=(S, Y, u, v, w, c):
                                   jax.block_until_ready(f(*a)), 11, warmup=2)
                gb = 4 * S.size * S.dtype.itemsize / 1e9
                out.append(f"{how}: {g} x {pairs} pairs x P {size}: {1e3 * t:.2f} ms "
                           f"({gb / t:,.0f} GB/s of S and Y read twice)")
                del S, Y
            _, run, res = timed_sweep(p.exercise.replace(member_eval="whole"), p.x, *p.grid(),
                                      p.side ** 2)
            out.append(f"{how}: exercise sweep {p.side ** 2} members **{run:.1f} s**")
            config = p.mnist.replace(member_eval="whole")
            _, run, res = timed_sweep(config, p.xm, *mgrid, len(mgrid[0]) ** 2)
            rate = p.gflops(sum(r["evaluations"] for r in res.rows), run)
            out.append(f"{how}: {n}-{h} sweep {len(res.rows)} members {config.steps} it. "
                       f"{run:.1f} s, **{100 * rate / p.peak_gflops():.0f}%** of peak, mean J "
                       f"{np.mean([r['final_loss'] for r in res.rows]):.5f}")
            print("   " + "; ".join(out[-len(shapes) - 2:]), flush=True)
    finally:
        lbfgs.MEMORY_PASSES.clear()
        lbfgs.MEMORY_PASSES.update(saved)
        clear_program_cache()
    return "; ".join(out)
