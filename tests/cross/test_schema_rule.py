"""One definition of every rule: the key lists live in saejax.schema (and the resume rules in
saejax.config), and no other module of the package spells a copy of them out.

Every tuple, list or set literal of three or more strings in saejax/ is read from the source;
one that holds the names of a schema list in order (or all of a set of them) is a second copy
that would drift from the first.
"""

import ast
from pathlib import Path

from helpers import PACKAGE

from saejax import config, schema

LISTS = {name: value for name, value in vars(schema).items()
         if name.isupper() and isinstance(value, tuple)}
LISTS["RECORD_SETTINGS"] = config.RECORD_SETTINGS
LISTS["RUN_RESUMABLE"] = config.RUN_RESUMABLE
HOMES = {"schema.py": set(vars(schema)), "config.py": {"RECORD_SETTINGS", "RUN_RESUMABLE"}}


def string_literals(path: Path, skip: str = "") -> list[tuple[int, tuple]]:
    """(line, strings) of every tuple/list/set literal of three or more string constants,
    but the value of a module-level assignment to ``skip`` (``__all__`` names functions)."""
    tree = ast.parse(path.read_text())
    skipped = {id(n.value) for n in tree.body if isinstance(n, ast.Assign)
               and any(getattr(t, "id", "") == skip for t in n.targets)}
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Tuple | ast.List | ast.Set) and len(node.elts) >= 3 and all(
                isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
            found.append((node.lineno, tuple(e.value for e in node.elts)))
    return found


def copies(strings: tuple) -> list[str]:
    """The schema lists that ``strings`` spells out: all of their names, in their order."""
    out = []
    for name, names in LISTS.items():
        if len(names) >= 3 and set(names) <= set(strings):
            order = [s for s in strings if s in names]
            if tuple(order) == names or len(set(names)) == len(names) and set(order) == set(names):
                out.append(name)
    return out


def test_copies_finds_a_planted_copy():
    assert copies(("loss", "reconstruction", "weight_decay", "sparsity")) == ["TERMS"]
    assert "AXES" in copies(("rho", "beta", "lam", "l1", "k", "l0", "lr", "seed", "extra"))
    assert copies(("loss", "reconstruction", "rho")) == []


def test_no_module_spells_out_a_schema_list():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name in HOMES and path.parent == PACKAGE:
            continue
        for line, strings in string_literals(path, skip="__all__"):
            for name in copies(strings):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line} spells out {name}")
    assert not found, "\n".join(found)


def test_each_list_is_defined_once():
    """No module but its home assigns a module-level name of a schema list or a resume rule
    (RESUMABLE_CHANGES, TERM_KEYS, CURVE_KEYS, RESULT_KEYS, SWEPT, DEAD_FRACTION... once had
    copies)."""
    suspicious = {*LISTS, "RESUMABLE_CHANGES", "TERM_KEYS", "CURVE_KEYS", "RESULT_KEYS",
                  "SWEPT", "DEAD_FRACTION", "DEAD_FRACTION_OF_RHO"}
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        home = HOMES.get(path.name) if path.parent == PACKAGE else None
        for node in ast.parse(path.read_text()).body:
            targets = node.targets if isinstance(node, ast.Assign) else (
                [node.target] if isinstance(node, ast.AnnAssign) else [])
            for target in targets:
                name = getattr(target, "id", "")
                if name in suspicious and not (home and name in home):
                    if not (path.name == "metrics.py" and name == "DEAD_FRACTION_OF_RHO"):
                        found.append(f"{path.relative_to(PACKAGE.parent)}: {name}")
    assert not found, "\n".join(found)


def test_results_are_what_a_run_summary_and_a_sweep_row_report():
    from saejax.records.sweep_record import COLUMNS

    assert schema.RESULTS[0] == "final_loss" and set(schema.TERMS[1:]) < set(schema.RESULTS)
    assert COLUMNS[:len(schema.AXES)] == schema.AXES
    assert set(schema.RESULTS) | set(schema.COUNTS) < set(COLUMNS)
