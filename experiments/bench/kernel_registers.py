"""The kernel's registers and spills on an H100, read without one: saejax.kernel compiled by XLA
for a compile-only H100 (jax's CUDA plugin, no GPU or driver needed), its PTX read by ptxas.

Command:   JAX_PLATFORMS=cpu python -m experiments.bench.kernel_registers
           [--sizes 64-25 64-64 ...] [--blocks 16 32 64] [--warps 4 8] [--dtype float32]
           [--out DIR]
Needs:     jax's CUDA plugin and ptxas beside saejax, and JAX_PLATFORMS=cpu
           (experiments/bench/gpu_compile.py says how); no GPU.
Run time:  about a minute on 2 CPU cores for the default grid.
Expected:  kernel_registers.md and .json in --out (default experiments/results;
           kernel_registers_float64 with --dtype float64): for each
           network size, block of examples and warp count, each of the kernel's two programs'
           registers per thread and spilled bytes, as ptxas reports them for the PTX that XLA
           (jaxlib's own Triton) generates for sm_90a. The default launch (kernel.BLOCK rows,
           kernel.NUM_WARPS warps) spills nothing in float32 at any size the kernel accepts;
           256-16, past its limits, spills at every launch.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import tempfile
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp

from experiments.bench.gpu_compile import h100, ptxas
from experiments.common import (
    add_out_argument,
    count,
    measured_at,
    results_dir,
    run_script,
    save_results,
)
from saejax import kernel
from saejax.losses import Hyper

# The UFLDL exercise's size, every padded shape at the kernel's limits, and one past them.
SIZES = ["64-25", "16-256", "32-128", "64-64", "128-32", "256-16"]
PROGRAMS = ("_sums_kernel", "_grads_kernel")


def kernel_ptx(device, n: int, h: int, dtype="float32", block: int | None = None,
               num_warps: int | None = None, members: int = 1024,
               m: int = 10_000) -> dict[str, str]:
    """The PTX XLA generates for the kernel's two programs, for ``members`` n-h networks on
    m examples: {"_sums_kernel": ptx, "_grads_kernel": ptx}."""
    S = partial(jax.ShapeDtypeStruct, dtype=jnp.dtype(dtype),
                sharding=jax.sharding.SingleDeviceSharding(device))
    params = {"W1": S((members, h, n)), "b1": S((members, h)), "W2": S((members, n, h)),
              "b2": S((members, n))}
    evaluate = partial(kernel.kernel_terms_and_grad, interpret=False, block=block,
                       num_warps=num_warps)
    with tempfile.TemporaryDirectory() as dump:
        jax.jit(evaluate).trace(params, S((m, n)), Hyper(*(S((members,)),) * 3)).lower(
            ).compile(compiler_options={"xla_dump_to": dump})
        found = {}
        for path in Path(dump).glob("*.ptx"):
            text = path.read_text()
            for name in PROGRAMS:
                if f".entry {name}(" in text:
                    found[name] = text
    return found


def ptxas_usage(ptx: str) -> dict:
    """Registers per thread, and spill stores and loads (bytes per thread), as ptxas -v reports
    them for sm_90a."""
    with tempfile.NamedTemporaryFile("w", suffix=".ptx") as source:
        source.write(ptx)
        source.flush()
        report = subprocess.run([str(ptxas()), "-arch=sm_90a", "-v", source.name, "-o",
                                 "/dev/null"], capture_output=True, text=True, check=True).stderr
    stores, loads = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads",
                              report).groups()
    return {"registers": int(re.search(r"Used (\d+) registers", report).group(1)),
            "spill_stores": int(stores), "spill_loads": int(loads)}


def usage_grid(sizes, blocks, warps, dtype="float32"):
    """Rows of ptxas_usage for every size ("N-H"), block and warp count, both programs. Sizes
    past the kernel's limits (``accepted`` false) are compiled too, to show why."""
    device, rows = h100(), []
    limits = kernel.MAX_PADDED_WEIGHT_BYTES, kernel.MAX_PADDED_INPUTS
    for size in sizes:
        n, h = map(int, size.split("-"))
        for block in blocks:
            for w in warps:
                launch = {"size": size, "dtype": dtype, "block": block, "warps": w,
                          "accepted": kernel.fits(n, h, dtype)}
                kernel.MAX_PADDED_WEIGHT_BYTES, kernel.MAX_PADDED_INPUTS = 2**30, 2**30
                try:
                    usage = {name: ptxas_usage(ptx)
                             for name, ptx in kernel_ptx(device, n, h, dtype, block, w).items()}
                except jax.errors.JaxRuntimeError as error:  # a launch the card cannot run
                    usage = {name: {"error": str(error).splitlines()[0]} for name in PROGRAMS}
                finally:
                    kernel.MAX_PADDED_WEIGHT_BYTES, kernel.MAX_PADDED_INPUTS = limits
                for name, program in usage.items():
                    row = {**launch, "program": name.strip("_"), **program}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    return rows


def table(rows) -> str:
    lines = ["| N-H | block | warps | grads: registers, spilled bytes | sums: registers, "
             "spilled bytes |", "|---|---|---|---|---|"]
    by = {(r["size"], r["block"], r["warps"], r["program"]): r for r in rows}
    for (size, block, warps, name), r in by.items():
        if name != "grads_kernel":
            continue
        s = by[size, block, warps, "sums_kernel"]
        default = " (default)" if (block, warps) == (kernel.BLOCK, kernel.NUM_WARPS) else ""
        cells = [x.get("error") or f"{x['registers']}, {x['spill_stores']}" for x in (r, s)]
        past = "" if r["accepted"] else " (refused)"
        lines.append(f"| {size}{past} | {block}{default} | {warps} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=SIZES)
    parser.add_argument("--blocks", nargs="+", type=count("blocks"), default=[16, 32, 64])
    parser.add_argument("--warps", nargs="+", type=count("warps"), default=[4, 8])
    parser.add_argument("--dtype", default="float32")
    add_out_argument(parser)
    args = parser.parse_args(argv)
    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    rows = usage_grid(args.sizes, args.blocks, args.warps, args.dtype)
    version = subprocess.run([str(ptxas()), "--version"], capture_output=True,
                             text=True).stdout.strip().splitlines()[-1]
    header = (f"saejax.kernel compiled by XLA for a compile-only H100 (sm_90a), 1,024 members "
              f"on 10,000 examples, {args.dtype}; jax {jax.__version__}, ptxas {version}. "
              f"Registers per thread (255 at most) and spilled bytes per thread, per program.")
    name = "kernel_registers" + ("" if args.dtype == "float32" else f"_{args.dtype}")
    save_results(results_dir(args.out), name,
                 {"measured": measured_at(), "ptxas": version, "rows": rows},
                 header + "\n\n" + table(rows) + "\n")
    return rows


if __name__ == "__main__":
    run_script(main)
