"""experiments.bench.gpu_check, the one call a lent GPU gets: its results file keeps the latest
row of each check, and with --quick every check the goals need runs to a measurement on the
CPU, so that a slip in the script is found here and not in the GPU's few minutes."""

import json
import subprocess

import pytest
from helpers import MNIST_DIR, REPO, require

from experiments.bench import gpu_check
from experiments.common import module_command, module_env


def _row(check, name, measured, precision="default", date="2026-12-01"):
    return {"check": check, "name": name, "measured": measured, "goal": "report",
            "precision": precision, "machine": "m", "measured_at": {"date": date, "commit": None}}


def test_a_run_replaces_the_rows_it_measured_and_keeps_the_others():
    earlier = [_row("step", "at 64-25", "1 ms"), _row("matmul", "peak", "100"),
               _row("matmul", "peak", "90", precision="highest")]
    latest = [_row("matmul", "peak", "120", date="2026-12-05")]
    merged = gpu_check.merge(earlier, latest)
    # in the order of CHECKS; the same check at another precision is another row
    assert [(r["check"], r["measured"], r["precision"]) for r in merged] == [
        ("matmul", "120", "default"), ("matmul", "90", "highest"), ("step", "1 ms", "default")]
    _, table = gpu_check.render(merged)
    assert table.count("\n| ") == 4 and "| peak | 120 | report | default | 2026-12-05 |" in table


def test_the_results_file_is_named_for_the_card():
    assert gpu_check.results_name("NVIDIA H200") == "gpu_check_h200"
    assert gpu_check.results_name("NVIDIA H100 80GB HBM3") == "gpu_check_h100_80gb_hbm3"
    assert gpu_check.results_name("cpu") == "gpu_check_cpu"


@pytest.mark.slow
def test_the_quick_run_measures_every_check_the_goals_need(tmp_path):
    require(MNIST_DIR)
    only = ["evals", "kernel", "exercise", "members", "loop", "matmul", "mnist", "steady",
            "mnist-adam", "step"]
    done = subprocess.run(
        module_command("experiments.bench.gpu_check", "--mnist", MNIST_DIR, "--quick", "--out",
                       tmp_path, "--only", *only, "--member-evals", "whole", "kernel"),
        cwd=REPO, env=module_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = json.loads((tmp_path / "gpu_check_cpu.json").read_text())["rows"]
    assert [r for r in rows if "FAILED" in r["measured"]] == []
    assert sorted({r["check"] for r in rows}) == sorted(only)
    exercise = [r["name"] for r in rows if r["check"] == "exercise"]
    assert any(n.endswith("member_eval whole") for n in exercise)
    assert any(n.endswith("member_eval kernel") for n in exercise)
    # the sweep's members equal standalone runs of the same settings
    (loop,) = [r["measured"] for r in rows if r["check"] == "loop"]
    assert "4 of 4 within 0.1%" in loop
    assert (tmp_path / "gpu_check_cpu.md").read_text().count("\n| ") == len(rows) + 1
