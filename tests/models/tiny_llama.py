"""A tiny random Llama written as a GGUF file the way llama.cpp's converter writes one, and the
forward pass written again in NumPy in transformers' layout (half-split rotary, unpermuted query
and key rows): the independent truth that saejax's JAX forward is checked against."""

from __future__ import annotations

import numpy as np

D, F, H, KV, LAYERS, BASE, EPS = 16, 24, 4, 2, 3, 10000.0, 1e-5
E = D // H
CONTROL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def byte_alphabet() -> list[str]:
    """GPT-2's printable spelling of the 256 bytes (as byte-level vocabularies store them)."""
    keep = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    spelled, n = dict(zip(keep, keep)), 0
    for b in range(256):
        if b not in spelled:
            spelled[b] = 256 + n
            n += 1
    return [chr(spelled[b]) for b in range(256)]


def vocabulary():
    """(tokens, token types, merges): control tokens, every byte, and a few merges."""
    merges = ["Ġ t", "h e", "Ġt he", "i n", "1 2"]
    merged = [m.replace(" ", "") for m in merges]
    tokens = CONTROL + byte_alphabet() + merged
    types = [3] * len(CONTROL) + [1] * (len(tokens) - len(CONTROL))
    return tokens, types, merges


def random_weights(seed=0, tied=True):
    """Weights in transformers' layout, float32: {'embed', 'norm', 'unembed'?, 'blocks': [...]}"""
    rng = np.random.default_rng(seed)
    vocab = len(vocabulary()[0])

    def w(*shape, scale=0.3):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    blocks = [{"attn_norm": 1 + w(D, scale=0.1), "attn_q": w(H * E, D), "attn_k": w(KV * E, D),
               "attn_v": w(KV * E, D), "attn_output": w(D, H * E),
               "ffn_norm": 1 + w(D, scale=0.1), "ffn_gate": w(F, D), "ffn_up": w(F, D),
               "ffn_down": w(D, F)} for _ in range(LAYERS)]
    weights = {"embed": w(vocab, D, scale=1.0), "norm": 1 + w(D, scale=0.1), "blocks": blocks}
    if not tied:
        weights["unembed"] = w(vocab, D)
    return weights


def to_adjacent_pairs(w, n_heads):
    """llama.cpp's converter permutation (convert_hf_to_gguf.py, LlamaModel.permute)."""
    return (w.reshape(n_heads, 2, w.shape[0] // n_heads // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def write_gguf(path, weights, arch="llama", pre="smollm", quant_embed=None, rope_freqs=None):
    """Writes ``weights`` (transformers' layout) as a GGUF file; returns the path."""
    import gguf

    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_name("tiny")
    writer.add_block_count(LAYERS)
    writer.add_context_length(64)
    writer.add_embedding_length(D)
    writer.add_feed_forward_length(F)
    writer.add_head_count(H)
    writer.add_head_count_kv(KV)
    writer.add_rope_freq_base(BASE)
    writer.add_layer_norm_rms_eps(EPS)
    writer.add_rope_dimension_count(E)
    tokens, types, merges = vocabulary()
    writer.add_vocab_size(len(tokens))
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    if quant_embed is None:
        writer.add_tensor("token_embd.weight", weights["embed"])
    else:
        writer.add_tensor("token_embd.weight", *quant_embed)
    writer.add_tensor("output_norm.weight", weights["norm"])
    if rope_freqs is not None:  # as llama.cpp writes Llama 3.1's scaled frequencies
        writer.add_tensor("rope_freqs.weight", np.asarray(rope_freqs, np.float32))
    if "unembed" in weights:
        writer.add_tensor("output.weight", weights["unembed"])
    for i, b in enumerate(weights["blocks"]):
        for name, value in b.items():
            if name == "attn_q":
                value = to_adjacent_pairs(value, H)
            elif name == "attn_k":
                value = to_adjacent_pairs(value, KV)
            writer.add_tensor(f"blk.{i}.{name}.weight", value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def rms(x, w, eps=EPS):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def rope_half_split(x, positions, base=BASE, factors=None):
    """transformers' rotate_half rotary: dimension i pairs with i + E/2; each frequency divided
    by its factor when given."""
    e = x.shape[-1]
    inv = base ** (-np.arange(0, e, 2, dtype=np.float64) / e)
    if factors is not None:
        inv = inv / np.asarray(factors, np.float64)
    angle = positions[:, None] * inv  # (T, E/2)
    cos = np.concatenate([np.cos(angle)] * 2, -1)[None, :, None, :]
    sin = np.concatenate([np.sin(angle)] * 2, -1)[None, :, None, :]
    half = x.shape[-1] // 2
    rotated = np.concatenate([-x[..., half:], x[..., :half]], -1)
    return x * cos + rotated * sin


def reference(weights, tokens, shape=(D, H, KV, BASE, EPS), layers=None, replace=None,
              factors=None):
    """float64 NumPy forward, in transformers' layout: (every block's resid_post, every block's
    sites, logits). ``shape`` is (d_model, heads, kv heads, rope base, rms eps); ``layers``
    stops after that many blocks (logits None); ``replace`` = (layer, site, fn) puts
    fn(value) in place of that site's value."""
    def put(i, site, value):
        return replace[2](value) if replace and replace[:2] == (i, site) else value

    D, H, KV, BASE, EPS = shape  # noqa: N806 (the tiny model's names, overridden)
    E = D // H  # noqa: N806
    x = weights["embed"].astype(np.float64)[tokens]
    b, t, _ = x.shape
    pos = np.arange(t, dtype=np.float64)
    posts, sites = [], []
    for i, blk in enumerate(weights["blocks"][:layers]):
        blk = {k: v.astype(np.float64) for k, v in blk.items()}
        x = put(i, "resid_pre", x)
        h = rms(x, blk["attn_norm"], EPS)
        q = rope_half_split((h @ blk["attn_q"].T).reshape(b, t, H, E), pos, BASE, factors)
        k = rope_half_split((h @ blk["attn_k"].T).reshape(b, t, KV, E), pos, BASE, factors)
        v = (h @ blk["attn_v"].T).reshape(b, t, KV, E)
        k, v = np.repeat(k, H // KV, axis=2), np.repeat(v, H // KV, axis=2)
        s = np.einsum("bqhe,bshe->bhqs", q, k) / np.sqrt(E)
        s = np.where(np.tril(np.ones((t, t), bool)), s, -np.inf)
        p = np.exp(s - s.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        attn = put(i, "attn_out",
                   np.einsum("bhqs,bshe->bqhe", p, v).reshape(b, t, D) @ blk["attn_output"].T)
        mid = x + attn
        mlp_in = put(i, "mlp_in", rms(mid, blk["ffn_norm"], EPS))
        gate = mlp_in @ blk["ffn_gate"].T
        mlp_out = put(i, "mlp_out", ((gate / (1 + np.exp(-gate))) * (mlp_in @ blk["ffn_up"].T))
                      @ blk["ffn_down"].T)
        post = put(i, "resid_post", mid + mlp_out)
        sites.append({"resid_pre": x, "attn_out": attn, "mlp_in": mlp_in, "mlp_out": mlp_out,
                      "resid_post": post})
        x = post
        posts.append(x)
    if layers is not None:
        return posts, sites, None
    unembed = weights.get("unembed", weights["embed"]).astype(np.float64)
    return posts, sites, rms(x, weights["norm"].astype(np.float64), EPS) @ unembed.T
