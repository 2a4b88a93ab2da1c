"""train.run: whole runs against the NumPy reference and autodiff, divergence, bad settings, and a
resumed L-BFGS run that replays the uninterrupted one."""

import hashlib
import json

import numpy as np
import pytest
import reference
from helpers import small_config, tiny_data

from saejax import train
from saejax.records.checkpoints import Checkpointer


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_analytic_and_autodiff_training_agree(optimizer):
    x = tiny_data()
    kw = dict(optimizer=optimizer, steps=20)
    if optimizer == "adam":
        kw.update(batch_size=16, lr=0.05, schedule="cosine")
    a = train.run(small_config(grad="analytic", **kw), x, progress=False)
    b = train.run(small_config(grad="autodiff", **kw), x, progress=False)
    for k in a.state.params:
        np.testing.assert_allclose(a.state.params[k], b.state.params[k], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose([r["loss"] for r in a.history], [r["loss"] for r in b.history],
                               rtol=1e-9)
    assert a.history[-1]["loss"] < a.history[0]["loss"]


@pytest.mark.slow
def test_lbfgs_reduces_loss_and_logs_metrics(tmp_path):
    x = tiny_data()
    res = train.run(small_config(steps=12), x, tmp_path, progress=False)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    # a row per iteration (J where it began), then the final row at J after the last update
    assert [r["step"] for r in rows] == list(range(12)) + [12]
    assert rows[-1]["final"] is True and not any("final" in r for r in rows[:-1])
    assert res.history == rows
    losses_ = [r["loss"] for r in rows]
    assert all(b <= a + 1e-12 for a, b in zip(losses_, losses_[1:]))  # line search: monotone
    summary = json.loads((tmp_path / "summary.json").read_text())
    for key in ("reconstruction", "weight_decay", "sparsity", "rho_hat_mean"):
        assert rows[-1][key] == summary[key], key
    assert rows[-1]["loss"] == summary["final_loss"] < rows[-2]["loss"]
    for key in ("final_loss", "reconstruction", "weight_decay", "sparsity", "rho_hat_mean",
                "dead_fraction", "steps", "wall_seconds"):
        assert key in summary
    assert summary["steps"] == 12
    # The summary's J, its terms and rho_hat, against the NumPy reference on the returned params.
    want = reference.terms(res.state.params, x, 0.1, 3.0, 1e-3)
    np.testing.assert_allclose(summary["final_loss"], want["loss"], rtol=1e-12)
    for key in ("reconstruction", "weight_decay", "sparsity"):
        # absolute to J's rounding: a small term (sparsity ~1e-3) carries J's last digits
        np.testing.assert_allclose(summary[key], want[key], rtol=1e-12,
                                   atol=1e-13 * want["loss"], err_msg=key)
    np.testing.assert_allclose(summary["rho_hat"], want["rho_hat"], rtol=1e-12)
    np.testing.assert_allclose(summary["rho_hat_mean"], want["rho_hat"].mean(), rtol=1e-12)
    assert summary["final_loss"] < losses_[0]
    for name in ("filters.png", "curves.png", "rho_hat.png", "config.json"):
        assert (tmp_path / name).is_file(), name
    assert Checkpointer(tmp_path / "checkpoints").all_steps() == [5, 10, 12]


def test_divergence_stops_and_keeps_last_good_checkpoint(tmp_path):
    x = tiny_data()
    cfg = small_config(optimizer="sgd", lr=1e30, batch_size=None, steps=50, dtype="float32")
    with pytest.raises(train.DivergenceError, match="NaN or Inf at step") as info:
        train.run(cfg, x, tmp_path, progress=False)
    assert "Lower the learning rate" in str(info.value)
    ckpt = Checkpointer(tmp_path / "checkpoints")
    step = ckpt.latest_step()
    assert step is not None and f"step {step})" in str(info.value)
    restored = ckpt.restore(train.init_state(cfg, x.shape[1]))
    assert all(np.all(np.isfinite(v)) for v in restored.params.values())
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["loss"]) for r in rows)
    # The message offers --resume only with what a resume accepts (a lower learning rate) and
    # sends a change of lam or beta to a new run directory; the resume it offers then works.
    message = str(info.value)
    assert "with resume=True" in message and "smaller lam or beta" in message
    assert "another workdir=" in message
    resumed = train.run(cfg.replace(lr=1e-3), x, tmp_path, resume=True, progress=False)
    assert np.isfinite(resumed.summary["final_loss"]) and resumed.summary["steps"] == 50


def test_bad_settings_and_data():
    x = tiny_data()
    with pytest.raises(ValueError, match="rho must lie strictly inside"):
        train.run(small_config(rho=1.5), x, progress=False)
    with pytest.raises(ValueError, match="full-batch"):
        train.run(small_config(optimizer="lbfgs", batch_size=8), x, progress=False)
    with pytest.raises(ValueError, match="exceeds the 40 training examples: pass a batch size of "
                                         "at most 40"):
        train.run(small_config(optimizer="adam", batch_size=100), x, progress=False)
    with pytest.raises(ValueError, match="NaN or Inf"):
        train.run(small_config(), np.where(x > 0.9, np.nan, x), progress=False)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        train.run(small_config(optimizer="rmsprop"), x, progress=False)
    with pytest.raises(ValueError, match="momentum must lie in"):
        train.run(small_config(optimizer="momentum", batch_size=8, momentum=1.5), x,
                  progress=False)
    with pytest.raises(ValueError, match="beta must be finite"):
        train.run(small_config(beta=float("inf")), x, progress=False)
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        train.run(small_config(steps=2.5), x, progress=False)


@pytest.mark.slow
def test_lbfgs_resumed_from_a_checkpoint_replays_the_same_run(tmp_path):
    # The L-BFGS state (memory, line search, direction) is checkpointed at iteration
    # boundaries, so a run resumed from its checkpoint at step 10 makes the very same ticks as
    # the uninterrupted run: bitwise the same params, iterations and evaluations.
    import shutil

    x = tiny_data()
    cfg = small_config(steps=15, keep_checkpoints=5)
    full = train.run(cfg, x, tmp_path / "full", progress=False)
    resumed_dir = tmp_path / "resumed"
    shutil.copytree(tmp_path / "full", resumed_dir)
    shutil.rmtree(resumed_dir / "checkpoints" / "15")  # as if killed after step 10's checkpoint
    resumed = train.run(cfg, x, resumed_dir, resume=True, progress=False)
    assert int(resumed.state.step) == 15 and resumed.summary["steps_this_run"] == 5
    for k, v in full.state.params.items():
        np.testing.assert_array_equal(resumed.state.params[k], v)
    for key in ("iterations", "evaluations", "stop_reason", "final_loss"):
        assert resumed.summary[key] == full.summary[key], key


@pytest.mark.slow  # several whole trainings
def test_an_array_from_python_is_recorded_as_one_and_normalized_as_configured(tmp_path):
    # UFLDL's normalizeData written here: each example's mean removed, clipped at 3 standard
    # deviations (of every entry, ddof=1 as MATLAB's std), mapped from [-1, 1] to [0.1, 0.9]
    from saejax.config import TrainConfig
    from saejax.records import models

    x = np.random.default_rng(0).normal(3.0, 2.0, size=(60, 8))
    centred = x - x.mean(axis=1, keepdims=True)
    s = 3 * centred.std(ddof=1)
    by_hand = (np.clip(centred, -s, s) / s + 1) * 0.4 + 0.1
    config = TrainConfig(n_hidden=3, steps=4, dtype="float64", normalize="ufldl")
    run = train.run(config, x, tmp_path / "run", progress=False)
    same = train.run(config.replace(normalize="none"), by_hand, progress=False,
                     data_info={"dataset": "array"})
    np.testing.assert_allclose(run.summary["final_loss"], same.summary["final_loss"],
                               rtol=1e-12)
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    assert record["config"]["dataset"] == "array" and record["config"]["num_examples"] == 60
    assert record["data"]["sha256"] == hashlib.sha256(x.tobytes()).hexdigest()
    assert models.load_normalization(tmp_path / "run")["kind"] == "ufldl"
    with pytest.raises(ValueError, match="--normalize ufldl"):  # raw data, sigmoid decoder
        train.run(config.replace(normalize="none"), x, progress=False)
