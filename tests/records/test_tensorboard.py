"""records.tensorboard: summaries read back with TensorBoard's own reader, against metrics.jsonl and
the sweep's rows."""

import json
import sys

import numpy as np
import pytest
from helpers import tiny_data

from saejax import cli, train
from saejax.config import TrainConfig


@pytest.mark.slow
def test_a_run_writes_its_metrics_as_tensorboard_scalars(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = TrainConfig(n_hidden=5, rho=0.1, beta=3.0, lam=1e-3, dtype="float64", steps=6,
                      steps_per_call=3, checkpoint_every=3, checkpoint_seconds=0)
    result = train.run(cfg, tiny_data(), tmp_path, progress=False, tensorboard=True)
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if not r.get("final")]
    for tag in ("loss", "reconstruction", "weight_decay", "sparsity", "rho_hat_mean",
                "grad_norm"):
        scalars = events.Scalars(tag)
        assert [s.step for s in scalars] == [r["step"] for r in steps], tag
        # TensorBoard keeps float32 values
        np.testing.assert_allclose([s.value for s in scalars], [r[tag] for r in steps],
                                   rtol=1e-6, err_msg=tag)
    final = {tag: events.Scalars(f"final/{tag}") for tag in ("loss", "dead_fraction")}
    assert final["loss"][0].step == result.summary["steps"] == 6
    np.testing.assert_allclose(final["loss"][0].value, result.summary["final_loss"], rtol=1e-6)
    np.testing.assert_allclose(final["dead_fraction"][0].value,
                               result.summary["dead_fraction"], atol=1e-7)


def test_without_tensorboard_the_flag_says_what_to_install(tmp_path, monkeypatch, capsys):
    # the package made unimportable, as on an install without the extra
    monkeypatch.setitem(sys.modules, "tensorboard.summary.writer.event_file_writer", None)
    workdir = tmp_path / "run"
    assert cli.main(["train", "--preset", "digits", "--steps", "2", "--tensorboard",
                     "--workdir", str(workdir), "--no-progress"]) == 2
    assert "pip install 'saejax[tensorboard]'" in capsys.readouterr().err
    assert not workdir.exists()
    with pytest.raises(ValueError, match="needs the tensorboard package"):
        train.run(TrainConfig(steps=2), tiny_data(n=64), tmp_path / "api", progress=False,
                  tensorboard=True)
    assert not (tmp_path / "api").exists()


@pytest.mark.slow
def test_a_sweep_writes_each_members_results(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from saejax import sweeps

    cfg = TrainConfig(n_hidden=3, rho=0.1, beta=3.0, lam=1e-3, dtype="float64", steps=4,
                      steps_per_call=2, optimizer="adam", batch_size=8)
    result = sweeps.sweep(cfg, tiny_data(), rho=[0.05, 0.2], beta=[1.0, 3.0], chunk_size=2,
                          num_devices=1, workdir=tmp_path / "s", progress=False,
                          tensorboard=True)
    events = EventAccumulator(str(tmp_path / "s" / "tensorboard"))
    events.Reload()
    tags = events.Tags()["scalars"]
    for i, row in enumerate(result.rows):  # two blocks of two members
        prefix = f"member{i:04d} rho={row['rho']:.3g},beta={row['beta']:.3g}/"
        for key in ("final_loss", "reconstruction", "rho_hat_mean", "dead_fraction"):
            (scalar,) = events.Scalars(prefix + key)
            assert scalar.step == 4
            np.testing.assert_allclose(scalar.value, row[key], rtol=1e-6, atol=1e-7)
    assert len(tags) == len({t.split("/")[0] for t in tags}) * len(
        {t.split("/")[1] for t in tags})


def test_only_finite_real_values_become_scalars(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from saejax.records.tensorboard import ScalarWriter

    writer = ScalarWriter(tmp_path)
    writer.scalars(3, {"loss": 1.5, "steps": 7, "nan": float("nan"), "inf": float("inf"),
                       "diverged": True, "stop_reason": "budget"}, prefix="m/")
    writer.scalars(4, {"diverged": False})  # nothing to write: no event
    writer.close()
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert sorted(events.Tags()["scalars"]) == ["m/loss", "m/steps"]
    assert [(s.step, s.value) for s in events.Scalars("m/loss")] == [(3, 1.5)]
    assert [(s.step, s.value) for s in events.Scalars("m/steps")] == [(3, 7.0)]
