"""The activations cache, on a tiny random Llama: its rows against the NumPy forward pass of the
contexts built by hand, the record, resumption after a kill, and refusals that change nothing."""

import json

import numpy as np
import pytest
from models import tiny_llama as tiny

from saejax.activations import cache, text
from saejax.data import arrays
from saejax.data.errors import DataError
from saejax.models import llama

TEXT = ("The cat sat on the mat, 12 times in 2024. " * 20
        + "Then it left; the end.\n" * 10)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    home = tmp_path_factory.mktemp("cache")
    weights = tiny.random_weights(seed=5)
    model = tiny.write_gguf(home / "tiny.gguf", weights)
    (home / "a.txt").write_text(TEXT)
    return home, weights, model


def config(**kw):
    return cache.CacheConfig(**{"layer": 1, "tokens": 200, "context": 16, "batch_size": 3,
                                "shard_tokens": 60, **kw})


def hand_contexts(model_path, context):
    """BOS, then context - 1 tokens of the text's ids, built without saejax.activations."""
    m = llama.load(model_path)
    ids = m.tokenizer.encode(TEXT).ids
    body = context - 1
    return [[m.bos_id] + ids[i * body:(i + 1) * body] for i in range(len(ids) // body)]


@pytest.mark.parametrize("keep_bos", [False, True])
def test_rows_are_the_sites_values_in_order(setup, keep_bos, tmp_path):
    home, weights, model = setup
    c = config(keep_bos=keep_bos, site="mlp_out")
    record = cache.write(tmp_path / "c", model, home / "a.txt", c, progress=False)
    x, info = arrays.load_array(tmp_path / "c")
    ctx = np.array(hand_contexts(model, 16))
    rows = 15 + keep_bos
    n_ctx = -(-200 // rows)
    want = tiny.reference(weights, ctx[:n_ctx])[1][1]["mlp_out"][:, 1 - keep_bos:]
    want = want.reshape(-1, tiny.D)[:200]
    assert x.shape == (200, tiny.D) and record["tokens"] == 200
    assert np.abs(x - want).max() < 1e-4 * np.abs(want).max()
    ids = np.concatenate([np.load(tmp_path / "c" / s["tokens"]) for s in record["shards"]])
    np.testing.assert_array_equal(ids, ctx[:n_ctx, 1 - keep_bos:].reshape(-1)[:200])
    assert (ids == 1).any() == keep_bos  # the BOS id is 1
    per_shard = 60 // rows
    assert [s["rows"] for s in record["shards"]][:-1] == [per_shard * rows] * (
        len(record["shards"]) - 1)
    assert info["activations"]["layer"] == 1 and info["activations"]["site"] == "mlp_out"
    assert record["stats"]["rows"] == 200
    assert abs(record["stats"]["row_norm_mean"] - np.linalg.norm(want, axis=1).mean()) < 1e-3


def test_float16_storage_and_a_sample(setup, tmp_path):
    home, _, model = setup
    cache.write(tmp_path / "h", model, home / "a.txt", config(dtype="float16"), progress=False)
    cache.write(tmp_path / "f", model, home / "a.txt", config(), progress=False)
    assert np.load(tmp_path / "h" / "activations_00000.npy").dtype == np.float16
    full, _ = arrays.load_array(tmp_path / "f")
    half, _ = arrays.load_array(tmp_path / "h")
    np.testing.assert_allclose(half, full, rtol=2e-3, atol=2e-3)
    some, info = arrays.load_array(tmp_path / "f", num_examples=50, seed=3)
    np.testing.assert_array_equal(some, full[arrays.sample_indices(200, 50, 3)])
    assert info["sampled"] and info["rows_in_file"] == 200


def test_a_killed_run_resumes_to_the_same_bytes(setup, tmp_path, monkeypatch):
    home, _, model = setup
    cache.write(tmp_path / "whole", model, home / "a.txt", config(), progress=False)
    saved, real = [], cache._save

    def dies_on_the_third_shard(tmp, array):
        saved.append(tmp)
        if len(saved) == 5:  # the third shard's activations: two shards are listed
            raise KeyboardInterrupt
        real(tmp, array)

    monkeypatch.setattr(cache, "_save", dies_on_the_third_shard)
    with pytest.raises(KeyboardInterrupt):
        cache.write(tmp_path / "cut", model, home / "a.txt", config(), progress=False)
    cut = json.loads((tmp_path / "cut" / "activations.json").read_text())
    assert len(cut["shards"]) == 2 and not cut["complete"]
    with pytest.raises(DataError, match="unfinished activations cache"):
        arrays.load_array(tmp_path / "cut")
    monkeypatch.setattr(cache, "_save", real)
    (tmp_path / "cut" / ".activations_00002.npy.123.abc.tmp").write_bytes(b"half a shard")
    cache.write(tmp_path / "cut", model, home / "a.txt", config(), progress=False)
    whole = json.loads((tmp_path / "whole" / "activations.json").read_text())
    again = json.loads((tmp_path / "cut" / "activations.json").read_text())
    assert again["shards"] == whole["shards"] and again["stats"] == whole["stats"]
    assert sorted(p.name for p in (tmp_path / "cut").iterdir()) == sorted(
        p.name for p in (tmp_path / "whole").iterdir())


def test_refusals_change_nothing(setup, tmp_path):
    home, _, model = setup
    out = tmp_path / "c"
    cache.write(out, model, home / "a.txt", config(), progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(DataError, match="already holds this activations cache"):
        cache.write(out, model, home / "a.txt", config(), progress=False)
    with pytest.raises(DataError, match="other settings \\(layer differ"):
        cache.write(out, model, home / "a.txt", config(layer=0), progress=False)
    with pytest.raises(DataError, match="other settings \\(model_dtype differ"):
        cache.write(out, model, home / "a.txt", config(model_dtype="bfloat16"), progress=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="is not an activations cache"):
        cache.write(tmp_path / "other", model, home / "a.txt", config(), progress=False)
    assert (tmp_path / "other" / "keep.txt").read_text() == "mine"
    for bad, match in [(dict(layer=3), "blocks 0 to 2"), (dict(site="mlp"), "--site 'mlp'"),
                       (dict(context=1), "--context 1"), (dict(dtype="int8"), "--dtype")]:
        with pytest.raises(DataError, match=match):
            cache.write(tmp_path / "new", model, home / "a.txt", config(**bad), progress=False)
    (home / "short.txt").write_text("hi")
    with pytest.raises(DataError, match="fewer than 15 tokens"):
        cache.write(tmp_path / "new", model, home / "short.txt", config(), progress=False)
    assert not (tmp_path / "new").exists() or not any((tmp_path / "new").iterdir())


def test_a_changed_shard_is_named(setup, tmp_path):
    home, _, model = setup
    out = tmp_path / "c"
    cache.write(out, model, home / "a.txt", config(), progress=False)
    x = np.load(out / "activations_00001.npy")
    np.save(out / "activations_00001.npy", x + 1)
    with pytest.raises(DataError, match="activations_00001.npy has changed"):
        arrays.load_array(out)


def test_text_sources(tmp_path):
    docs, info = text.documents("pydoc:")
    assert info["characters"] > 100_000 and info["documents"] == len(docs) > 10
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "b.txt").write_text("second")
    (tmp_path / "d" / "a.md").write_text("first")
    (tmp_path / "d" / "sub" / "c.txt").write_text("third")
    (tmp_path / "d" / "blob.bin").write_bytes(b"\xff\xfe\x00binary")
    docs, info = text.documents(tmp_path / "d")
    assert docs == ["first", "second", "third"]
    assert info["sha256"] != text.documents(tmp_path / "d" / "b.txt")[1]["sha256"]
    with pytest.raises(DataError, match="is not UTF-8 text"):
        text.documents(tmp_path / "d" / "blob.bin")
    with pytest.raises(DataError, match="does not exist"):
        text.documents(tmp_path / "nope.txt")
