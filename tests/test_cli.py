"""The `saejax gradcheck` command: tables, JSON and exit codes."""

import json
import subprocess
import sys

from saejax import cli


def test_gradcheck_json_passes(capsys):
    code = cli.main(["gradcheck", "--json", "--term", "loss", "sparsity", "--n-visible", "5",
                     "--n-hidden", "3", "--m", "4"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["passed"]
    assert [(c["penalty"], c["term"]) for c in out["checks"]] == [
        (p, t) for p in ("kl", "squared", "l1") for t in ("loss", "sparsity")
    ]
    for check in out["checks"]:
        d = check["differences"]
        assert d["analytic~autodiff"]["all"] < 1e-12
        assert d["analytic~numerical"]["all"] < 1e-9
        assert set(d["analytic~numerical"]) == {"W1", "b1", "W2", "b2", "all"}
    assert 1e-13 < out["sanity"]["difference"] < 1e-11


def test_gradcheck_fails_when_tolerance_is_exceeded(capsys):
    # float32 with a tiny finite-difference step: rounding swamps the central differences,
    # so the check must report failure and exit 1.
    code = cli.main(["gradcheck", "--dtype", "float32", "--eps", "1e-7", "--penalty", "kl"])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL" in out and "SOME CHECKS FAILED" in out


def test_gradcheck_table_output(capsys):
    assert cli.main(["gradcheck", "--penalty", "squared"]) == 0
    out = capsys.readouterr().out
    assert "loss | penalty=squared | float64" in out
    assert "analytic~autodiff" in out and "autodiff~numerical" in out
    assert "all checks passed" in out


def test_bad_input_exits_2_with_message():
    proc = subprocess.run(
        [sys.executable, "-m", "saejax.cli", "gradcheck", "--rho", "1.5"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert "rho must lie strictly inside (0, 1)" in proc.stderr
    assert "Traceback" not in proc.stderr
