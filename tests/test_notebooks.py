"""Both notebooks execute from top to bottom (fast mode), and their checks come out right."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def run_notebook(name, tmp_path, monkeypatch, **env):
    monkeypatch.setenv("SAEJAX_FAST", "1")
    monkeypatch.setenv("SAEJAX_NOTEBOOK_OUT", str(tmp_path))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    return "\n".join(
        out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    )


def test_sparsity_gradient_notebook(tmp_path, monkeypatch):
    text = run_notebook("01_sparsity_gradient.ipynb", tmp_path, monkeypatch)
    assert text.count("PASS") == 3 and "FAIL" not in text
    assert (tmp_path / "penalties.png").is_file()


def test_train_and_sweep_notebook(tmp_path, monkeypatch, shared_data):
    text = run_notebook("02_train_and_sweep.ipynb", tmp_path, monkeypatch,
                        SAEJAX_MNIST=str(shared_data / "mnist"))
    assert "J = " in text and "members in" in text
    assert "MNIST not found" not in text


def test_train_and_sweep_notebook_without_mnist(tmp_path, monkeypatch):
    text = run_notebook("02_train_and_sweep.ipynb", tmp_path, monkeypatch,
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
