"""Every Python block of the README runs, in order, in a fresh process, as a reader would.

The blocks share one session (a later one may use what an earlier one trained), run in an
empty working directory, and must end without an error; the printed values are checked
against the run directories they describe.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs the README in a fresh process

README = Path(__file__).resolve().parents[2] / "README.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_the_readme_has_its_python_blocks():
    blocks = python_blocks(README.read_text())
    assert len(blocks) >= 3  # first hour, your own data, the Python API in brief
    assert any("Your first hour" in part for part in README.read_text().split("## "))


def test_every_python_block_of_the_readme_runs(tmp_path):
    script = "\n\n".join(python_blocks(README.read_text()))
    (tmp_path / "readme.py").write_text(script)
    proc = subprocess.run([sys.executable, "readme.py"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = proc.stdout.splitlines()
    # step 1 printed the final J and the stop reason, as summary.json holds them
    summary = json.loads((tmp_path / "runs/first/summary.json").read_text())
    assert lines[0] == f"{summary['final_loss']} {summary['stop_reason']}"
    # step 2 listed the run directory
    for name in ("config.json", "metrics.jsonl", "summary.json", "filters.png", "curves.png"):
        assert name in lines[1]
    # step 6's check passed
    assert lines[3].startswith("True ")
    # "Your own data" printed its run's final J and mean rho_hat
    mine = json.loads((tmp_path / "runs/mine/summary.json").read_text())
    assert lines[4] == f"{mine['final_loss']} {mine['rho_hat_mean']}"
    topk = json.loads((tmp_path / "runs/mine-topk/summary.json").read_text())
    assert lines[5] == f"{topk['mean_l0']} {topk['fvu']}" and topk["mean_l0"] <= 4
    recorded = json.loads((tmp_path / "runs/mine-topk/config.json").read_text())
    assert recorded["config"]["dataset"] == "array" and recorded["config"]["arch"] == "topk"
    assert (tmp_path / "runs/first-sweep/results.csv").is_file()
