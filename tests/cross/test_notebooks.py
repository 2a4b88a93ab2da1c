"""Both notebooks execute from top to bottom (fast mode), and the numbers they print are right.

Each printed number is recomputed here, in NumPy, from what the notebook worked on: the tiny
problem of notebook 01, and the data and trained params that notebook 02 leaves in its run
directories.
"""

import ast
import json
import os
import re

import nbformat
import numpy as np
import pytest
import reference
from helpers import REPO
from nbclient import NotebookClient

from saejax import gradcheck, sweeps, train
from saejax.data import training_data
from saejax.metrics import DEAD_FRACTION_OF_RHO
from saejax.records.checkpoints import Checkpointer

pytestmark = pytest.mark.slow  # executes the notebooks

NOTEBOOKS = REPO / "notebooks"
NUMBER = r"(-?[\d.]+(?:e[-+]?\d+)?)"


def run_notebook(name, tmp_path, monkeypatch, **env):
    """Executes a notebook in fast mode, its outputs in tmp_path; returns (printed text, markdown)."""
    monkeypatch.setenv("SAEJAX_FAST", "1")
    monkeypatch.setenv("SAEJAX_NOTEBOOK_OUT", str(tmp_path))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    text = "\n".join(out.get("text", "") for out in outputs)
    markdown = [out["data"]["text/markdown"] for out in outputs
                if "text/markdown" in out.get("data", {})]
    return text, markdown


def numpy_terms(params, x, rho, beta, lam):
    """J's terms (dict of the four scalars) and rho_hat, from the shared NumPy reference."""
    out = reference.terms(params, x, rho, beta, lam)
    return {k: out[k] for k in ("reconstruction", "weight_decay", "sparsity", "loss")}, \
        out["rho_hat"]


def check_printed_run(line, workdir, x, config):
    """``J = ...`` printed for a train.run against J recomputed from its last checkpoint."""
    like = train.init_state(config, x.shape[1])
    ckpt = Checkpointer(workdir / "checkpoints")
    params = ckpt.restore(like).params
    ckpt.close()
    terms, rho_hat = numpy_terms(params, x, config.rho, config.beta, config.lam)
    # Printed to 4 decimals; float32 training against this float64 recomputation adds ~1e-6.
    assert float(re.search(rf"J = {NUMBER}", line)[1]) == pytest.approx(terms["loss"], abs=6e-5)
    return terms, rho_hat


def test_sparsity_gradient_notebook(tmp_path, monkeypatch):
    text, _ = run_notebook("01_sparsity_gradient.ipynb", tmp_path, monkeypatch)
    assert text.count("PASS") == 3 and "FAIL" not in text
    assert (tmp_path / "penalties.png").is_file()

    # Section 1: the terms of J and rho_hat of the tiny problem, recomputed in NumPy.
    params, x = gradcheck.problem(n_visible=6, n_hidden=3, m=5, seed=0)
    terms, rho_hat = numpy_terms(params, x, rho=0.05, beta=3.0, lam=1e-3)
    printed = ast.literal_eval(re.search(r"\{'loss'.*\}", text)[0])
    assert printed == pytest.approx(terms, rel=1e-12)
    printed_rho_hat = np.array(re.search(r"rho_hat = \[([^\]]*)\]", text)[1].split(), float)
    np.testing.assert_allclose(printed_rho_hat, rho_hat, rtol=0, atol=1e-8)
    # Section 2: the KL penalty per unit, both lines against the formula.
    kl = reference.penalty_value("kl", 0.05, rho_hat)
    for label in ("saejax.kl_divergence:", "formula             :"):
        line = re.search(re.escape(label) + r" \[([^\]]*)\]", text)[1]
        np.testing.assert_allclose(np.array(line.split(), float), kl, rtol=0, atol=1e-8)
    # Section 3: dKL/drho_hat = -rho/rho_hat + (1-rho)/(1-rho_hat), both printed lines.
    dkl = reference.penalty_derivative("kl", 0.05, rho_hat)
    for label in ("hand-written:", "jax.grad    :"):
        line = re.search(re.escape(label) + r" \[([^\]]*)\]", text)[1]
        np.testing.assert_allclose(np.array(line.split(), float), dkl, rtol=0, atol=1e-8)
    # Section 4: the case split, l != i vanishes exactly.
    assert float(re.search(rf"largest entry with l != i: {NUMBER}", text)[1]) == 0.0
    # Section 5: row 0 of the sparsity term's gradient, beta dKL_0 (1/m) sum_k s'(z2_0) x_k,
    # in all three columns; and the relative differences.
    x = np.asarray(x)
    a2, _ = reference.forward(params, x)
    row0 = 3.0 * dkl[0] * (a2[:, 0] * (1 - a2[:, 0])) @ x / len(x)
    table = re.findall(rf"^\s*(\d+)\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}$", text, re.MULTILINE)
    assert [int(j) for j, *_ in table] == list(range(6))
    np.testing.assert_allclose(np.array([cols for _, *cols in table], float),
                               np.repeat(row0[:, None], 3, axis=1), rtol=0, atol=2e-10)
    assert float(re.search(rf"analytic~autodiff {NUMBER}", text)[1]) < 1e-12
    assert float(re.search(rf"analytic~numerical {NUMBER}", text)[1]) < 1e-9


def markdown_table(markdown):
    """The rows of a markdown table as lists of floats (header and rule left out)."""
    lines = [line for line in markdown.splitlines() if line.startswith("|")][2:]
    return [[float(cell) for cell in line.strip("|").split("|")] for line in lines]


def test_train_and_sweep_notebook(tmp_path, monkeypatch, shared_data):
    text, markdown = run_notebook("02_train_and_sweep.ipynb", tmp_path, monkeypatch,
                                  SAEJAX_MNIST=str(shared_data / "mnist"))
    (runs,) = tmp_path.glob("02_train_and_sweep-*")
    lines = [line for line in text.splitlines() if line.startswith("J = ")]
    assert len(lines) == 2, text

    # Section 1: J, its terms and mean rho_hat of the trained patches run.
    config = train.saved_config(runs / "patches")
    assert (config.penalty, config.decoder, config.tied) == ("kl", "sigmoid", False)
    x, _ = training_data("patches", None, config.num_examples, config.patch_size, config.seed)
    terms, rho_hat = check_printed_run(lines[0], runs / "patches", x, config)
    printed = dict(re.findall(rf"(reconstruction|weight decay|sparsity) {NUMBER}", lines[0]))
    assert float(printed["reconstruction"]) == pytest.approx(terms["reconstruction"], abs=6e-5)
    assert float(printed["weight decay"]) == pytest.approx(terms["weight_decay"], abs=6e-5)
    assert float(printed["sparsity"]) == pytest.approx(terms["sparsity"], abs=6e-5)
    mean_rho_hat = float(re.search(rf"mean rho_hat {NUMBER}", lines[0])[1])
    assert mean_rho_hat == pytest.approx(rho_hat.mean(), abs=6e-5)

    # Section 2: every row of the sweep's table, recomputed from that member's saved params.
    table = markdown_table(markdown[0])
    assert int(re.search(r"(\d+) members in", text)[1]) == len(table) == 9  # 3 x 3 in fast mode
    assert sorted({r for r, *_ in table}) == pytest.approx(np.geomspace(0.005, 0.2, 3), rel=1e-2)
    # rho and beta are printed to 3 digits; the recomputation uses results.json's exact values.
    members = json.loads((runs / "sweep" / "results.json").read_text())
    for i, (row, member) in enumerate(zip(table, members, strict=True)):
        rho, beta, reconstruction, mean_rho_hat, dead = row
        assert (rho, beta) == pytest.approx((member["rho"], member["beta"]), rel=5e-3), i
        terms, rho_hat = numpy_terms(sweeps.load_member(runs / "sweep", i), x, member["rho"],
                                     member["beta"], config.lam)
        assert reconstruction == pytest.approx(terms["reconstruction"], abs=6e-5), i
        assert mean_rho_hat == pytest.approx(rho_hat.mean(), abs=6e-5), i
        dead_units = np.mean(rho_hat < DEAD_FRACTION_OF_RHO * member["rho"])
        assert dead == pytest.approx(dead_units, abs=0.005), i

    # Section 3: J of the MNIST run.
    mconfig = train.saved_config(runs / "mnist")
    xm, _ = training_data("mnist", shared_data / "mnist", mconfig.num_examples)
    check_printed_run(lines[1], runs / "mnist", xm, mconfig)
    steps = json.loads((runs / "mnist" / "summary.json").read_text())["steps"]
    assert f"after {steps} iterations" in lines[1] and 0 < steps <= mconfig.steps
    assert "MNIST not found" not in text


def test_train_and_sweep_notebook_without_mnist(tmp_path, monkeypatch):
    text, _ = run_notebook("02_train_and_sweep.ipynb", tmp_path, monkeypatch,
                           SAEJAX_MNIST=str(tmp_path / "no-mnist"))
    assert "MNIST not found" in text and "Skipped." in text


@pytest.mark.parametrize("name", ["01_sparsity_gradient.ipynb", "02_train_and_sweep.ipynb"])
def test_notebooks_define_nothing(name):
    # Notebooks only call saejax: no function or class definitions of their own.
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert "def " not in cell.source and "class " not in cell.source, cell.source
    assert os.path.getsize(NOTEBOOKS / name) < 2_000_000
