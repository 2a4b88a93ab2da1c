"""The spliced-in loss on a tiny random Llama and a random TopK autoencoder, against the NumPy
forward pass with the site replaced by hand (by the NumPy TopK reconstruction, and by zeros)."""

import jax
import numpy as np
import pytest
from architectures import family_reference as ref
from models import tiny_llama as tiny

from saejax import architectures, losses
from saejax.activations import cache, splice
from saejax.config import TrainConfig
from saejax.data import arrays
from saejax.data.errors import DataError

TRAIN = "the cat sat on the mat. " * 50
HELD = "a dog ran in the park, 12 times! " * 40


def nll(logits, tokens):
    lg = logits - logits.max(-1, keepdims=True)
    logp = lg - np.log(np.exp(lg).sum(-1, keepdims=True))
    return -np.take_along_axis(logp[:, :-1], tokens[:, 1:, None], -1)[..., 0].mean()


@pytest.fixture(scope="module", params=[False, True], ids=["bos-left", "bos-kept"])
def setup(request, tmp_path_factory):
    home = tmp_path_factory.mktemp("splice")
    weights = tiny.random_weights(seed=7)
    model = tiny.write_gguf(home / "tiny.gguf", weights)
    (home / "train.txt").write_text(TRAIN)
    (home / "held.txt").write_text(HELD)
    cfg = cache.CacheConfig(layer=1, site="resid_post", tokens=150, context=12,
                            keep_bos=request.param)
    cache.write(home / "acts", model, home / "train.txt", cfg, progress=False)
    _, info = arrays.load_array(home / "acts")
    return home, weights, info, request.param


def topk_model():
    """A random TopK autoencoder of the tiny model's width: 20 latents, k = 3."""
    config = TrainConfig(dataset="array", arch="topk", k=3, n_hidden=20, lam=0.0)
    return config, architectures.init_params(jax.random.PRNGKey(0), tiny.D, 20, "topk")


def test_losses_and_stats_equal_numpy(setup):
    home, weights, info, kept = setup
    config, params = topk_model()
    held = splice.prepare(info, home / "held.txt", tokens=60)
    got = splice.evaluate(held, config, params, {"kind": "none"}, batch_size=4)
    ctx = held.contexts
    p = ref.as_numpy(params)
    first = 0 if kept else 1

    def sae(value):  # the NumPy TopK reconstruction at the positions the SAE was trained on
        out = value.copy()
        x = value[:, first:].reshape(-1, tiny.D)
        f = ref.codes(p, x, "topk", k=3)
        out[:, first:] = (f @ p["W2"].T + p["b2"]).reshape(value[:, first:].shape)
        return out

    def zero(value):
        out = value.copy()
        out[:, first:] = 0.0
        return out

    clean = nll(tiny.reference(weights, ctx)[2], ctx)
    spliced = nll(tiny.reference(weights, ctx, replace=(1, "resid_post", sae))[2], ctx)
    zeroed = nll(tiny.reference(weights, ctx, replace=(1, "resid_post", zero))[2], ctx)
    assert len(ctx) == -(-60 // (11 + kept)) and got["tokens"] == len(ctx) * (11 + kept)
    for key, want in [("clean_loss", clean), ("spliced_loss", spliced),
                      ("zero_ablation_loss", zeroed)]:
        assert abs(got[key] - want) < 1e-4 * want, key
    assert abs(got["loss_recovered"] - (zeroed - spliced) / (zeroed - clean)) < 1e-3
    x = tiny.reference(weights, ctx)[1][1]["resid_post"][:, first:].reshape(-1, tiny.D)
    f = ref.codes(p, x, "topk", k=3)
    x_hat = f @ p["W2"].T + p["b2"]
    ev = 1 - ((x_hat - x) ** 2).sum() / ((x - x.mean(0)) ** 2).sum()
    assert abs(got["heldout_explained_variance"] - ev) < 1e-4
    assert abs(got["heldout_mean_l0"] - (f > 0).sum(1).mean()) < 1e-6
    assert abs(got["heldout_dead_fraction"] - (1 - (f > 0).any(0).mean())) < 1e-9
    assert got["held_out"] and got["bos_replaced"] == kept


def test_the_text_the_activations_were_cached_from_is_not_held_out(setup):
    home, _, info, _ = setup
    config, params = topk_model()
    seen = splice.prepare(info, home / "train.txt", tokens=20)
    got = splice.evaluate(seen, config, params, {"kind": "none"}, batch_size=4)
    assert got["held_out"] is False and got["text"] == str(home / "train.txt")
    held = splice.prepare(info, home / "held.txt", tokens=20)
    got = splice.evaluate(held, config, params, {"kind": "none"}, batch_size=4)
    assert got["held_out"] is True and got["text_sha256"] != seen.text["sha256"]


def test_members_that_differ_in_their_knob_share_one_program(setup):
    home, _, info, _ = setup
    held = splice.prepare(info, home / "held.txt", tokens=20)
    params = architectures.init_params(jax.random.PRNGKey(2), tiny.D, 20, "topk")
    runs = []
    for k in (2, 5, 9):
        config = TrainConfig(dataset="array", arch="topk", k=k, n_hidden=20, lam=0.0)
        runs.append(splice.evaluate(held, config, params, {"kind": "none"}, batch_size=4))
        if k == 2:
            compiled = (splice._baseline_pass._cache_size(), splice._member_pass._cache_size())
    assert (splice._baseline_pass._cache_size(), splice._member_pass._cache_size()) == compiled
    l0 = [r["heldout_mean_l0"] for r in runs]  # k is traced, and it counts
    assert l0[0] == 2 and l0[1] == 5 and 5 < l0[2] <= 9


def test_a_model_not_trained_on_activations_is_refused(setup):
    with pytest.raises(DataError, match="not trained on a language model's activations"):
        splice.prepare({"dataset": "array", "source": "x.npy"}, "pydoc:")
    home, _, info, _ = setup
    held = splice.prepare(info, home / "held.txt", tokens=20)
    config = TrainConfig(dataset="array", arch="topk", k=3, n_hidden=20, lam=0.0)
    params = architectures.init_params(jax.random.PRNGKey(0), tiny.D, 20, "topk")
    with pytest.raises(DataError, match="normalized as 'ufldl'"):
        splice.evaluate(held, config, params, {"kind": "ufldl"})


def test_a_float64_autoencoder_hands_the_model_float32_in_the_sites_units():
    # the model runs at its own width after the splice: a float64 reconstruction would carry
    # every later block into float64
    config = TrainConfig(dataset="array", arch="topk", k=3, n_hidden=20, lam=0.0)
    params = architectures.init_params(jax.random.PRNGKey(4), tiny.D, 20, "topk",
                                       dtype="float64")
    x = np.random.default_rng(5).normal(size=(6, tiny.D)).astype(np.float32)
    mean = np.linspace(-1, 1, tiny.D, dtype=np.float32)
    std = np.linspace(0.5, 2, tiny.D, dtype=np.float32)
    args = {"params": params, "mean": mean, "std": std, "dtype": np.zeros((), np.float64),
            "net": splice.Net("topk", "linear", False), "hyper": losses.hyper_of(config)}
    f, x_hat = splice._codes_and_reconstruction(x, args)
    assert x_hat.dtype == np.float32 and f.dtype == np.float64
    p = ref.as_numpy(params)
    want_f = ref.codes(p, (x.astype(np.float64) - mean) / std, "topk", k=3)
    want = (want_f @ p["W2"].T + p["b2"]) * std + mean
    np.testing.assert_allclose(f, want_f, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(x_hat, want, rtol=1e-5, atol=1e-5)
