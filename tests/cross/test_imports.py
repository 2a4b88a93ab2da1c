"""The package's import graph: no cycle at any depth.

Every import statement is read from the source, function-level ones included, so an import
hidden inside a function to dodge a cycle counts like any other.
"""

import ast
from pathlib import Path

from helpers import PACKAGE


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict:
    """{module: set of saejax modules it imports}, at any depth of its source."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                # `from saejax import checks` imports the module saejax.checks.
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules
                           else node.module for a in node.names]
            else:
                continue
            edges |= {t for t in targets if t in modules and t != name}
        graph[name] = edges
    return graph


def find_cycle(graph: dict) -> list | None:
    """One cycle of the directed graph as a list of nodes, or None (depth-first search)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_graph_sees_function_level_imports():
    graph = import_graph()
    # imported inside train.runner.run
    assert "saejax.viz.figures" in graph["saejax.train.runner"]
    assert "saejax.losses" in graph["saejax.grads"]


def test_no_import_cycle_in_the_package():
    graph = import_graph()
    # The package __init__ re-exports the API; it is the root, not a dependency.
    inner = {m: e - {"saejax"} for m, e in graph.items() if m != "saejax"}
    assert find_cycle(inner) is None, f"import cycle: {' -> '.join(find_cycle(inner))}"
