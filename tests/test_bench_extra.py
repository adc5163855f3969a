"""Every benchmark runs from ``pip install -e ".[bench]"`` alone: each library a benchmark imports is
installed by the ``bench`` extra (with the extras it names) or the package's own dependencies."""

from __future__ import annotations

import ast
import importlib.metadata
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")

ROOT = Path(__file__).resolve().parents[1]
SEARCHED = (ROOT, ROOT / "examples")  # benchmarks put examples/ on sys.path


def installed_by(extra: str) -> set[str]:
    """The distributions ``pip install -e ".[extra]"`` asks for, following ``pytest-voicecb[...]``."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = {canonicalize_name(Requirement(dep).name) for dep in project["dependencies"]}
    todo, seen = [extra], set()
    while todo:
        name = todo.pop()
        seen.add(name)
        for dep in project["optional-dependencies"][name]:
            requirement = Requirement(dep)
            if canonicalize_name(requirement.name) == "pytest-voicecb":
                todo += [e for e in requirement.extras if e not in seen]
            else:
                found.add(canonicalize_name(requirement.name))
    return found


def local_file(module: str) -> Path | None:
    """The repository's file for ``module`` (``tests.handlers.flask_app``, ``flask_handler.app``), if it is ours."""
    for base in SEARCHED:
        path = base.joinpath(*module.split("."))
        for candidate in (path.with_suffix(".py"), path / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def imported(path: Path, seen: set[Path] | None = None) -> set[str]:
    """Top-level third-party modules ``path`` imports, anywhere in it and in the repository's modules it
    imports (the example apps, ``tests.handlers``); the package's own are its extras' business."""
    seen = set() if seen is None else seen
    seen.add(path)
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    found: set[str] = set()
    for module in modules:
        top = module.split(".")[0]
        if top == "pytest_voicecb" or top in sys.stdlib_module_names:
            continue
        parts = module.split(".")
        files = [local_file(".".join(parts[:n])) for n in range(1, len(parts) + 1)]
        if any(files):
            for file in filter(None, files):
                if file not in seen:
                    found |= imported(file, seen)
        elif (ROOT / "benchmarks" / f"{top}.py").is_file():
            if ROOT / "benchmarks" / f"{top}.py" not in seen:
                found |= imported(ROOT / "benchmarks" / f"{top}.py", seen)
        else:
            found.add(top)
    return found


@pytest.mark.parametrize("path", sorted((ROOT / "benchmarks").glob("bench_*.py")), ids=lambda p: p.name)
def test_the_bench_extra_installs_what_each_benchmark_imports(path: Path) -> None:
    bench = installed_by("bench")
    providers = importlib.metadata.packages_distributions()
    # A module not installed here (CI installs the test extra, not [bench]) is taken by its own name,
    # which is its distribution's for every library the benchmarks use (pytest_httpserver, polyfactory).
    missing = {
        module: providers.get(module, ["(not installed here)"])
        for module in sorted(imported(path))
        if not {canonicalize_name(dist) for dist in providers.get(module, [module])} & bench
    }
    assert not missing, f"{path.name} imports what the [bench] extra does not install: {missing}"
