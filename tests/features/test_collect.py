"""Feature collection on a tiny random Llama and a random TopK autoencoder, against NumPy: the
frequencies, the chosen latents, the top contexts and their per-token activations, the
histograms and the logit effects."""

import jax
import numpy as np
import pytest
from architectures import family_reference as ref
from models import tiny_llama as tiny

from saejax import architectures
from saejax.activations import cache
from saejax.config import TrainConfig
from saejax.data import arrays
from saejax.data.errors import DataError
from saejax.features import collect
from saejax.models import llama

K, H, TOP, N_CTX = 3, 24, 6, 5


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    home = tmp_path_factory.mktemp("features")
    weights = tiny.random_weights(seed=11)
    model = tiny.write_gguf(home / "tiny.gguf", weights)
    (home / "t.txt").write_text("the cat sat on the mat; 12 dogs ran in 2024. " * 30)
    cache.write(home / "acts", model, home / "t.txt",
                cache.CacheConfig(layer=1, tokens=400, context=16, shard_tokens=150),
                progress=False)
    x, info = arrays.load_array(home / "acts")
    config = TrainConfig(dataset="array", arch="topk", k=K, n_hidden=H, lam=0.0)
    params = architectures.init_params(jax.random.PRNGKey(1), tiny.D, H, "topk")
    data = collect.collect(config, params, {"kind": "none"}, info, top=TOP, n_contexts=N_CTX,
                           before=4, after=2)
    record = arrays.load_array(home / "acts")[1]["activations"]
    return data, x, ref.as_numpy(params), weights, llama.load(model), home, record


def test_frequencies_and_choice_equal_numpy(collected):
    data, x, p, *_ = collected
    f = ref.codes(p, x, "topk", k=K)
    freq = (f > 0).mean(0)
    chosen = np.argsort(-(f > 0).sum(0), kind="stable")[:TOP]
    assert [lat["index"] for lat in data["latents"]] == chosen.tolist()
    for lat in data["latents"]:
        j = lat["index"]
        assert abs(lat["frequency"] - freq[j]) < 1e-12
        assert abs(lat["max"] - f[:, j].max()) < 1e-4
        assert sum(lat["histogram"]["counts"]) == (f[:, j] > 0).sum()
    assert data["rows"] == 400 and data["latents_total"] == H
    assert abs(data["dead_fraction"] - (1 - (f > 0).any(0).mean())) < 1e-12


def test_contexts_are_the_top_rows_with_their_tokens(collected):
    data, x, p, _, lm, home, _ = collected
    f = ref.codes(p, x, "topk", k=K)
    tokens = np.concatenate([np.load(home / "acts" / f"tokens_{i:05d}.npy") for i in range(3)])
    for lat in data["latents"]:
        j = lat["index"]
        want = np.sort(f[:, j])[::-1][:N_CTX]
        got = [c["activation"] for c in lat["contexts"]]
        np.testing.assert_allclose(got, want[want > 0], rtol=1e-4, atol=1e-5)
        for c in lat["contexts"]:
            r, lo = c["row"], c["row"] - c["focus"]
            assert lo >= (r // 15) * 15 and c["focus"] <= 4 and len(c["tokens"]) <= 7
            rows = np.arange(lo, lo + len(c["tokens"]))
            assert rows[-1] < (r // 15 + 1) * 15  # never past the end of its own context
            np.testing.assert_allclose(c["values"], f[rows, j], rtol=1e-4, atol=1e-5)
            assert c["tokens"] == [lm.tokenizer.decode([int(t)]) for t in tokens[rows]]


def test_a_window_stops_where_the_cache_ends():
    tokens = np.arange(40)  # 40 rows: 2 contexts of 15 rows, then a last one cut at 10

    def rows_of(index):
        return np.asarray(index, np.float32)[:, None] * np.ones((1, 3), np.float32)

    def encode(x, columns):
        return x[np.arange(len(x)), columns]

    # latent 0's top rows 39 and 31; latent 2's row 20, then a value that ends its list
    windows = collect._contexts(encode, rows_of, tokens, np.array([[2.0, 3.0], [1.0, 0.0]]),
                                np.array([[39, 20], [31, 5]]), [0, 2], 15, 4, 2, str)
    assert [w["tokens"] for w in windows[0]] == [[str(t) for t in range(35, 40)],
                                                 [str(t) for t in range(30, 34)]]
    assert [w["focus"] for w in windows[0]] == [4, 1]
    assert windows[0][0]["values"] == [35.0, 36.0, 37.0, 38.0, 39.0]
    assert [w["tokens"] for w in windows[1]] == [[str(t) for t in range(16, 23)]]


def test_one_compiled_encoder_serves_every_block_and_window(collected, monkeypatch):
    # 400 rows in blocks of 64 end in a partial block, and the windows are of another count:
    # each call is cut into blocks of one shape, so the codes are traced once
    from saejax.train import final

    data, x, p, *_, home, _ = collected
    traced = []
    codes = final.codes
    monkeypatch.setattr(final, "codes", lambda *a: traced.append(a[1].shape) or codes(*a))
    monkeypatch.setattr(collect, "BLOCK", 64)
    config = TrainConfig(dataset="array", arch="topk", k=K, n_hidden=H, lam=0.0)
    info = arrays.load_array(home / "acts")[1]
    again = collect.collect(config, jax.tree.map(np.asarray, p), {"kind": "none"}, info,
                            top=TOP, n_contexts=N_CTX, before=4, after=2)
    assert traced == [(64, tiny.D)]
    for a, b in zip(again["latents"], data["latents"], strict=True):  # as the default gave
        assert (a["index"], a["frequency"]) == (b["index"], b["frequency"])
        assert a["histogram"]["counts"] == b["histogram"]["counts"]
        # the top activations (rows of equal activation, from the repeated text, may swap)
        np.testing.assert_allclose([c["activation"] for c in a["contexts"]],
                                   [c["activation"] for c in b["contexts"]], rtol=1e-5)


def test_no_contexts_give_a_page_without_them(collected):
    top, n_contexts = 4, 0
    *_, home, _ = collected
    config = TrainConfig(dataset="array", arch="topk", k=K, n_hidden=H, lam=0.0)
    params = architectures.init_params(jax.random.PRNGKey(1), tiny.D, H, "topk")
    info = arrays.load_array(home / "acts")[1]
    data = collect.collect(config, params, {"kind": "none"}, info, top=top,
                           n_contexts=n_contexts, before=4, after=2)
    assert len(data["latents"]) == top
    assert all(lat["contexts"] == [] for lat in data["latents"])


def test_logit_effects_are_the_unembedding_times_the_decoder(collected):
    data, _, p, weights, lm, *_ = collected
    effects = weights["embed"].astype(np.float64) @ p["W2"]  # tied: the embedding unembeds
    for lat in data["latents"]:
        e = effects[:, lat["index"]]
        top = np.argsort(-e, kind="stable")[:10]
        assert [t for t, _ in lat["promoted"]] == [lm.tokenizer.decode([int(i)]) for i in top]
        np.testing.assert_allclose([v for _, v in lat["promoted"]], e[top], rtol=1e-5)
        assert lat["suppressed"][0][1] == pytest.approx(e.min(), rel=1e-5)


def test_a_model_not_trained_on_activations_is_refused():
    config = TrainConfig(dataset="array", arch="topk", k=K, n_hidden=H, lam=0.0)
    with pytest.raises(DataError, match="saejax features` needs a model trained"):
        collect.collect(config, {}, {"kind": "none"}, {"dataset": "array"})


@pytest.mark.parametrize("bad, message", [({"top": 0}, "top must be a positive integer"),
                                          ({"n_contexts": -1}, "n_contexts must be a whole"),
                                          ({"before": -2}, "before must be a whole number >= 0"),
                                          ({"after": 1.5}, "after must be a whole number >= 0")])
def test_counts_the_page_cannot_show_are_refused(bad, message):
    config = TrainConfig(dataset="array", arch="topk", k=K, n_hidden=H, lam=0.0)
    with pytest.raises(ValueError, match=message):
        collect.collect(config, {}, {"kind": "none"}, {"dataset": "array"}, **bad)
