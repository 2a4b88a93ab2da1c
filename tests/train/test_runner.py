"""Training: optimizer steps by hand, gradient modes, resume after SIGKILL, divergence, regression."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference

import saejax
from saejax import train
from saejax.config import TrainConfig
from saejax.data import load_digits
from saejax.records.checkpoints import Checkpointer, CheckpointError
from saejax.records.rundir import RunDirError
from saejax.runtime.clock import SaveClock


def tiny_data(m=40, n=16, seed=0):
    return np.random.default_rng(seed).uniform(0.05, 0.95, (m, n))


def small_config(**kw):
    base = dict(n_hidden=5, rho=0.1, beta=3.0, lam=1e-3, dtype="float64", steps_per_call=5,
                checkpoint_every=5, checkpoint_seconds=0, log_every=1)
    return TrainConfig(**{**base, **kw})


def test_sgd_step_is_params_minus_lr_grad():
    x = tiny_data()
    cfg = small_config(optimizer="sgd", lr=0.5, batch_size=None, steps=1)
    state = train.init_state(cfg, x.shape[1])
    hyper = saejax.Hyper(cfg.rho, cfg.beta, cfg.lam)
    new, metrics = train.make_train_step(cfg)(state, jnp.asarray(x), hyper)
    g = reference.grad(state.params, x, cfg.rho, cfg.beta, cfg.lam, "kl")
    for k in state.params:
        np.testing.assert_allclose(new.params[k], np.asarray(state.params[k]) - 0.5 * g[k],
                                   rtol=1e-12, atol=1e-14)
    assert int(new.step) == 1
    want_norm = np.sqrt(sum(np.sum(v**2) for v in g.values()))
    np.testing.assert_allclose(metrics["grad_norm"], want_norm, rtol=1e-12)


def test_first_adam_step_by_hand():
    # After one step Adam's bias-corrected moments are g and g^2: update = -lr g / (|g| + eps).
    x = tiny_data()
    cfg = small_config(optimizer="adam", lr=0.01, batch_size=None, steps=1)
    state = train.init_state(cfg, x.shape[1])
    new, _ = train.make_train_step(cfg)(state, jnp.asarray(x), saejax.Hyper(0.1, 3.0, 1e-3))
    g = reference.grad(state.params, x, 0.1, 3.0, 1e-3, "kl")
    for k in g:
        want = np.asarray(state.params[k]) - 0.01 * g[k] / (np.abs(g[k]) + 1e-8)
        np.testing.assert_allclose(new.params[k], want, rtol=1e-10, atol=1e-14)


def test_momentum_two_steps_by_hand():
    x = tiny_data()
    cfg = small_config(optimizer="momentum", lr=0.1, momentum=0.9, batch_size=None, steps=2)
    state = train.init_state(cfg, x.shape[1])
    step = train.make_train_step(cfg)
    hyper = saejax.Hyper(0.1, 3.0, 1e-3)
    s1, _ = step(state, jnp.asarray(x), hyper)
    s2, _ = step(s1, jnp.asarray(x), hyper)
    g0 = reference.grad(state.params, x, 0.1, 3.0, 1e-3, "kl")
    g1 = reference.grad(s1.params, x, 0.1, 3.0, 1e-3, "kl")
    for k in g0:
        want = np.asarray(state.params[k]) - 0.1 * g0[k] - 0.1 * (0.9 * g0[k] + g1[k])
        np.testing.assert_allclose(s2.params[k], want, rtol=1e-10, atol=1e-14)


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


def test_config_json_records_what_the_run_ran_on(tmp_path):
    import importlib.metadata
    import platform

    train.run(small_config(steps=2), tiny_data(), tmp_path, progress=False)
    record = json.loads((tmp_path / "config.json").read_text())
    env = record["segments"][0]["environment"]
    assert env["versions"]["python"] == platform.python_version()
    for name, module in (("jax", jax), ("numpy", np)):
        assert env["versions"][name] == module.__version__
    assert env["versions"]["optax"] == importlib.metadata.version("optax")
    assert env["devices"] == {"platform": jax.devices()[0].platform,
                              "kind": jax.devices()[0].device_kind,
                              "count": jax.device_count(), "processes": 1}
    source = Path(saejax.__file__).resolve().parents[1]
    head = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True,
                          text=True)
    if (source / ".git").exists() and head.returncode == 0:
        assert env["git_commit"] == head.stdout.strip()
        assert isinstance(env["git_dirty"], bool)
    else:
        assert env["git_commit"] is None


def test_minibatches_are_drawn_from_the_step():
    x = tiny_data()
    cfg = small_config(optimizer="sgd", lr=0.1, batch_size=8, steps=10)
    a = train.run(cfg, x, progress=False)
    b = train.run(cfg.replace(steps_per_call=3), x, progress=False)  # other chunking, same batches
    for k in a.state.params:
        np.testing.assert_array_equal(a.state.params[k], b.state.params[k])
    c = train.run(cfg.replace(seed=1), x, progress=False)
    assert not np.allclose(a.state.params["W1"], c.state.params["W1"])


def test_frozen_regression_three_adam_steps():
    # Frozen numbers of three Adam steps on a fixed problem (float64). If this fails and you did
    # not mean to change the initialization, the batches, the loss or the optimizer, it is a bug.
    x = tiny_data()
    cfg = small_config(optimizer="adam", lr=0.01, batch_size=8, steps=3, seed=7)
    res = train.run(cfg, x, progress=False)
    got = [r["loss"] for r in res.history if not r.get("final")]
    np.testing.assert_allclose(got, FROZEN_LOSSES, rtol=1e-10)
    np.testing.assert_allclose(float(jnp.sum(res.state.params["W1"])), FROZEN_W1_SUM, rtol=1e-10)


FROZEN_LOSSES = [8.35630666642492, 7.477917693575252, 6.780743586563321]
FROZEN_W1_SUM = 0.05214524405009824


def test_flax_module_matches_loss():
    from saejax.flax_module import SparseAutoencoder

    x = jnp.asarray(tiny_data(m=7, n=6))
    module = SparseAutoencoder(n_visible=6, n_hidden=4, dtype=jnp.float64)
    variables = module.init(jax.random.key(0), x)
    params = variables["params"]
    assert set(params) == {"W1", "b1", "W2", "b2"}
    r = np.sqrt(6) / np.sqrt(6 + 4 + 1)
    assert np.abs(params["W1"]).max() <= r and not np.any(params["b1"])
    hyper = saejax.Hyper(0.05, 3.0, 1e-3)
    got = module.apply(variables, x, hyper, method=SparseAutoencoder.loss)
    np.testing.assert_allclose(got, saejax.loss(dict(params), x, hyper), rtol=1e-14)
    np.testing.assert_allclose(got, reference.terms(params, x, 0.05, 3.0, 1e-3)["loss"],
                               rtol=1e-13)
    out = module.apply(variables, x)
    assert out["a2"].shape == (7, 4) and out["a3"].shape == (7, 6)


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
    assert "with --resume" in message and "smaller lam or beta" in message
    assert "another --workdir" in message
    resumed = train.run(cfg.replace(lr=1e-3), x, tmp_path, resume=True, progress=False)
    assert np.isfinite(resumed.summary["final_loss"]) and resumed.summary["steps"] == 50


@pytest.mark.slow
def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    x = tiny_data()
    cfg = small_config(steps=5)
    train.run(cfg, x, tmp_path, progress=False)
    for f in (tmp_path / "checkpoints" / "5").rglob("*"):
        if f.is_file() and f.name not in ("_CHECKPOINT_METADATA", "commit_success.txt"):
            f.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="cannot be restored"):
        train.run(cfg.replace(steps=10), x, tmp_path, resume=True, progress=False)


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_plain_orbax_reads_a_run_checkpoint_by_name(tmp_path, optimizer):
    import orbax.checkpoint as ocp

    cfg = small_config(optimizer=optimizer, batch_size=None, steps=4)
    state = train.run(cfg, tiny_data(), tmp_path / "run", progress=False).state
    # a user who knows orbax, not saejax: no target, the params under their names
    tree = ocp.StandardCheckpointer().restore((tmp_path / "run" / "checkpoints" / "4" /
                                               "default").absolute())
    assert set(tree) == {"step", "params", "opt_state", "key"}
    assert int(tree["step"]) == 4
    for k, v in state.params.items():
        np.testing.assert_array_equal(tree["params"][k], v)
    if optimizer == "lbfgs":  # the L-BFGS memory by its names too
        assert {"S", "Y", "value", "grad", "stop"} <= set(tree["opt_state"])
    # and saejax restores it into the state's structure bitwise
    like = train.init_state(cfg, tiny_data().shape[1])
    restored = Checkpointer(tmp_path / "run" / "checkpoints").restore(like)
    assert jax.tree.structure(restored) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(state), strict=True):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
    # a state of another shape (more hidden units) is refused, not reshaped
    other = train.init_state(cfg.replace(n_hidden=cfg.n_hidden + 1), tiny_data().shape[1])
    with pytest.raises(CheckpointError, match="cannot be restored"):
        Checkpointer(tmp_path / "run" / "checkpoints").restore(other)


def test_incompatible_resume_and_existing_checkpoints(tmp_path):
    x = tiny_data()
    train.run(small_config(steps=5), x, tmp_path, progress=False)
    with pytest.raises(RunDirError, match="already holds a training run; nothing was changed"):
        train.run(small_config(steps=5), x, tmp_path, progress=False)
    with pytest.raises(CheckpointError, match="cannot resume"):
        train.run(small_config(steps=10, n_hidden=6), x, tmp_path, resume=True, progress=False)
    with pytest.raises(RunDirError, match="cannot resume: .* holds no training run"):
        train.run(small_config(steps=5), x, tmp_path / "empty", resume=True, progress=False)


def test_bad_settings_and_data():
    x = tiny_data()
    with pytest.raises(ValueError, match="rho must lie strictly inside"):
        train.run(small_config(rho=1.5), x, progress=False)
    with pytest.raises(ValueError, match="full-batch"):
        train.run(small_config(optimizer="lbfgs", batch_size=8), x, progress=False)
    with pytest.raises(ValueError, match="exceeds the 40 training examples"):
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


def _cli(workdir, *extra):
    return [sys.executable, "-m", "saejax.cli", "train", "--preset", "digits",
            "--optimizer", "adam", "--lr", "0.01", "--batch-size", "64", "--steps", "600",
            "--steps-per-call", "10", "--checkpoint-every", "10", "--checkpoint-seconds", "0",
            "--keep-checkpoints", "2",
            "--log-every", "100", "--workdir", str(workdir), "--no-progress", *extra]


def test_save_clock_is_due_seconds_after_the_last_save():
    now = [100.0]
    clock = SaveClock(10.0, clock=lambda: now[0])
    assert not clock.due()
    now[0] = 109.9
    assert not clock.due()
    now[0] = 110.0
    assert clock.due()
    clock.saved()
    assert not clock.due()
    assert SaveClock(0.0).due()


@pytest.mark.slow
def test_checkpoint_seconds_leaves_out_checkpoints_not_the_result(tmp_path):
    x = tiny_data()
    every = train.run(small_config(steps=12), x, tmp_path / "every", progress=False)
    sparse = train.run(small_config(steps=12, checkpoint_seconds=3600.0), x, tmp_path / "sparse",
                       progress=False)
    assert Checkpointer(tmp_path / "every" / "checkpoints").all_steps() == [5, 10, 12]
    assert Checkpointer(tmp_path / "sparse" / "checkpoints").all_steps() == [12]  # the last
    for k in every.state.params:
        np.testing.assert_array_equal(every.state.params[k], sparse.state.params[k])


@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    env = dict(os.environ, SAEJAX_CACHE_DIR=str(tmp_path / "cache"))
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cli(killed), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 120
    ckpts = killed / "checkpoints"
    while time.time() < deadline:
        steps = [p for p in ckpts.glob("*") if p.name.isdigit()] if ckpts.exists() else []
        if len(steps) >= 2 and proc.poll() is None:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    at_kill = Checkpointer(ckpts).latest_step()
    assert 0 < at_kill < 600
    resumed = subprocess.run(_cli(killed, "--resume"), env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    clean = tmp_path / "clean"
    full = subprocess.run(_cli(clean), env=env, capture_output=True, text=True)
    assert full.returncode == 0, full.stderr

    cfg = TrainConfig(dataset="digits", rho=0.1, optimizer="adam", lr=0.01, batch_size=64)
    like = train.init_state(cfg, load_digits()[0].shape[1])
    a = Checkpointer(killed / "checkpoints").restore(like)
    b = Checkpointer(clean / "checkpoints").restore(like)
    assert int(a.step) == int(b.step) == 600
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])  # bitwise on CPU
    config = json.loads(Path(killed / "config.json").read_text())
    assert config["resumed_from"] == at_kill
    steps = [json.loads(line)["step"] for line in (killed / "metrics.jsonl").open()]
    assert steps == sorted(set(steps)), "metrics.jsonl repeats or loses steps after resume"


@pytest.mark.slow
def test_resume_requires_the_same_settings_and_survives_a_torn_metrics_line(tmp_path):
    x = tiny_data()
    train.run(small_config(steps=5), x, tmp_path, progress=False)
    with pytest.raises(CheckpointError, match=r"rho: 0.1 -> 0.2"):
        train.run(small_config(steps=10, rho=0.2), x, tmp_path, resume=True, progress=False)
    # A kill in the middle of a write leaves a partial last line: resume drops it.
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 7, "loss": 0.3')
    res = train.run(small_config(steps=10, lr=0.5), x, tmp_path, resume=True, progress=False)
    steps = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").open()]
    # the first run's final row (step 5) went with the rows after the checkpoint
    assert steps == list(range(10)) + [10] and int(res.state.step) == 10


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
