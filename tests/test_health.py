"""health: a run or sweep that finished without being a result says so (a warning naming the
cause and the setting, ``healthy`` and ``problems`` in its summary), and results print as a
few lines in a REPL."""

import json
import logging

import pytest
from helpers import small_config, sweep_config, sweep_data, tiny_data

from saejax import cli, health, sweeps, train


def test_the_rules_on_hand_made_summaries():
    lbfgs, adam = small_config(optimizer="lbfgs", beta=3.0, lam=1e-3), small_config(
        optimizer="adam", lr=0.5, batch_size=8)
    fine = {"dead_fraction": 0.96, "final_loss": 0.5, "initial_loss": 0.6}
    assert health.run_problems(fine, adam) == []
    dead = health.run_problems({**fine, "dead_fraction": 1.0}, adam)
    assert len(dead) == 1 and "every hidden unit is dead" in dead[0]
    assert "Lower the learning rate (now 0.5)" in dead[0]
    up = health.run_problems({**fine, "final_loss": 0.61}, lbfgs)
    assert len(up) == 1 and "J ended above where it began (0.61 > 0.6)" in up[0]
    assert "Lower beta (now 3) or lam (now 0.001)" in up[0]
    assert health.run_problems({**fine, "final_loss": 0.6}, adam) == []  # equal: not above
    rows = [{"diverged": False, "dead_fraction": 0.5}, {"diverged": True, "dead_fraction": 1.0},
            {"diverged": False, "dead_fraction": 1.0}]
    for row, lr, beta in zip(rows, (0.01, 1e30, 0.3), (3.0, 30.0, 10.0), strict=True):
        row.update(lr=lr, beta=beta, lam=1e-3, l1=0.5)
    sweep = health.sweep_problems(rows, adam)
    assert len(sweep) == 2
    assert "1 of 3 members diverged" in sweep[0] and "rows 1 of results.csv" in sweep[0]
    assert "1 of 3 members ended with every hidden unit dead (rows 2 " in sweep[1]
    # a swept setting is quoted as the flagged members had it, not as the base config has it
    assert "Lower the learning rate (1e+30 in those members), or leave out" in sweep[0]
    assert "Lower the learning rate (0.3 in those members), or lower their penalty" in sweep[1]
    sweep = health.sweep_problems(rows, lbfgs)
    assert "Lower beta (30 in those members) or lam (0.001 in those members)" in sweep[0]
    assert sweep[1].endswith("Lower beta (10 in those members) or lam (0.001 in those members).")
    relu = small_config(arch="relu-l1", optimizer="lbfgs", l1=0.5)
    assert "Lower l1 (now 0.5) or lam" in health.run_problems({**fine, "dead_fraction": 1.0}, relu)[0]
    assert health.sweep_problems(rows[:1], adam) == []


@pytest.mark.slow
def test_a_run_with_every_unit_dead_warns_and_records_it(tmp_path, caplog):
    cfg = small_config(optimizer="adam", lr=10.0, batch_size=8, steps=30, steps_per_call=10)
    with caplog.at_level(logging.WARNING, logger="saejax.health"):
        result = train.run(cfg, tiny_data(), tmp_path / "run", progress=False)
    assert result.summary["dead_fraction"] == 1.0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["healthy"] is False and len(summary["problems"]) >= 1
    assert any("every hidden unit is dead" in p for p in summary["problems"])
    assert any("Lower the learning rate (now 10)" in r.getMessage() for r in caplog.records)
    shown = repr(result)
    assert shown.count("\n") < 12 and len(shown) < 2000 and "W1" not in shown
    assert "healthy: False" in shown and str(tmp_path / "run") in shown


@pytest.mark.slow
def test_a_healthy_run_and_a_sweep_with_a_diverged_member(tmp_path, capsys):
    code = cli.main(["train", "--preset", "digits", "--num-examples", "200", "--n-hidden", "6",
                     "--steps", "30", "--workdir", str(tmp_path / "run"), "--no-progress"])
    assert code == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["healthy"] is True and summary["problems"] == []
    assert summary["final_loss"] < summary["initial_loss"]
    assert "WARNING" not in capsys.readouterr().err
    cfg = sweep_config(optimizer="sgd", steps=6, steps_per_call=6, dtype="float32")
    result = sweeps.sweep(cfg, sweep_data(), rho=[0.1], beta=[3.0], lr=[0.01, 1e30],
                          workdir=tmp_path / "sweep",
                          progress=False)
    assert [r["diverged"] for r in result.rows] == [False, True]
    assert result.summary["healthy"] is False
    assert "1 of 2 members diverged" in result.summary["problems"][0]
    saved = json.loads((tmp_path / "sweep" / "config.json").read_text())["summary"]
    assert saved["problems"] == result.summary["problems"]
    shown = repr(result)
    assert shown.startswith("SweepResult: 2 members (lr 2), 1 diverged") and "W1" not in shown
