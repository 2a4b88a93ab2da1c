"""experiments.reproduce.reproduce_ufldl --fast: the rows that run on embedded data, as a table."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs the experiment scripts in fresh processes

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = [sys.executable, "-m", "experiments.reproduce.reproduce_ufldl"]


def test_the_fast_reproduction_passes_and_writes_its_table(tmp_path):
    done = subprocess.run([*SCRIPT, "--fast", "--workdir", str(tmp_path / "r")], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = json.loads((tmp_path / "r" / "table.json").read_text())
    assert [r["status"] for r in rows] == ["pass", "pass"]
    assert float(rows[0]["measured"]) < 1e-9  # UFLDL's gradient-check criterion
    j = float(rows[1]["measured"].removeprefix("J = "))
    assert abs(j - 0.379) <= 0.01  # the exercise on the embedded photographs
    assert (tmp_path / "r" / "ufldl_sparse_autoencoder" / "filters.png").exists()
    assert "| gradient check" in (tmp_path / "r" / "table.md").read_text()


def test_the_full_table_needs_its_data(tmp_path):
    done = subprocess.run([*SCRIPT, "--workdir", str(tmp_path / "r")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "needs --data" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "r").exists()
