"""The Node's layering: no import circle among its domain services, and what may import what (issue 9).

Every ``grid_runtime/node/<domain>/service.py`` may import models, ``node.lookup``, the ledger and lower
domains' services, but no two services may import each other, directly or through others: what crosses
domains in one transaction lives in ``node.flows``, above them all. Imports are read with ``ast`` from the
source (including imports inside functions, excluding ``if TYPE_CHECKING:`` blocks), so a late import cannot
hide a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

NODE = Path(__file__).resolve().parents[1] / "grid_runtime" / "node"


def _module(path: Path) -> str:
    relative = path.relative_to(NODE.parents[1]).with_suffix("")
    return ".".join(relative.parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports at run time (``from a import b`` counts as ``a`` and ``a.b``)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), filename=str(path)))
    return found


def service_graph() -> dict[str, set[str]]:
    """service module -> the other service modules it imports."""
    services = {_module(p): p for p in sorted(NODE.glob("*/service.py"))}
    return {name: {m for m in imports_of(path) if m in services and m != name} for name, path in services.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle in ``graph`` as a path that returns to its start, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state and (cycle := walk(target)) is not None:
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := walk(start)) is not None:
            return cycle
    return None


class TestNoImportCircle:
    def test_no_service_imports_another_in_a_circle(self) -> None:
        graph = service_graph()
        assert len(graph) >= 10  # every domain's service was read
        cycle = find_cycle(graph)
        assert cycle is None, "import circle among node services: " + " -> ".join(cycle or [])

    def test_the_cycle_finder_finds_a_circle_through_a_third_module(self) -> None:
        assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
        assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None

    def test_late_imports_count_and_type_checking_imports_do_not(self, tmp_path: Path) -> None:
        source = tmp_path / "m.py"
        source.write_text(
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from grid_runtime.node.jobs import service\n"
            "def f():\n    from grid_runtime.node.budget import service as budget\n    return budget\n")
        found = imports_of(source)
        assert "grid_runtime.node.budget.service" in found
        assert "grid_runtime.node.jobs.service" not in found


class TestWhoImportsWhat:
    def test_the_ledger_depends_only_on_its_models_and_privacy(self) -> None:
        node_imports = {m for m in imports_of(NODE / "budget" / "ledger.py") if m.startswith("grid_runtime.")}
        allowed = ("grid_runtime.node.budget.models", "grid_runtime.privacy", "grid_runtime.core.errors")
        assert node_imports and all(m.startswith(allowed) for m in node_imports), node_imports

    def test_the_lookup_layer_imports_models_only(self) -> None:
        node_imports = {m for m in imports_of(NODE / "lookup.py") if m.startswith("grid_runtime.node.")}
        assert node_imports and all(".models" in m for m in node_imports), node_imports

    def test_requests_jobs_and_budget_services_do_not_reach_up_into_each_other(self) -> None:
        graph = service_graph()
        for lower, upper in (("grid_runtime.node.requests.service", "grid_runtime.node.budget.service"),
                             ("grid_runtime.node.jobs.service", "grid_runtime.node.budget.service"),
                             ("grid_runtime.node.requests.service", "grid_runtime.node.jobs.service")):
            assert upper not in graph[lower], f"{lower} imports {upper}: that belongs in node.flows"

    def test_no_service_imports_flows(self) -> None:
        for path in NODE.glob("*/service.py"):
            assert "grid_runtime.node.flows" not in imports_of(path), path
