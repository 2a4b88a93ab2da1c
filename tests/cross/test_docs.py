"""The documentation site builds strictly, and every Python block of its pages runs.

Each page's ```python blocks run, in order, as one script in a fresh process and an empty
working directory, as a reader would run them, and must end without an error. At least one
printed value per page is then checked against an independent computation: the NumPy
reference of the model (tests/reference.py), scikit-learn's digits read directly, the exported
weights read with safetensors, or a hand-worked value.
"""

import ast
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import reference

pytestmark = pytest.mark.slow  # builds the site and runs every page

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def pages_with_python() -> list[Path]:
    """The pages that hold ```python blocks, in the order of the site's navigation."""
    nav = re.findall(r"([\w/-]+\.md)\s*$", (REPO / "mkdocs.yml").read_text(), flags=re.M)
    order = {name: i for i, name in enumerate(nav)}
    pages = [p for p in DOCS.rglob("*.md") if python_blocks(p.read_text())]
    return sorted(pages, key=lambda p: (order.get(p.relative_to(DOCS).as_posix(), len(order)),
                                        p.as_posix()))


def mkdocs() -> str | None:
    beside = Path(sys.executable).parent / "mkdocs"
    return str(beside) if beside.exists() else shutil.which("mkdocs")


def digits(m: int):
    """The first m of scikit-learn's digits, scaled to [0, 1], and their labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data[:m] / 16.0, d.target[:m]


def loaded(path: Path, member=None) -> dict:
    import saejax

    return {k: np.asarray(v) for k, v in saejax.load(path, member=member)[1].items()}


# --- the checks, one per page: (printed lines, the page's working directory) ---------------

def check_model(lines, cwd):
    rng = np.random.default_rng(0)  # the page's own data and params, rebuilt
    x = rng.uniform(0.05, 0.95, size=(200, 8))
    params = {"W1": rng.normal(0.0, 0.1, (5, 8)), "b1": np.zeros(5),
              "W2": rng.normal(0.0, 0.1, (8, 5)), "b2": np.zeros(8)}
    ref = reference.terms(params, x, rho=0.1, beta=3.0, lam=1e-3)
    J, recon, sparsity = map(float, lines[0].split())
    np.testing.assert_allclose([J, recon, sparsity],
                               [ref["loss"], ref["reconstruction"], ref["sparsity"]], rtol=1e-5)
    assert lines[1] == "(200, 5)"
    assert float(lines[2]) < 1e-5  # analytic against autodiff, float32
    assert lines[3] == "{'W1': (5, 8), 'b1': (5,), 'W2': (8, 5), 'b2': (8,)}"


def check_numerics(lines, cwd):
    assert float(lines[0]) == 1e-6
    rho = float(np.float32(0.01))  # the page's rho, as float32 arithmetic holds it
    rho_hat = np.array([0.0, 1e-9, 0.01, 0.0100001, 0.2, 1.0], dtype=np.float32)
    # the float32 clip, then the exact divergence and slope of the clipped values
    clipped = np.clip(rho_hat, np.float32(1e-6), np.float32(1 - 1e-6)).astype(np.float64)
    kl, slope = ast.literal_eval(lines[1]), ast.literal_eval(lines[2])
    np.testing.assert_allclose(kl, reference.penalty_value("kl", rho, clipped),
                               rtol=1e-5, atol=1e-9)
    assert kl[2] == 0.0 and min(kl) >= 0.0
    inside = np.array([False, False, True, True, True, False])
    np.testing.assert_allclose(slope, np.where(inside, -rho / clipped + (1 - rho) / (1 - clipped),
                                               0.0), rtol=1e-4, atol=1e-9)


def check_gradcheck(lines, cwd):
    numerical = ast.literal_eval(lines[0])
    x1, x2 = 2.0, 88.0  # h = x1^2 + 3 x1 x2: dh/dx1 = 2 x1 + 3 x2, dh/dx2 = 3 x1
    np.testing.assert_allclose(numerical, [2 * x1 + 3 * x2, 3 * x1], rtol=1e-9)
    passed, difference = lines[1].split()
    assert passed == "True" and float(difference) < 1e-9  # UFLDL's criterion


def check_training(lines, cwd):
    J, stop = lines[0].split()
    assert stop == "budget"
    x, _ = digits(300)
    ref = reference.terms(loaded(cwd / "runs/digits"), x, rho=0.1, beta=3.0, lam=1e-4)
    np.testing.assert_allclose(float(J), ref["loss"], rtol=1e-5)
    assert lines[1] == "(25, 64)"
    assert "rho" in lines[2]
    assert lines[3] == "256 False True"
    # plain orbax read the tiny run's checkpoint by name: saejax.load's W1, bit for bit
    assert lines[4] == "['key', 'opt_state', 'params', 'sha256', 'since_fired', 'step'] 5"
    w1 = loaded(cwd / "runs/tiny")["W1"]
    assert w1.shape == (4, 6)
    assert ast.literal_eval(lines[5]) == w1.tolist()


def check_models(lines, cwd):
    from safetensors.numpy import load_file

    w = load_file(str(cwd / "exported/mine/weights.safetensors"))
    cfg = json.loads((cwd / "exported/mine/cfg.json").read_text())
    assert (cfg["n_visible"], cfg["n_hidden"]) == (64, 25)
    x, _ = digits(300)
    a2 = reference.sigmoid(x @ w["W1"].astype(np.float64).T + w["b1"])
    np.testing.assert_allclose([float(lines[0]), float(lines[1])], [a2.mean()] * 2, rtol=1e-5)


def check_sweeps(lines, cwd):
    best, rho, beta, J = lines[0].split()
    assert lines[1] == f"{rho} {beta}"
    x, _ = digits(300)
    ref = reference.terms(loaded(cwd / "runs/sweep", int(best)), x, float(rho), float(beta),
                          lam=1e-4)
    np.testing.assert_allclose(float(J), ref["loss"], rtol=1e-5)


def check_data(lines, cwd):
    assert lines[0] == "(500, 64) True True"  # sampleIMAGES.m rescales into [0.1, 0.9]
    shape, total = lines[2].rsplit(" ", 1)
    x, _ = digits(1797)
    assert shape == "(1797, 64)"
    assert math.isclose(float(total), x.sum(), rel_tol=1e-12)
    assert lines[3] == "True"


def check_softmax_stacked(lines, cwd):
    from safetensors.numpy import load_file

    w = {k: v.astype(np.float64) for k, v in
         load_file(str(cwd / "exported/stack/weights.safetensors")).items()}
    x, y = digits(300)
    a = reference.sigmoid(x @ w["layers.0.W"].T + w["layers.0.b"])
    predicted = np.argmax(a @ w["softmax.W"].T + w["softmax.b"], axis=1)
    # float32 against float64 may flip a near tie
    assert abs(float(lines[1]) - np.mean(predicted == y)) <= 1 / 300 + 1e-12
    assert 0.5 < float(lines[0]) <= 1.0  # before fine-tuning: ten classes, far above chance


def check_synthetic(lines, cwd):
    from safetensors.numpy import load_file
    from scipy.optimize import linear_sum_assignment

    mcc, recovered, f1 = (float(v) for v in lines[0].split())
    assert lines[1] == "topk 2 ['W1', 'W2', 'b1', 'b2']"
    w = {k: v.astype(np.float64) for k, v in
         load_file(str(cwd / "exported/small-saelens/sae_weights.safetensors")).items()}
    d = np.load(cwd / "sets/small/dictionary.npy").astype(np.float64)
    cos = np.abs((d / np.linalg.norm(d, axis=1, keepdims=True))
                 @ (w["W_dec"] / np.linalg.norm(w["W_dec"], axis=1, keepdims=True)).T)
    rows, cols = linear_sum_assignment(-cos)
    assert math.isclose(mcc, cos[rows, cols].mean(), rel_tol=1e-6)
    assert math.isclose(recovered, np.mean(cos[rows, cols] > 0.9), rel_tol=1e-12)
    x = np.load(cwd / "sets/small/heldout_x.npy").astype(np.float64)
    true = np.load(cwd / "sets/small/heldout_codes.npy") > 0
    pre = (x - w["b_dec"]) @ w["W_enc"] + w["b_enc"]
    fires = (pre >= np.sort(pre, axis=1)[:, -2][:, None]) & (pre > 0)  # top 2 of each example
    tp = np.sum(fires[:, cols] & true[:, rows], axis=0)
    wrong = np.sum(fires[:, cols] ^ true[:, rows], axis=0)
    assert math.isclose(f1, np.mean(2 * tp / np.maximum(2 * tp + wrong, 1)), rel_tol=1e-6)


CHECKS = {
    "model.md": check_model,
    "numerics.md": check_numerics,
    "gradcheck.md": check_gradcheck,
    "training.md": check_training,
    "models.md": check_models,
    "synthetic.md": check_synthetic,
    "sweeps.md": check_sweeps,
    "data.md": check_data,
    "softmax-stacked.md": check_softmax_stacked,
}


def test_mkdocs_builds_strictly(tmp_path):
    exe = mkdocs()
    if exe is None:
        pytest.skip("mkdocs is not installed: pip install -e '.[docs]'")
    proc = subprocess.run([exe, "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (tmp_path / "site/index.html").is_file()
    assert (tmp_path / "site/api/core/index.html").is_file()


def test_every_page_that_runs_python_has_a_check():
    names = [p.relative_to(DOCS).as_posix() for p in pages_with_python()]
    assert names, "no docs page has a python block"
    assert set(names) <= set(CHECKS), f"pages without a check: {set(names) - set(CHECKS)}"


@pytest.mark.parametrize("page", pages_with_python(), ids=lambda p: p.relative_to(DOCS).as_posix())
def test_the_python_blocks_of_a_page_run(page, tmp_path):
    script = "\n\n".join(python_blocks(page.read_text()))
    (tmp_path / "page.py").write_text(script)
    proc = subprocess.run([sys.executable, "page.py"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    CHECKS[page.relative_to(DOCS).as_posix()](proc.stdout.splitlines(), tmp_path)


def test_every_module_has_its_place_in_the_api_reference():
    # the README and the site's front page promise that the API reference shows every docstring
    pages = "".join(p.read_text() for p in (DOCS / "api").glob("*.md"))
    shown = set(re.findall(r"^::: (saejax\S*)$", pages, re.M))
    modules = {".".join(p.relative_to(REPO).with_suffix("").parts)  # __main__ runs the command
               for p in (REPO / "saejax").rglob("*.py")
               if p.name not in ("__init__.py", "__main__.py")}
    assert modules, "no module found"
    assert not modules - shown, f"modules without an API entry: {sorted(modules - shown)}"
    assert not shown - modules - {"saejax", "saejax.architectures"}, sorted(shown - modules)


def test_a_function_jitted_by_call_keeps_one_docstring_for_help_and_the_api_reference():
    # `f = jax.jit(_f)` (so that mutation testing reaches _f) is an attribute to the API
    # reference, which reads the string after it; help() reads _f's, which jit carries over
    import importlib
    import inspect

    checked = 0
    for path in sorted((REPO / "saejax").rglob("*.py")):
        body = ast.parse(path.read_text()).body
        module = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for node, after in zip(body, body[1:] + [None]):
            if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                    and ast.unparse(node.value.func) in ("jax.jit", "jax.custom_vjp")):
                continue
            name = node.targets[0].id
            if name.startswith("_"):
                continue
            assert isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant), \
                f"{module}.{name} has no docstring for the API reference"
            runtime = inspect.getdoc(getattr(importlib.import_module(module), name))
            assert inspect.cleandoc(after.value.value) == runtime, f"{module}.{name}"
            checked += 1
    assert checked >= 4  # llama's activations and logits, jumprelu's jumprelu and step
