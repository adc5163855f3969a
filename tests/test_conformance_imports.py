"""Imports inside the package run one way (issue 13): no module imports, at its top or inside a function,
a module that imports it back. Imports under ``if TYPE_CHECKING:`` are for type checkers only and do not
count (that is how ``malformed`` names the ``PayloadFactory`` it is built from)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pytest_voicecb"


def _imports(tree: ast.AST) -> set[str]:
    """The package's modules a module imports at run time (in-function imports included)."""
    found: set[str] = set()
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(inner) for stmt in node.body for inner in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "pytest_voicecb":
            parts = node.module.split(".")
            found |= {parts[1]} if len(parts) > 1 else {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("pytest_voicecb.")}
    return found


def _graph() -> dict[str, set[str]]:
    modules = {path.stem: path for path in PACKAGE.glob("*.py")}
    return {name: _imports(ast.parse(path.read_text())) & set(modules) - {name} for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for other in sorted(graph[node]):
            if state.get(other) == 1:
                found.append([*stack[stack.index(other) :], other])
            elif other not in state:
                visit(other)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_the_package_has_no_import_cycle() -> None:
    graph = _graph()
    assert {"factory", "malformed", "conformance", "checklist", "verdict", "report"} <= set(graph)
    assert _cycles(graph) == []


def test_the_verdict_modules_import_downwards() -> None:
    graph = _graph()
    assert "malformed" in graph["factory"]
    assert "factory" not in graph["malformed"]
    assert graph["report"] <= {"_text", "assertions", "contract"}
    assert "conformance" not in graph["report"] | graph["verdict"] | graph["checklist"]


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pytest_voicecb.x import y\n")
    assert _imports(tree) == set()
    assert _imports(ast.parse("def f():\n    from pytest_voicecb import client\n")) == {"client"}
