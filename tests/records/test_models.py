"""records.models: exported models (safetensors + cfg.json) equal the checkpoints they came from,
load() reads runs, sweep members and exports alike, encode writes a2, a stack exports a tensor
group per layer, and bad input is refused untouched."""

import json

import numpy as np
import pytest
from architectures import family_reference as ref
from safetensors.numpy import load_file, save_file

import saejax
from saejax import cli, stacked, sweeps, train
from saejax.config import TrainConfig
from saejax.records.checkpoints import Checkpointer, CheckpointError
from saejax.records.models import ModelError


def tiny_data(m=30, n=9, seed=0):
    return np.random.default_rng(seed).uniform(0.05, 0.95, (m, n))


def config(**kw):
    base = dict(dataset="digits", n_hidden=4, rho=0.1, beta=3.0, lam=1e-3, steps=6,
                steps_per_call=3, checkpoint_every=3, checkpoint_seconds=0, dtype="float32")
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("exchange") / "run"
    train.run(config(), tiny_data(), workdir=workdir, progress=False)
    return workdir


def snapshot(directory):
    return {p: p.read_bytes() for p in directory.rglob("*") if p.is_file()}


def test_a_run_exports_its_latest_checkpoint_bit_for_bit(run_dir, tmp_path):
    out = saejax.export(run_dir, tmp_path / "model")
    weights = load_file(str(out / "weights.safetensors"))
    cfg = json.loads((out / "cfg.json").read_text())
    like = train.init_state(config(), 9)
    checkpoints = Checkpointer(run_dir / "checkpoints")
    saved = checkpoints.restore(like)  # the latest: step 6
    checkpoints.close()
    assert int(saved.step) == 6
    assert set(weights) == {"W1", "b1", "W2", "b2"}
    for k, v in saved.params.items():
        assert weights[k].dtype == np.float32
        np.testing.assert_array_equal(weights[k], np.asarray(v))
    assert (cfg["n_visible"], cfg["n_hidden"], cfg["rho"], cfg["beta"], cfg["lam"]) == (
        9, 4, 0.1, 3.0, 1e-3)
    assert (cfg["penalty"], cfg["decoder"], cfg["tied"], cfg["dtype"]) == (
        "kl", "sigmoid", False, "float32")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert cfg["summary"]["final_loss"] == summary["final_loss"]

    # load() gives the same model from the run directory and from the export; data given as an
    # array in Python is recorded as dataset array, every row an example
    for source in (run_dir, out):
        got_config, params = saejax.load(source)
        assert got_config == config().replace(dataset="array", num_examples=30)
        for k in weights:
            np.testing.assert_array_equal(params[k], weights[k])


@pytest.mark.slow
def test_a_tied_model_exports_without_w2(tmp_path):
    workdir = tmp_path / "tied"
    result = train.run(config(tied=True), tiny_data(), workdir=workdir, progress=False)
    out = saejax.export(workdir, tmp_path / "model")
    weights = load_file(str(out / "weights.safetensors"))
    assert set(weights) == {"W1", "b1", "b2"}
    np.testing.assert_array_equal(weights["W1"], np.asarray(result.state.params["W1"]))
    assert saejax.load(out)[0].tied


@pytest.mark.slow
def test_a_sweep_member_exports_with_its_own_settings(tmp_path):
    result = sweeps.sweep(config(), tiny_data(), [0.05, 0.1], [1.0, 3.0], chunk_size=2,
                          workdir=tmp_path / "sweep", progress=False)
    member = 3  # the second block: rho 0.1, beta 3
    out = saejax.export(tmp_path / "sweep", tmp_path / "model", member=member)
    weights = load_file(str(out / "weights.safetensors"))
    for k, v in result.params.items():
        np.testing.assert_array_equal(weights[k], v[member])
    cfg = json.loads((out / "cfg.json").read_text())
    assert (cfg["rho"], cfg["beta"]) == (0.1, 3.0)
    assert cfg["summary"]["final_loss"] == result.rows[member]["final_loss"]
    got_config, params = saejax.load(tmp_path / "sweep", member=0)
    assert (got_config.rho, got_config.beta) == (0.05, 1.0)
    np.testing.assert_array_equal(params["W2"], result.params["W2"][0])


@pytest.mark.slow
def test_encode_matches_numpy_sigmoid(tmp_path):
    from saejax.data import training_data

    x, info = training_data("digits", None, 60)
    workdir = tmp_path / "run"
    train.run(config(n_hidden=5), x, workdir=workdir, progress=False, data_info=info)
    assert cli.main(["encode", "--model", str(workdir), "--out", str(tmp_path / "a2.npy"),
                     "--num-examples", "60"]) == 0
    w = load_file(str(saejax.export(workdir, tmp_path / "m") / "weights.safetensors"))
    want = 1.0 / (1.0 + np.exp(-(x @ w["W1"].astype(np.float64).T + w["b1"])))
    np.testing.assert_allclose(np.load(tmp_path / "a2.npy"), want, atol=1e-6)


def test_bad_input_is_refused_with_exit_2_and_touches_nothing(run_dir, tmp_path, capsys):
    out = saejax.export(run_dir, tmp_path / "model")
    before = snapshot(tmp_path)

    def refused(argv, message):
        assert cli.main(argv) == 2
        assert message in capsys.readouterr().err
        assert snapshot(tmp_path) == before

    refused(["export", str(run_dir), str(out)], "already holds weights.safetensors")
    refused(["export", str(tmp_path / "nowhere"), str(tmp_path / "x")], "does not exist")
    refused(["export", str(run_dir), str(tmp_path / "x"), "--member", "1"], "not a sweep")
    refused(["encode", "--model", str(out), "--out", str(tmp_path / "x.npy")],
            "trained on an in-memory array, not a file: pass --data FILE.npy")
    refused(["encode", "--model", str(out), "--dataset", "digits", "--out",
             str(tmp_path / "x.npy")], "the model takes 9 inputs but")
    refused(["encode", "--model", str(out), "--dataset", "digits", "--out",
             str(tmp_path / "codes.txt")], "written as a NumPy .npy file; give a name ending")

    # a run killed before its first checkpoint: config.json only
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text(json.dumps(
        {"kind": "run", "config": json.loads((run_dir / "config.json").read_text())["config"],
         "n_visible": 9}))
    with pytest.raises(CheckpointError, match="holds no checkpoint"):
        saejax.load(empty)

    # a tensor file whose shapes disagree with cfg.json (a cfg.json with no checksum, as one
    # written by hand: the shapes are then what tells)
    bad = tmp_path / "bad"
    bad.mkdir()
    cfg = json.loads((out / "cfg.json").read_text())
    del cfg["weights_sha256"]
    (bad / "cfg.json").write_text(json.dumps(cfg))
    weights = load_file(str(out / "weights.safetensors"))
    save_file({**weights, "W1": np.zeros((4, 8), np.float32)}, str(bad / "weights.safetensors"))
    with pytest.raises(ModelError, match="holds tensors"):
        saejax.load(bad)


@pytest.mark.slow
def test_a_sweep_member_out_of_range_is_refused(tmp_path, capsys):
    sweeps.sweep(config(), tiny_data(), [0.05, 0.1], [1.0], workdir=tmp_path / "s",
                 progress=False)
    assert cli.main(["export", str(tmp_path / "s"), str(tmp_path / "m"), "--member", "2"]) == 2
    assert "member 2 is outside the sweep's 2 members" in capsys.readouterr().err
    with pytest.raises(ModelError, match="give member=, 0 to 1"):
        saejax.load(tmp_path / "s")
    assert not (tmp_path / "m").exists()


def test_a_stack_exports_one_tensor_group_per_layer_and_loads_back(tmp_path):
    from safetensors.numpy import load_file

    from saejax.records import models as exchange

    net, x, _ = stacked.problem((8, 5, 4), num_classes=3)
    out = exchange.export_stack(net, tmp_path / "model", {"note": "test"})
    tensors = load_file(str(out / "weights.safetensors"))
    assert sorted(tensors) == ["layers.0.W", "layers.0.b", "layers.1.W", "layers.1.b",
                               "softmax.W", "softmax.b"]
    np.testing.assert_array_equal(tensors["layers.1.W"], np.asarray(net["layers"][1]["W"]))
    cfg, back = exchange.load_stack(out)
    assert cfg["sizes"] == [8, 5, 4] and cfg["num_classes"] == 3 and cfg["note"] == "test"
    np.testing.assert_array_equal(stacked.predict(back, x), stacked.predict(net, x))
    with pytest.raises(exchange.ModelError, match="already holds"):
        exchange.export_stack(net, out)
    # a stack is not one autoencoder: saejax.load names the loader it needs
    with pytest.raises(ModelError, match="holds a stacked network, not one autoencoder: load it "
                                         "with saejax.records.models.load_stack"):
        saejax.load(out)
    # the keys cfg.json needs cannot be replaced by info
    with pytest.raises(ValueError, match="info may not hold format, sizes: export_stack"):
        exchange.export_stack(net, tmp_path / "bogus", {"format": "bogus", "sizes": [1]})
    assert not (tmp_path / "bogus").exists()


def test_the_normalization_reaches_the_export_and_load_normalization(tmp_path):
    from saejax.data import normalize
    from saejax.records import models

    x = np.random.default_rng(3).normal(size=(30, 9))
    record = normalize.fit("standardize", x)
    workdir = tmp_path / "run"
    train.run(config(), normalize.apply(record, x) * 0.1 + 0.5, workdir=workdir, progress=False,
              data_info={"dataset": "array", "source": "test", "normalization": record})
    out = saejax.export(workdir, tmp_path / "model")
    cfg = json.loads((out / "cfg.json").read_text())
    assert cfg["normalization"] == record == cfg["data"]["normalization"]
    for source in (workdir, out):
        assert models.load_normalization(source) == record
        assert models.load_data_info(source)["source"] == "test"
    # a model recorded before normalizations were: none
    (out / "cfg.json").write_text(json.dumps({**cfg, "normalization": None, "data": {}}))
    assert models.load_normalization(out) == {"kind": "none"}
    with pytest.raises(ModelError, match="not a sweep: leave out member="):
        models.load_data_info(workdir, member=0)


def test_an_export_with_the_architecture_s_own_params_loads(run_dir, tmp_path):
    out = saejax.export(run_dir, tmp_path / "model")
    cfg = json.loads((out / "cfg.json").read_text())
    cfg["config"].update(arch="jumprelu", decoder="linear", optimizer="adam", batch_size=8)
    del cfg["weights_sha256"]  # the tensors below are written by hand
    jump = tmp_path / "jump"
    jump.mkdir()
    (jump / "cfg.json").write_text(json.dumps(cfg))
    weights = load_file(str(out / "weights.safetensors"))
    save_file({**weights, "log_threshold": np.full(4, -3.0, np.float32)},
              str(jump / "weights.safetensors"))
    got_config, params = saejax.load(jump)
    assert got_config.arch == "jumprelu"
    np.testing.assert_array_equal(params["log_threshold"], np.full(4, -3.0, np.float32))
    save_file(weights, str(jump / "weights.safetensors"))  # the thresholds missing
    with pytest.raises(ModelError, match="holds tensors"):
        saejax.load(jump)


@pytest.mark.parametrize("arch, knobs", [("topk", dict(k=2)), ("batchtopk", dict(k=2)),
                                         ("jumprelu", dict(l0=0.1))])
def test_codes_of_a_loaded_family_model_are_its_architectures(tmp_path, arch, knobs):
    x = np.random.default_rng(1).normal(size=(30, 9))
    settings = config(arch=arch, decoder="linear", optimizer="adam", batch_size=10, **knobs)
    train.run(settings, x, workdir=tmp_path / "run", progress=False)
    loaded, params = saejax.load(tmp_path / "run")
    p = ref.as_numpy(params)
    if arch == "batchtopk":  # inference: what exceeds the learned threshold, no batch
        pre = ref.pre_activation(p, x)
        want = np.where(pre > max(float(p["threshold"]), 0.0), pre, 0.0)
    else:
        want = ref.codes(p, x, arch, k=knobs.get("k"))
    np.testing.assert_allclose(np.asarray(saejax.codes(params, x, loaded)), want, atol=1e-5)
    # the export's headline: the architecture and its own knob, none of the sigmoid network's
    cfg = json.loads((saejax.export(tmp_path / "run", tmp_path / "out") / "cfg.json").read_text())
    again, back = saejax.load(tmp_path / "out")  # the export loads back: the same codes
    assert {k: np.shape(v) for k, v in back.items()} == {k: np.shape(v) for k, v in params.items()}
    np.testing.assert_array_equal(np.asarray(saejax.codes(back, x, again)),
                                  np.asarray(saejax.codes(params, x, loaded)))
    (knob, value), = knobs.items()
    assert (cfg["arch"], cfg[knob], cfg["lam"]) == (arch, value, settings.lam)
    assert not {"rho", "beta", "penalty"} & set(cfg)
    from saejax.schema import OWN_SETTINGS  # and its own settings: jumprelu's bandwidth, ...

    own = [s for s, archs in OWN_SETTINGS.items() if arch in archs]
    assert own and all(cfg[s] == getattr(settings, s) for s in own)
    if arch != "topk":  # the sigmoid network's encode would give sigmoid(W1 x + b1)
        leaf = "log_threshold" if arch == "jumprelu" else "threshold"
        with pytest.raises(ValueError, match=rf"'{leaf}'.*a {arch} model's.*"
                                             r"saejax.codes\(params, x, config\)"):
            saejax.encode(params, x)
