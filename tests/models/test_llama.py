"""The JAX Llama forward pass against a NumPy one written in transformers' layout, on a tiny random
model written as a GGUF file the way llama.cpp's converter writes one."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from models import tiny_llama as tiny

from saejax.data.errors import DataError
from saejax.models import llama

TOKENS = np.random.default_rng(1).integers(0, len(tiny.vocabulary()[0]), size=(2, 7))


# untied (other Llama files) in the whole suite; SmolLM2's tied embeddings in the fast tier too
@pytest.fixture(scope="module", params=[True, pytest.param(False, marks=pytest.mark.slow)],
                ids=["tied", "untied"])
def tiny_model(request, tmp_path_factory):
    weights = tiny.random_weights(seed=3, tied=request.param)
    path = tiny.write_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf", weights)
    return weights, llama.load(path)


def rel(a, b):
    return float(np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b))


def test_config_is_what_the_file_states(tiny_model):
    weights, model = tiny_model
    c = model.config
    assert (c.n_layers, c.d_model, c.d_ff, c.n_heads, c.n_kv_heads, c.head_dim) == (
        tiny.LAYERS, tiny.D, tiny.F, tiny.H, tiny.KV, tiny.E)
    assert c.tied == ("unembed" not in weights) and c.rope_base == tiny.BASE
    assert model.bos_id == 1 and model.name == "tiny"


def test_every_block_and_the_logits_equal_numpy(tiny_model):
    weights, model = tiny_model
    posts, _, logits_np = tiny.reference(weights, TOKENS)
    ours = llama.hidden_states(model.params, TOKENS, model.config)
    for i, (a, b) in enumerate(zip(ours, posts)):
        assert rel(a, b) < 1e-5, f"block {i}"
    assert rel(llama.logits(model.params, TOKENS, model.config), logits_np) < 1e-5


@pytest.mark.parametrize("site", llama.SITES)
@pytest.mark.parametrize("layer", [0, tiny.LAYERS - 1])
def test_each_site_of_each_block_equals_numpy(tiny_model, site, layer):
    weights, model = tiny_model
    _, sites, _ = tiny.reference(weights, TOKENS)
    got = llama.activations(model.params, TOKENS, model.config, layer, site)
    assert got.shape == (*TOKENS.shape, tiny.D) and got.dtype == jnp.float32
    assert rel(got, sites[layer][site]) < 1e-5


def _zero(value, _):
    return jnp.zeros_like(value)


def _identity(value, _):
    return value


def _add(value, delta):
    return value + delta


def test_a_replaced_site_changes_only_what_follows(tiny_model):
    weights, model = tiny_model
    p, c = model.params, model.config
    clean = llama.logits(p, TOKENS, c)
    same = llama.logits(p, TOKENS, c, 1, "mlp_out", _identity, None)
    np.testing.assert_allclose(same, clean, rtol=1e-5, atol=1e-5)
    # zeroing block 1's MLP output: the NumPy model with that MLP's down projection zeroed
    ablated = {**weights, "blocks": [dict(b) for b in weights["blocks"]]}
    ablated["blocks"][1]["ffn_down"] = np.zeros_like(ablated["blocks"][1]["ffn_down"])
    want = tiny.reference(ablated, TOKENS)[2]
    assert rel(llama.logits(p, TOKENS, c, 1, "mlp_out", _zero, None), want) < 1e-5
    # replace_args is traced: a new value reuses the compiled program and changes the result
    a = llama.logits(p, TOKENS, c, 0, "resid_post", _add, jnp.float32(0.5))
    b = llama.logits(p, TOKENS, c, 0, "resid_post", _add, jnp.float32(-0.5))
    assert not np.allclose(a, b)


def test_scaled_rotary_frequencies_follow_the_files_factors(tmp_path):
    weights = tiny.random_weights(seed=4)
    factors = np.array([1.0, 8.0])  # Llama 3.1 style: the low frequency slowed eightfold
    model = llama.load(tiny.write_gguf(tmp_path / "s.gguf", weights, rope_freqs=factors))
    posts, _, want = tiny.reference(weights, TOKENS, factors=factors)
    assert rel(llama.logits(model.params, TOKENS, model.config), want) < 1e-5
    ours = llama.hidden_states(model.params, TOKENS, model.config)
    assert len(ours) == tiny.LAYERS
    for i, (a, b) in enumerate(zip(ours, posts, strict=True)):
        assert rel(a, b) < 1e-5, f"block {i}"
    assert rel(tiny.reference(weights, TOKENS)[2], want) > 1e-3  # the factors matter here


def test_next_token_loss_is_mean_cross_entropy(tiny_model):
    _, model = tiny_model
    lg = np.asarray(llama.logits(model.params, TOKENS, model.config), np.float64)
    logp = lg - np.log(np.exp(lg - lg.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
        - lg.max(-1, keepdims=True)
    nll = -np.take_along_axis(logp[:, :-1], TOKENS[:, 1:, None], -1)[..., 0]
    assert abs(float(llama.next_token_loss(jnp.asarray(lg), TOKENS)) - nll.mean()) < 1e-5
    mask = np.ones_like(TOKENS)
    mask[:, :3] = 0
    got = float(llama.next_token_loss(jnp.asarray(lg), TOKENS, mask))
    assert abs(got - nll[:, 2:].mean()) < 1e-5


def test_bfloat16_weights_stay_close(tiny_model):
    weights, loaded = tiny_model
    model = llama.load(loaded.path, dtype="bfloat16")
    assert model.params["blocks"]["attn_q"].dtype == jnp.bfloat16
    assert model.params["blocks"]["attn_norm"].dtype == jnp.float32
    _, _, logits_np = tiny.reference(weights, TOKENS)
    assert rel(llama.logits(model.params, TOKENS, model.config), logits_np) < 0.05


def dot_operand_dtypes(jaxpr) -> list:
    """The operand dtypes of every matrix product in a jaxpr and the jaxprs inside it."""
    found = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            found.append(tuple(str(v.aval.dtype) for v in eqn.invars))
        for value in eqn.params.values():
            for inner in value if isinstance(value, (list, tuple)) else [value]:
                inner = getattr(inner, "jaxpr", inner)
                if hasattr(inner, "eqns"):
                    found += dot_operand_dtypes(inner)
    return found


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_every_product_runs_in_the_weights_dtype(tiny_model, dtype):
    # what bfloat16 weights are for: the products (projections, attention, MLP, unembedding)
    # take bfloat16 operands, whatever the float32 stream between them (x64 is on in the tests)
    _, loaded = tiny_model
    model = llama.load(loaded.path, dtype=dtype)
    for fn, args in [(llama.logits, ()), (llama.activations, (1, "mlp_out"))]:
        jaxpr = jax.make_jaxpr(fn, static_argnums=tuple(range(2, 3 + len(args))))(
            model.params, TOKENS, model.config, *args)
        dots = dot_operand_dtypes(jaxpr.jaxpr)
        # a block's q, k, v, two attention einsums, output and three MLP products, once for
        # the scan over the blocks; then the unembedding, or the block whose site is read
        assert len(dots) == (18 if args else 10), dots
        assert set(dots) == {(dtype, dtype)}, dots


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float32])
def test_to_params_keeps_norms_and_rotary_factors_float32(dtype):
    # whatever the weights arrive as (float64 here, under x64): the matrices take the model's
    # dtype, the norms and the rotary factors stay float32
    weights = jax.tree.map(lambda w: np.asarray(w, np.float64), tiny.random_weights(seed=5))
    weights["rope_freqs"] = np.array([1.0, 8.0])
    params = llama.to_params(weights, dtype)
    assert params["embed"].dtype == dtype and params["blocks"]["attn_q"].dtype == dtype
    for got in (params["norm"], params["rope_freqs"], params["blocks"]["attn_norm"],
                params["blocks"]["ffn_norm"]):
        assert got.dtype == jnp.float32
    np.testing.assert_array_equal(params["rope_freqs"], [1.0, 8.0])


def test_the_tokenizer_follows_the_files_merges_and_digit_split(tmp_path):
    weights = tiny.random_weights()
    tokens = tiny.vocabulary()[0]
    for pre, digits in [("smollm", ["1", "2"]), ("gpt2", ["12"])]:
        model = llama.load(tiny.write_gguf(tmp_path / f"{pre}.gguf", weights, pre=pre))
        ids = model.tokenizer.encode(" the 12<|im_end|>").ids
        assert [tokens[i] for i in ids] == ["Ġthe", "Ġ", *digits, "<|im_end|>"]
        assert model.tokenizer.decode(ids, skip_special_tokens=False) == " the 12<|im_end|>"
    # llama.cpp's smollm split: digits first, each alone, then GPT-2's regex on what is left,
    # so the spaces before a digit stay with the newline (transformers 5.25's GGUF tokenizer
    # knows no smollm split and gives ["ĊĠĠ", "Ġ2"] like plain GPT-2, which "gpt2" checks here)
    for pre, pieces in [("smollm", ["ĊĠĠĠ", "2", "Ġ", "1"]), ("gpt2", ["ĊĠĠ", "Ġ2", "Ġ1"])]:
        model = llama.load(tmp_path / f"{pre}.gguf")
        got = [p for p, _ in model.tokenizer.pre_tokenizer.pre_tokenize_str("\n   2 1")]
        assert got == pieces, pre


def test_bad_files_are_refused_by_name(tmp_path):
    weights = tiny.random_weights()
    with pytest.raises(DataError, match="general.architecture is 'gpt2'.*llama"):
        llama.load(tiny.write_gguf(tmp_path / "a.gguf", weights, arch="gpt2"))
    with pytest.raises(DataError, match="pre-tokenizer 'qwen9'.*known"):
        llama.load(tiny.write_gguf(tmp_path / "b.gguf", weights, pre="qwen9"))
    import gguf

    rows = weights["embed"].shape[0]
    q8k = (np.zeros((rows, gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType.Q8_K][1]), np.uint8),
           None, gguf.GGMLQuantizationType.Q8_K)
    with pytest.raises(DataError, match="token_embd.weight is Q8_K.*cannot dequantize"):
        llama.load(tiny.write_gguf(tmp_path / "c.gguf", weights, quant_embed=q8k))
    with pytest.raises(DataError, match="does not exist"):
        llama.load(tmp_path / "missing.gguf")
    (tmp_path / "junk.gguf").write_bytes(b"not a gguf file at all")
    with pytest.raises(DataError, match="not a readable GGUF file"):
        llama.load(tmp_path / "junk.gguf")
    with pytest.raises(ValueError, match="dtype 'float16'"):
        llama.load(tmp_path / "a.gguf", dtype="float16")
