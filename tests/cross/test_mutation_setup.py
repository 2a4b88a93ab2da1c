"""The mutation testing setup (make mutants, docs/mutants.md): every math module is mutated,
none hides a function from mutmut behind a decorator, and each listed equivalent mutant names a
mutated module and says why."""

import ast
import sys

from helpers import REPO

sys.path.insert(0, str(REPO / "tests"))
import mutants  # noqa: E402  (tests/mutants.py, the driver of make mutants)

MATH = ["saejax/penalties.py", "saejax/losses.py", "saejax/grads.py", "saejax/model.py",
        "saejax/metrics.py", "saejax/optim/linesearch.py", "saejax/optim/lbfgs.py",
        "saejax/optim/minibatch.py", "saejax/kernel.py", "saejax/data/pca.py",
        "saejax/data/whiten.py", "saejax/data/normalize.py", "saejax/data/synthetic.py",
        "saejax/models/llama.py", "saejax/activations/splice.py"]


def test_every_math_module_and_every_architecture_is_mutated():
    listed = set(mutants.modules())
    architectures = {f"saejax/architectures/{p.name}"
                     for p in (REPO / "saejax" / "architectures").glob("*.py")
                     if p.name not in ("__init__.py", "gradcheck.py")}
    assert architectures, "no architecture module found"
    assert set(MATH) | architectures <= listed, sorted(set(MATH) | architectures - listed)
    for path in listed:
        assert (REPO / path).is_file(), path


def test_no_mutated_function_is_decorated():
    # mutmut skips decorated functions (jit and custom_vjp are applied by call instead), all but
    # those whose one decorator is @classmethod or @staticmethod; a decorated class's methods
    # are mutated
    for path in mutants.modules():
        tree = ast.parse((REPO / path).read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                names = [getattr(d, "id", None) for d in node.decorator_list]
                assert names in ([], ["classmethod"], ["staticmethod"]), \
                    f"{path}: {node.name} is decorated"


def test_each_equivalent_mutant_names_a_mutated_module_and_a_reason():
    rows = mutants.equivalent()
    prefixes = {mutants.pattern(p)[:-1] for p in mutants.modules()}  # "saejax.optim.lbfgs."
    for name, reason in rows.items():
        assert any(name.startswith(prefix + "x") for prefix in prefixes), name
        assert len(reason.split()) >= 5, (name, reason)
    lines = [line for line in mutants.EQUIVALENT.read_text().splitlines()
             if line.startswith("| `")]
    assert len(lines) == len(rows)  # every row parses


def test_patterns_follow_mutmuts_names():
    assert mutants.pattern("saejax/optim/lbfgs.py") == "saejax.optim.lbfgs.*"


def test_a_sample_is_the_same_for_its_seed_and_another_seed_draws_others(monkeypatch):
    every = {f"saejax.penalties.x_kl__mutmut_{i}": 1 for i in range(50)}
    monkeypatch.setattr(mutants, "results", lambda: {"saejax/penalties.py": every,
                                                     "saejax/losses.py": {"x": 1}})
    first = mutants.sample(["saejax/penalties.py"], 10)
    assert first == mutants.sample(["saejax/penalties.py"], 10, seed=0)
    assert len(first) == len(set(first)) == 10 and set(first) <= set(every)
    assert set(mutants.sample(["saejax/penalties.py"], 10, seed=1)) != set(first)
    assert len(mutants.sample(["saejax/penalties.py"], 80)) == 50  # at most every mutant
