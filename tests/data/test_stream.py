"""A stream of an activations cache against the cache loaded whole (``arrays.load_array``): rows
in any order across shards, samples, normalization, and refusals."""

import json

import numpy as np
import pytest
from models import tiny_llama as tiny

from saejax.activations import cache
from saejax.data import arrays, normalize, stream
from saejax.data.errors import DataError
from saejax.data.stream import ActivationStream


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("stream")
    model = tiny.write_gguf(home / "tiny.gguf", tiny.random_weights(seed=3))
    (home / "a.txt").write_text("The cat sat on the mat, 12 times in 2024. " * 40)
    cache.write(home / "c", model, home / "a.txt", cache.CacheConfig(
        layer=1, tokens=300, context=16, batch_size=3, shard_tokens=60), progress=False)
    return home / "c"


def test_rows_in_any_order_and_shape_are_the_loaded_rows(home):
    x, _ = arrays.load_array(home)
    s, info = ActivationStream.open(home)
    assert s.shape == x.shape == (300, tiny.D) and len(json.loads(
        (home / "activations.json").read_text())["shards"]) == 5  # rows cross shard borders
    idx = np.random.default_rng(0).integers(0, 300, size=(3, 7, 11))  # repeats, any order
    np.testing.assert_array_equal(s.take(idx), x[idx])
    np.testing.assert_array_equal(np.concatenate(list(s.blocks(64))), x)
    assert info["sha256"] == arrays.load_array(home)[1]["sha256"]
    assert info["streamed"] == {"evaluation_rows": 300, "evaluation_seed": 0}
    with pytest.raises(IndexError):
        s.take([300])


def test_a_sample_and_its_evaluation_rows(home, monkeypatch):
    x, _ = arrays.load_array(home)
    s, info = ActivationStream.open(home, num_examples=100, seed=4)
    rows = np.sort(np.random.default_rng(4).choice(300, size=100, replace=False))
    np.testing.assert_array_equal(s.take(np.arange(100)), x[rows])
    assert info["sampled"] and info["shape"] == [100, tiny.D]
    monkeypatch.setattr(stream, "EVAL_ROWS", 40)
    s, info = ActivationStream.open(home, seed=7)
    picked = np.sort(np.random.default_rng(7).choice(300, size=40, replace=False))
    np.testing.assert_array_equal(s.evaluation_rows(), x[picked])
    assert info["streamed"]["evaluation_rows"] == 40


def test_normalization_is_fitted_on_the_evaluation_rows_and_applied_to_every_read(home):
    x, _ = arrays.load_array(home)
    s, info = ActivationStream.open(home, normalize="standardize")
    np.testing.assert_allclose(info["normalization"]["mean"], x.mean(axis=0), rtol=1e-5,
                               atol=1e-6)
    want = normalize.apply(normalize.fit("standardize", x), x)
    np.testing.assert_allclose(s.take(np.arange(5, 50)), want[5:50], rtol=1e-5, atol=1e-5)


def test_an_unfinished_or_changed_cache_is_refused(home, tmp_path):
    import shutil

    copy = tmp_path / "c"
    shutil.copytree(home, copy)
    record = json.loads((copy / "activations.json").read_text())
    np.save(copy / record["shards"][1]["activations"],
            np.zeros((record["shards"][1]["rows"], tiny.D), np.float32))
    with pytest.raises(DataError, match="has changed since it was written"):
        ActivationStream.open(copy)
    record["complete"] = False
    (copy / "activations.json").write_text(json.dumps(record))
    with pytest.raises(DataError, match="unfinished activations cache"):
        ActivationStream.open(copy)
    (copy / "activations.json").write_text(json.dumps({"format": 1}))  # no record of a cache
    with pytest.raises(DataError, match="is not the record of an activations cache"):
        ActivationStream.open(copy)
    moved = tmp_path / "moved"  # where a model's record says its cache was, now gone
    copy.rename(moved)
    with pytest.raises(DataError, match=r"c holds no activations cache \(no activations.json\): "
                                        "the directory .* was moved or removed since"):
        ActivationStream.open(copy)


def test_a_stream_asked_for_more_rows_than_the_cache_holds_uses_them_all_and_says_so(home,
                                                                                    caplog):
    from saejax.config import TrainConfig
    from saejax.data.datasets import config_data

    config = TrainConfig(data=str(home), num_examples=1000, arch="topk", k=2, n_hidden=4,
                         lam=0.0, optimizer="adam")
    with caplog.at_level("WARNING", logger="saejax.data.datasets"):
        got, x, _ = config_data(config)
    assert isinstance(x, ActivationStream) and len(x) == 300 and got.num_examples == 300
    assert caplog.messages == [f"{home} holds 300 rows, fewer than the 1000 asked for "
                               "(--num-examples): all 300 are used"]
