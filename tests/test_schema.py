"""schema: a leaf module, importable without jax or the rest of saejax, whose lists are the ones the
rest of the package uses."""

import ast
import dataclasses
import subprocess
import sys

import jax
from helpers import PACKAGE, make_problem

import saejax
from saejax import metrics, penalties, schema
from saejax.config import TrainConfig


def test_schema_is_a_leaf_without_jax():
    tree = ast.parse((PACKAGE / "schema.py").read_text())
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
    assert imports == []


def test_schema_loads_alone_without_jax_or_saejax():
    # run as a file of its own in a fresh interpreter: nothing else may come in with it
    code = ("import importlib.util, sys\n"
            f"path = {str(PACKAGE / 'schema.py')!r}\n"
            "spec = importlib.util.spec_from_file_location('schema', path)\n"
            "schema = importlib.util.module_from_spec(spec)\n"
            "spec.loader.exec_module(schema)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'saejax')))\n"
            "print(schema.AXES)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["[]", "('rho', 'beta', 'lam', 'l1', 'k', 'l0', 'lr', 'seed')"]


def test_the_lists_are_the_ones_the_package_uses():
    params, x = make_problem()
    # their keys, traced without computing anything
    terms = jax.eval_shape(saejax.loss_terms, params, x, saejax.Hyper(0.05, 3.0, 1e-3))
    assert set(terms) == {*schema.TERMS, "rho_hat", "mean_l0", "fvu"}
    stats = jax.eval_shape(metrics.activation_stats, params, x, 0.05)
    assert set(stats) == {*schema.STATS, "rho_hat"}
    assert set(penalties.REGISTRY) == set(schema.PENALTIES)
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    assert set(schema.AXES) <= set(fields)  # each swept axis is a setting of that name
    for name, choices in (("arch", schema.ARCHS), ("penalty", schema.PENALTIES),
                          ("decoder", (*schema.DECODERS, "auto")),
                          ("optimizer", (*schema.OPTIMIZERS, "auto")),
                          ("schedule", schema.SCHEDULES), ("grad", schema.GRADS),
                          ("dtype", schema.DTYPES), ("normalize", schema.NORMALIZATIONS)):
        assert tuple(fields[name].metadata["choices"]) == choices, name
    for dataset in schema.DATASETS:
        TrainConfig(dataset=dataset)  # every one is accepted
