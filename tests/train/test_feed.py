"""Training on a stream of activations (``train.feed``) against training on the same rows loaded
whole: the same minibatches, so the same params, in runs, resumed runs and sweeps; reads of
a piece at a time; and J on the evaluation rows."""

import numpy as np
import pytest
from models import tiny_llama as tiny

from saejax import sweeps, train
from saejax.activations import cache
from saejax.config import TrainConfig
from saejax.data import arrays, stream
from saejax.data.stream import ActivationStream
from saejax.losses import hyper_of
from saejax.train import feed
from saejax.train.final import final_stats


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("feed")
    model = tiny.write_gguf(home / "tiny.gguf", tiny.random_weights(seed=4))
    (home / "a.txt").write_text("A fox, 7 jumps; then 2024 more. " * 50)
    cache.write(home / "c", model, home / "a.txt", cache.CacheConfig(
        layer=2, tokens=300, context=16, batch_size=3, shard_tokens=60), progress=False)
    return home / "c"


def config(home, **kw):
    return TrainConfig(**{"arch": "topk", "k": 4, "n_hidden": 24, "optimizer": "adam",
                          "lr": 1e-2, "batch_size": 16, "steps": 30, "steps_per_call": 12,
                          "decoder": "linear", "dataset": "array", "data": str(home), **kw})


def same_params(a, b):
    for k in a:
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=k)


@pytest.mark.slow  # the fast tier keeps the evaluation-sample test of a streamed run
def test_a_streamed_run_is_the_run_of_the_loaded_rows_piece_by_piece(home, monkeypatch):
    x, xi = arrays.load_array(home)
    cfg = config(home)
    loaded = train.run(cfg, x, progress=False, data_info=xi)
    s, info = ActivationStream.open(home)
    reads = []
    take = ActivationStream.take
    monkeypatch.setattr(ActivationStream, "take",
                        lambda self, idx: reads.append(np.size(idx)) or take(self, idx))
    monkeypatch.setattr(feed, "PIECE_BYTES", 5 * 16 * tiny.D * 4)  # five steps a piece
    streamed = train.run(cfg, s, progress=False, data_info=info)
    same_params(loaded.state.params, streamed.state.params)
    assert [r["loss"] for r in loaded.history] == [r["loss"] for r in streamed.history]
    assert streamed.summary["final_loss"] == loaded.summary["final_loss"]
    # chunks of 12 steps read as pieces of 5, 5 and 2 steps: never more than 5 batches at once
    assert reads == [5 * 16] * 2 + [2 * 16] + [5 * 16] * 2 + [2 * 16] + [5 * 16, 1 * 16]


@pytest.mark.slow
def test_a_resumed_streamed_run_is_the_uninterrupted_one(home, tmp_path):
    s, info = ActivationStream.open(home)
    whole = train.run(config(home), s, progress=False, data_info=info)
    train.run(config(home, steps=13), s, tmp_path / "r", progress=False, data_info=info)
    resumed = train.run(config(home), s, tmp_path / "r", resume=True, progress=False,
                        data_info=info)
    same_params(whole.state.params, resumed.state.params)


@pytest.mark.slow
@pytest.mark.parametrize("seeds", [[0], [0, 1]], ids=["shared batches", "own batches"])
def test_a_streamed_sweep_is_the_sweep_of_the_loaded_rows(home, seeds, monkeypatch):
    x, xi = arrays.load_array(home)
    s, info = ActivationStream.open(home)
    monkeypatch.setattr(feed, "PIECE_BYTES", 7 * 16 * tiny.D * 4 * len(seeds))
    a = sweeps.sweep(config(home), x, k=[2, 4], seed=seeds, progress=False, data_info=xi)
    b = sweeps.sweep(config(home), s, k=[2, 4], seed=seeds, progress=False, data_info=info)
    same_params(a.params, b.params)
    assert [r["final_loss"] for r in a.rows] == [r["final_loss"] for r in b.rows]


def test_j_is_taken_on_the_evaluation_sample(home, monkeypatch):
    monkeypatch.setattr(stream, "EVAL_ROWS", 50)
    s, info = ActivationStream.open(home, seed=2)
    cfg = config(home, seed=2, steps=4)
    run = train.run(cfg, s, progress=False, data_info=info)
    sample, _ = arrays.load_array(home, num_examples=50, seed=2)  # the same 50 rows, read whole
    terms, _ = final_stats(run.state.params, sample, hyper_of(cfg), cfg.program())
    assert run.summary["final_loss"] == pytest.approx(float(terms["loss"]), rel=1e-6)
    assert info["streamed"]["evaluation_rows"] == 50 and run.summary["steps"] == 4


LBFGS = {"optimizer": "lbfgs", "batch_size": None}


@pytest.mark.parametrize("change", [LBFGS, {"batch_size": None}], ids=["lbfgs", "full batch"])
def test_a_full_batch_method_is_refused_a_stream(home, change, tmp_path):
    change = {"arch": "relu-l1", **change}  # topk has no L-BFGS
    s, info = ActivationStream.open(home)
    with pytest.raises(ValueError, match="needs every row at once"):
        train.run(config(home, **change), s, tmp_path / "r", progress=False, data_info=info)
    assert not (tmp_path / "r").exists()
    with pytest.raises(ValueError, match="needs every row at once"):
        sweeps.sweep(config(home, **change), s, l1=[0.1], progress=False, data_info=info)


def test_a_nan_outside_the_evaluation_rows_is_named_when_read(home, tmp_path, monkeypatch):
    import json
    import shutil

    from saejax.data.errors import DataError
    from saejax.records import files

    copy = tmp_path / "c"
    shutil.copytree(home, copy)
    record = json.loads((copy / "activations.json").read_text())
    shard = record["shards"][-1]  # written with a NaN, as a broken model would write it
    rows = np.load(copy / shard["activations"])
    rows[-1, 0] = np.nan
    np.save(copy / shard["activations"], rows)
    shard["sha256"] = files.sha256(copy / shard["activations"])
    (copy / "activations.json").write_text(json.dumps(record))
    monkeypatch.setattr(stream, "EVAL_ROWS", 20)  # the NaN's row is not among them
    s, info = ActivationStream.open(copy, seed=1)
    assert np.isfinite(s.evaluation_rows()).all()
    with pytest.raises(DataError, match=f"the activations in {copy}"):
        train.run(config(copy, steps=200, batch_size=64), s, progress=False, data_info=info)


def changed_copy(home, tmp_path, row):
    """A copy of the cache with ``row`` doubled, its record's digests made to match."""
    import json
    import shutil

    from saejax.records import files

    copy = tmp_path / "c"
    shutil.copytree(home, copy)
    record = json.loads((copy / "activations.json").read_text())
    for shard in record["shards"]:
        rows = np.load(copy / shard["activations"])
        if row < len(rows):
            rows[row] *= 2
            np.save(copy / shard["activations"], rows)
            shard["sha256"] = files.sha256(copy / shard["activations"])
            break
        row -= len(rows)
    (copy / "activations.json").write_text(json.dumps(record))
    return copy


@pytest.mark.slow
def test_a_sweep_resumed_on_a_cache_changed_outside_its_evaluation_rows_is_refused(
        home, tmp_path, monkeypatch):
    from saejax.data.arrays import sample_indices
    from saejax.records.rundir import RunDirError

    monkeypatch.setattr(stream, "EVAL_ROWS", 20)
    s, info = ActivationStream.open(home, seed=1)
    outside = int(np.setdiff1d(np.arange(len(s)), sample_indices(len(s), 20, 1))[0])
    work = tmp_path / "sweep"
    sweeps.sweep(config(home, seed=1, steps=3), s, k=[2], workdir=work, progress=False,
                 data_info=info)
    changed, changed_info = ActivationStream.open(changed_copy(home, tmp_path, outside), seed=1)
    np.testing.assert_array_equal(changed.evaluation_rows(), s.evaluation_rows())
    with pytest.raises(RunDirError, match="data_fingerprint"):
        sweeps.sweep(config(home, seed=1, steps=3), changed, k=[2], workdir=work,
                     progress=False, data_info=changed_info, resume=True)
