"""A byte-level BPE tokenizer built from a GGUF file's vocabulary and merges with Hugging Face
``tokenizers``; the pre-tokenizer splits text as llama.cpp does for the file's ``pre`` type."""

from __future__ import annotations

from pathlib import Path

from saejax.data.errors import DataError

# The regular expressions llama.cpp (src/llama-vocab.cpp) applies before the merges, by the
# file's tokenizer.ggml.pre. SmolLM's vocabulary was trained with each digit its own piece.
GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
          r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
SPLITS = {
    "default": (GPT2,), "gpt2": (GPT2,),
    "smollm": (r"\p{N}", GPT2), "starcoder": (r"\p{N}", GPT2), "refact": (r"\p{N}", GPT2),
    "llama3": (LLAMA3,), "llama-v3": (LLAMA3,), "llama-bpe": (LLAMA3,),
}
CONTROL = 3  # tokenizer.ggml.token_type of a control (special) token


def from_gguf_fields(fields: dict, path: Path | str = "the file"):
    """A ``tokenizers.Tokenizer`` from ``gguf_file.tokenizer_fields``.

    It adds no BOS token itself: ``saejax.activations`` puts the BOS first in every context.
    Control tokens (such as ``<|im_start|>``) are special tokens, matched whole in text.

    Raises:
      DataError: a tokenizer model other than byte-level BPE, or a pre-tokenizer type this
        module has no split for (both named).
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

    if fields["model"] != "gpt2":
        raise DataError(f"{path}: tokenizer model {fields['model']!r}; saejax builds byte-level "
                        "BPE tokenizers ('gpt2' in the file), as SmolLM2 and Llama 3 use.")
    pre = fields["pre"] or "default"
    if pre not in SPLITS:
        raise DataError(f"{path}: pre-tokenizer {pre!r} is not one saejax knows; known: "
                        f"{', '.join(sorted(SPLITS))}.")
    vocab = {token: i for i, token in enumerate(fields["tokens"])}
    merges = [tuple(m.split(" ", 1)) for m in fields["merges"]]
    tokenizer = Tokenizer(models.BPE(vocab, merges, fuse_unk=False, ignore_merges=pre.startswith(
        "llama")))
    splits = [pre_tokenizers.Split(Regex(r), behavior="isolated") for r in SPLITS[pre]]
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [*splits, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tokenizer.decoder = decoders.ByteLevel()
    types = fields["token_type"] or [1] * len(fields["tokens"])  # none stated: all normal
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False)
                                  for t, kind in zip(fields["tokens"], types, strict=True) if kind == CONTROL])
    return tokenizer
