"""The kernel's registers and spills on a Hopper GPU, read without one: saejax.kernel lowered for
CUDA on the CPU, each of its Triton programs compiled for sm_90a by the triton package, ptxas's
report read back.

Command:   .venv/bin/python -m experiments.bench.kernel_registers [--sizes 64-25 64-64 ...]
           [--blocks 16 32 64] [--warps 4 8 16] [--dtype float32] [--out DIR]
Needs:     the triton package (pip install -e '.[triton]', about 1 GB installed); no GPU.
Run time:  about 3 minutes on 2 CPU cores for the default grid (one ptxas run per program).
Expected:  kernel_registers.md and .json in --out (default experiments/results): for each
           network size, block of examples and warp count, each kernel's registers per thread,
           spill bytes and shared memory. The default launch (kernel.BLOCK rows, kernel.NUM_WARPS
           warps) spills nothing in float32 at any size the kernel accepts.

On a GPU, XLA compiles the same Triton program with jaxlib's own build of Triton and the
machine's ptxas: its counts may differ from these by a few registers.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import tempfile
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp

from experiments.common import add_out_argument, measured_at, results_dir, save_results
from saejax import kernel
from saejax.losses import Hyper

# Every padded shape the kernel accepts at its weight limit, and the UFLDL exercise's.
SIZES = ["64-25", "16-256", "32-128", "64-64", "128-32", "256-16"]


def triton_programs(n: int, h: int, dtype="float32", block: int | None = None,
                    members: int = 1024, m: int = 10_000) -> dict[str, str]:
    """The Triton programs (TTIR text) of ``kernel.kernel_terms_and_grad`` for ``members``
    n-h networks on m examples, as lowered for CUDA: {"sums": ..., "grads": ...}."""
    from jax._src.pallas.triton import pallas_call_registration as registration

    texts = []
    lower = registration.lowering.lower_jaxpr_to_triton_module

    def capture(*args, **kw):
        result = lower(*args, **kw)
        texts.append(result.module.operation.get_asm())
        return result

    S, f = jax.ShapeDtypeStruct, jnp.dtype(dtype)
    params = {"W1": S((members, h, n), f), "b1": S((members, h), f),
              "W2": S((members, n, h), f), "b2": S((members, n), f)}
    hyper = Hyper(*(S((members,), f),) * 3)
    registration.lowering.lower_jaxpr_to_triton_module = capture
    try:
        jax.jit(partial(kernel.kernel_terms_and_grad, interpret=False, block=block)).trace(
            params, S((m, n), f), hyper).lower(lowering_platforms=("cuda",))
    finally:
        registration.lowering.lower_jaxpr_to_triton_module = lower
    return dict(zip(("sums", "grads"), texts, strict=True))


def ptxas_usage(ttir: str, num_warps: int, capability: int = 90) -> dict:
    """One Triton program compiled for sm_<capability> with ``num_warps`` warps: registers per
    thread, spill stores and loads (bytes per thread) and shared memory (bytes), as ptxas -v
    reports them."""
    import triton
    from triton import knobs
    from triton.backends.compiler import GPUTarget

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "kernel.ttir"
        path.write_text(ttir)
        log = io.StringIO()
        with knobs.nvidia.scope(), knobs.compilation.scope(), contextlib.redirect_stdout(log):
            knobs.nvidia.dump_ptxas_log = True
            knobs.compilation.always_compile = True  # past Triton's cache: ptxas reports anew
            compiled = triton.compile(str(path), target=GPUTarget("cuda", capability, 32),
                                      options={"num_warps": num_warps, "num_stages": 3,
                                               "enable_fp_fusion": True})
    report = log.getvalue()
    stores, loads = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads",
                              report).groups()
    return {"registers": int(re.search(r"Used (\d+) registers", report).group(1)),
            "spill_stores": int(stores), "spill_loads": int(loads),
            "shared": int(compiled.metadata.shared)}


def usage_grid(sizes, blocks, warps, dtype="float32"):
    """Rows of ptxas_usage for every size ("N-H"), block and warp count, both kernels."""
    rows = []
    for size in sizes:
        n, h = map(int, size.split("-"))
        for block in blocks:
            programs = triton_programs(n, h, dtype, block)
            for w in warps:
                for name, ttir in programs.items():
                    row = {"size": size, "dtype": dtype, "block": block, "warps": w,
                           "kernel": name, **ptxas_usage(ttir, w)}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    return rows


def table(rows) -> str:
    lines = ["| N-H | block | warps | grads: registers, spilled bytes, shared KiB | "
             "sums: registers, spilled bytes |", "|---|---|---|---|---|"]
    by = {(r["size"], r["block"], r["warps"], r["kernel"]): r for r in rows}
    for (size, block, warps, name), r in by.items():
        if name != "grads":
            continue
        s = by[size, block, warps, "sums"]
        default = " (default)" if (block, warps) == (kernel.BLOCK, kernel.NUM_WARPS) else ""
        lines.append(f"| {size} | {block}{default} | {warps} | {r['registers']}, "
                     f"{r['spill_stores']}, {r['shared'] // 1024} | {s['registers']}, "
                     f"{s['spill_stores']} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=SIZES)
    parser.add_argument("--blocks", nargs="+", type=int, default=[16, 32, 64])
    parser.add_argument("--warps", nargs="+", type=int, default=[4, 8])
    parser.add_argument("--dtype", default="float32")
    add_out_argument(parser)
    args = parser.parse_args(argv)
    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    rows = usage_grid(args.sizes, args.blocks, args.warps, args.dtype)
    import triton

    header = (f"saejax.kernel's Triton programs for sm_90a, 1,024 members on 10,000 examples, "
              f"{args.dtype}; triton {triton.__version__}, jax {jax.__version__}. Registers per "
              f"thread (255 at most), spilled bytes per thread, shared memory per program.")
    save_results(results_dir(args.out), "kernel_registers", {"measured": measured_at(),
                 "triton": triton.__version__, "rows": rows}, header + "\n\n" + table(rows) + "\n")


if __name__ == "__main__":
    main()
