"""records.saelens: models in SAELens's layout. Without sae-lens, the layout is checked against
its formulas written here in NumPy; with it (``pip install 'saejax[interop]'``), SAELens's own
loader reads every exported architecture and computes the same codes and reconstructions, and a
model SAELens saved reads back into saejax with the same outputs."""

import json

import jax.numpy as jnp
import numpy as np
import pytest
from safetensors.numpy import load_file

import saejax
from saejax import architectures, cli, train
from saejax.architectures import common
from saejax.config import TrainConfig
from saejax.data import normalize
from saejax.losses import hyper_of
from saejax.records import saelens
from saejax.records.models import ModelError

FAMILY = ("relu-l1", "topk", "batchtopk", "jumprelu")


def data(m=64, n=6, seed=0):
    return np.random.default_rng(seed).normal(size=(m, n)).astype(np.float32)


def family_config(arch, **kw):
    return TrainConfig(arch=arch, n_hidden=10, k=3, l1=0.1, l0=0.01, lam=0.0, steps=20,
                       batch_size=32, lr=1e-2, checkpoint_seconds=0, **kw)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One short run of each architecture of the family, and one of the sigmoid network."""
    root = tmp_path_factory.mktemp("saelens")
    out = {}
    for arch in FAMILY:
        train.run(family_config(arch), data(), workdir=root / arch, progress=False)
        out[arch] = root / arch
    train.run(TrainConfig(n_hidden=4, steps=3, checkpoint_seconds=0),
              np.random.default_rng(1).uniform(0.1, 0.9, (20, 6)), workdir=root / "sigmoid",
              progress=False)
    out["sigmoid"] = root / "sigmoid"
    return out


def numpy_saelens(tensors, cfg, x):
    """SAELens's inference, transcribed from its source (sae-lens 6.x): hidden_pre =
    (x - b_dec) W_enc + b_enc; standard: relu; topk: relu of the k largest hidden_pre;
    jumprelu: relu(hidden_pre) where hidden_pre > threshold; x_hat = f W_dec + b_dec."""
    x = np.asarray(x, np.float64)
    t = {k: np.asarray(v, np.float64) for k, v in tensors.items()}
    pre = (x - t["b_dec"]) @ t["W_enc"] + t["b_enc"]
    if cfg["architecture"] == "standard":
        f = np.maximum(pre, 0)
    elif cfg["architecture"] == "topk":
        kth = np.sort(pre, axis=1)[:, -cfg["k"]][:, None]
        f = np.where(pre >= kth, np.maximum(pre, 0), 0)
    else:
        f = np.maximum(pre, 0) * (pre > t["threshold"])
    return f, f @ t["W_dec"] + t["b_dec"]


def saejax_outputs(config, params, x):
    p = {k: jnp.asarray(v) for k, v in params.items()}
    f = architectures.encode(p, jnp.asarray(x), hyper_of(config), config.arch)
    return np.asarray(f), np.asarray(common.decode(p, f))


@pytest.mark.slow  # five short trainings (the runs fixture)
@pytest.mark.parametrize("arch", FAMILY)
def test_the_layout_computes_what_saejax_computes(runs, arch, tmp_path):
    out = saejax.export(runs[arch], tmp_path / "sl", format="saelens")
    assert sorted(p.name for p in out.iterdir()) == ["cfg.json", "sae_weights.safetensors"]
    tensors, cfg = load_file(str(out / "sae_weights.safetensors")), json.loads(
        (out / "cfg.json").read_text())
    assert cfg["architecture"] == saelens.TO_SAELENS[arch]
    assert (cfg["d_in"], cfg["d_sae"], cfg["dtype"]) == (6, 10, "float32")
    assert cfg["apply_b_dec_to_input"] is True and cfg["normalize_activations"] == "none"
    assert all(v.dtype == np.float32 for v in tensors.values())
    config, params = saejax.load(runs[arch])
    x = data(m=40, seed=3)
    f_ref, x_hat_ref = numpy_saelens(tensors, cfg, x)
    f, x_hat = saejax_outputs(config, params, x)
    assert np.count_nonzero(f) > 0
    np.testing.assert_allclose(f, f_ref, atol=1e-5)
    np.testing.assert_allclose(x_hat, x_hat_ref, atol=1e-5)
    # and back: saejax reads the layout into the same model
    config_back, params_back = saejax.load(out)
    assert config_back.arch == (arch if arch != "batchtopk" else "jumprelu")
    f_back, x_hat_back = saejax_outputs(config_back, params_back, x)
    np.testing.assert_allclose(f_back, f, atol=1e-6)
    np.testing.assert_allclose(x_hat_back, x_hat, atol=1e-6)


@pytest.mark.slow  # five short trainings (the runs fixture)
def test_the_sigmoid_network_is_refused_naming_the_native_export(runs, tmp_path):
    with pytest.raises(saelens.SAELensError, match="native format.*saejax export RUN OUT"):
        saejax.export(runs["sigmoid"], tmp_path / "sl", format="saelens")
    assert not (tmp_path / "sl").exists()
    code = cli.main(["export", str(runs["sigmoid"]), str(tmp_path / "cli"), "--format",
                     "saelens"])
    assert code == 2 and not (tmp_path / "cli").exists()


def test_a_standardization_is_folded_so_saelens_takes_the_raw_data():
    rng = np.random.default_rng(5)
    raw = rng.normal(3.0, 2.0, size=(50, 6)) * np.arange(1, 7)
    record = normalize.fit("standardize", raw)
    config = family_config("relu-l1")
    params = _random_params(rng, 6, 10)
    tensors, cfg = saelens.to_saelens(config, params, record)
    f_ref, x_hat_ref = numpy_saelens(tensors, cfg, raw)
    f, x_hat = saejax_outputs(config, params, normalize.apply(record, raw))
    np.testing.assert_allclose(f_ref, f, rtol=1e-10, atol=1e-10)
    # saejax reconstructs the standardized data; SAELens, the raw data
    std, mean = np.asarray(record["std"]), np.asarray(record["mean"])
    np.testing.assert_allclose(x_hat_ref, x_hat * std + mean, rtol=1e-10, atol=1e-10)


def _random_params(rng, n, h):
    return {"W1": rng.normal(size=(h, n)), "b1": rng.normal(size=h) * 0.1,
            "W2": rng.normal(size=(n, h)), "b2": rng.normal(size=n)}


def test_ufldl_normalization_and_foreign_settings_are_refused():
    params = _random_params(np.random.default_rng(0), 4, 5)
    with pytest.raises(saelens.SAELensError, match="ufldl way"):
        saelens.to_saelens(family_config("relu-l1"), params, {"kind": "ufldl", "std": 1.0})
    tensors, cfg = saelens.to_saelens(family_config("relu-l1"), params)
    with pytest.raises(saelens.SAELensError, match="'gated' has no saejax counterpart"):
        saelens.from_saelens({**cfg, "architecture": "gated"}, tensors)
    with pytest.raises(saelens.SAELensError, match="layer_norm"):
        saelens.from_saelens({**cfg, "normalize_activations": "layer_norm"}, tensors)
    with pytest.raises(saelens.SAELensError, match="cfg.json describes"):
        saelens.from_saelens({**cfg, "d_sae": 6}, tensors)


@pytest.mark.slow  # five short trainings (the runs fixture)
def test_an_export_never_overwrites(runs, tmp_path):
    out = saejax.export(runs["topk"], tmp_path / "sl", format="saelens")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(saelens.SAELensError, match="already holds"):
        saejax.export(runs["relu-l1"], out, format="saelens")
    assert before == {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(ModelError, match="unknown export format 'onnx'"):
        saejax.export(runs["topk"], tmp_path / "other", format="onnx")


# --- the real package ------------------------------------------------------------------------

def _sae_lens():
    return pytest.importorskip(
        "sae_lens", reason="sae-lens is not installed: pip install 'saejax[interop]' to check "
                           "the SAELens layout against SAELens's own loader")


@pytest.mark.slow
@pytest.mark.parametrize("arch", FAMILY)
def test_saelens_loads_each_export_and_computes_the_same(runs, arch, tmp_path):
    sae_lens = _sae_lens()
    import torch

    out = saejax.export(runs[arch], tmp_path / "sl", format="saelens")
    sae = sae_lens.SAE.load_from_disk(str(out))
    assert sae.cfg.architecture() == saelens.TO_SAELENS[arch]
    config, params = saejax.load(runs[arch])
    x = data(m=40, seed=4)
    f, x_hat = saejax_outputs(config, params, x)
    with torch.no_grad():
        f_sl = sae.encode(torch.from_numpy(x))
        x_hat_sl = sae.decode(f_sl)
    assert f_sl.dtype == torch.float32
    np.testing.assert_allclose(f_sl.numpy(), f, atol=1e-5)
    np.testing.assert_allclose(x_hat_sl.numpy(), x_hat, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("architecture", ["standard", "topk", "jumprelu"])
def test_a_model_saved_by_saelens_reads_back_with_the_same_outputs(architecture, tmp_path):
    sae_lens = _sae_lens()
    import torch

    torch.manual_seed(0)
    kw = {"k": 3} if architecture == "topk" else {}
    cfg_class = {"standard": sae_lens.StandardSAEConfig, "topk": sae_lens.TopKSAEConfig,
                 "jumprelu": sae_lens.JumpReLUSAEConfig}[architecture]
    sae = sae_lens.SAE.from_dict({**cfg_class(d_in=6, d_sae=10, **kw).to_dict()})
    with torch.no_grad():  # SAELens initializes b_enc, b_dec and thresholds at 0: move them
        for name, p in sae.named_parameters():
            if name in ("b_enc", "b_dec"):
                p.copy_(torch.randn_like(p) * 0.3)
            if name == "threshold":
                p.copy_(torch.rand_like(p) * 0.3)
    sae.save_model(str(tmp_path / "sl"))
    config, params = saejax.load(tmp_path / "sl")
    assert config.arch == saelens.FROM_SAELENS[architecture]
    x = data(m=40, seed=6)
    f, x_hat = saejax_outputs(config, params, x)
    with torch.no_grad():
        f_sl = sae.encode(torch.from_numpy(x))
        x_hat_sl = sae.decode(f_sl)
    assert np.count_nonzero(f) > 0
    np.testing.assert_allclose(f, f_sl.numpy(), atol=1e-5)
    np.testing.assert_allclose(x_hat, x_hat_sl.numpy(), atol=1e-5)
