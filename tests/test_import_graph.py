"""The package's modules import each other one way only: no cycles, in-function imports and
``importlib.import_module("...")`` included.

A cycle held together by an import inside a function, or by a module looked up by name at call time,
works until someone moves that import to the top; this test keeps the arrows pointing one way (contract
at the bottom, the surfaces at the top).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pytest_voicecb"


def _module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _by_name(node: ast.AST) -> list[str]:
    """``importlib.import_module("pytest_voicecb.x")`` or ``import_module("pytest_voicecb.x")``: the name."""
    if not isinstance(node, ast.Call) or not node.args:
        return []
    func = node.func
    called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    first = node.args[0]
    if called in ("import_module", "__import__") and isinstance(first, ast.Constant) and isinstance(first.value, str):
        return [first.value]
    return []


def _lazy_exports(tree: ast.Module, package: str) -> list[str]:
    """A package ``__init__``'s ``_EXPORTS`` table (name -> submodule, re-exported lazily): the submodules."""
    for node in tree.body:
        table = isinstance(node, ast.AnnAssign | ast.Assign) and "_EXPORTS" in ast.unparse(node).split("=")[0]
        if table and isinstance(node.value, ast.Dict):  # type: ignore[union-attr]
            return [f"{package}.{v.value}" for v in node.value.values if isinstance(v, ast.Constant)]
    return []


def _imports(path: Path, modules: set[str], package_root: Path = PACKAGE) -> set[str]:
    """Every package module ``path`` imports, at any depth of the file, typing-only imports excepted:
    ``import`` statements, modules imported by a literal name (``importlib.import_module("...")``) and a
    package's lazy re-exports (its ``_EXPORTS`` table)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    this = _module_name(path, package_root)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    found: set[str] = set()
    if path.name == "__init__.py":
        found.update(name for name in _lazy_exports(tree, package) if name in modules and name != this)
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        names: list[str] = _by_name(node)
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            # ``from package import submodule`` depends on the submodule; ``from module import name`` on the module
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != this and name != "pytest_voicecb":
                found.add(name)
    return found


def _graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    paths = sorted(package.rglob("*.py"))
    modules = {_module_name(path, package) for path in paths}
    return {_module_name(path, package): _imports(path, modules, package) for path in paths}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_package_has_no_import_cycle() -> None:
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_a_cycle_through_import_module_or_a_function_level_import_is_found(tmp_path: Path) -> None:
    scratch = tmp_path / "pytest_voicecb"
    scratch.mkdir()
    (scratch / "__init__.py").write_text("")
    (scratch / "low.py").write_text(
        "import importlib\n\ndef page():\n    return importlib.import_module('pytest_voicecb.high')\n"
    )
    (scratch / "high.py").write_text("from pytest_voicecb import low\n")
    (scratch / "other.py").write_text("def late():\n    from pytest_voicecb.high import x\n")
    (scratch / "base.py").write_text("from pytest_voicecb import other\n")
    graph = _graph(scratch)
    assert graph["pytest_voicecb.low"] == {"pytest_voicecb.high"}
    assert graph["pytest_voicecb.other"] == {"pytest_voicecb.high"}
    assert _cycle(graph) == ["pytest_voicecb.high", "pytest_voicecb.low", "pytest_voicecb.high"]
    (scratch / "low.py").write_text("import importlib\n\ndef page(name):\n    return importlib.import_module(name)\n")
    assert _cycle(_graph(scratch)) is None


def test_the_checker_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("module", ["pytest_voicecb.contract", "pytest_voicecb.values", "pytest_voicecb._text"])
def test_the_bottom_layer_imports_nothing_of_ours(module: str) -> None:
    assert _graph()[module] <= {"pytest_voicecb.values", "pytest_voicecb._text", "pytest_voicecb._arguments"}


def _short_graph() -> dict[str, set[str]]:
    return {
        name.removeprefix("pytest_voicecb."): {m.removeprefix("pytest_voicecb.") for m in deps}
        for name, deps in _graph().items()
    }


def test_the_verdict_modules_import_downwards() -> None:
    graph = _short_graph()
    assert "malformed" in graph["factory"]
    assert "factory" not in graph["malformed"]
    assert graph["conformance.report"] <= {
        "_text",
        "conformance.verdict",
        "contract",
        "errors",
        "_models",
        "conformance.effects",
        "conformance.pages",
    }
    assert graph["conformance.verdict"] <= {"contract", "values"}, "the rules sit below the report and the assertions"
    assert "conformance.verdict" in graph["assertions"]
    assert graph["conformance.effects"] <= {"_text", "contract", "conformance.inputs"}, "no delivery, no report"
    assert graph["conformance.inputs"] <= {"contract"}
    assert (
        "conformance.runner"
        not in graph["conformance.report"] | graph["conformance.verdict"] | graph["conformance.checklist"]
    )


SURFACES = ("cli", "console", "plugin", "integrations", "__main__")
"""The top of the package: only these (and the conformance items) may reach the command's modules."""


def _in(name: str, *packages: str) -> bool:
    return any(name == package or name.startswith(package + ".") for package in packages)


def test_only_the_surfaces_import_the_command() -> None:
    graph = _short_graph()
    wrong = {
        name: sorted(m for m in deps if _in(m, "cli"))
        for name, deps in graph.items()
        if not _in(name, "conformance", *SURFACES) and any(_in(m, "cli") for m in deps)
    }
    assert wrong == {}, "imports from cli/ below the surfaces"


def test_the_verdict_layer_imports_neither_the_command_nor_the_console() -> None:
    graph = _short_graph()
    wrong = {
        name: sorted(m for m in deps if _in(m, "cli", "console"))
        for name, deps in graph.items()
        if _in(name, "conformance") and any(_in(m, "cli", "console") for m in deps)
    }
    assert wrong == {}, "conformance/ reaches up for a surface"


MOVED = ("report", "verdict", "checklist", "explore")
"""Deprecated module paths (shims at the root that warn and hand out ``conformance.<name>``)."""


def test_nothing_of_ours_imports_a_moved_module_by_its_old_path() -> None:
    graph = _short_graph()
    users = {name: sorted(deps & set(MOVED)) for name, deps in graph.items() if deps & set(MOVED)}
    assert users == {}


def test_a_lazy_re_export_counts_as_an_import(tmp_path: Path) -> None:
    scratch = tmp_path / "pytest_voicecb"
    (scratch / "layer").mkdir(parents=True)
    (scratch / "__init__.py").write_text("")
    (scratch / "layer" / "__init__.py").write_text('_EXPORTS: dict[str, str] = {"Thing": "inner"}\n')
    (scratch / "layer" / "inner.py").write_text("from pytest_voicecb import top\n")
    (scratch / "top.py").write_text("from pytest_voicecb.layer import Thing\n")
    graph = _graph(scratch)
    assert graph["pytest_voicecb.layer"] == {"pytest_voicecb.layer.inner"}
    assert _cycle(graph) is not None
