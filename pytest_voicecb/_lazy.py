"""Lazy re-exports for a package's ``__init__`` (PEP 562): a name loads its module on first use, so
importing the package (which pytest does in every run of every project that installs the plugin) stays
cheap. Standard library only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from importlib import import_module
from typing import Any

__all__ = ["exports"]


def exports(
    package: str, table: Mapping[str, str], *, also: Iterable[str] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package`` serving ``table`` (name -> submodule);
    ``also`` names what the package defines itself, for ``dir()``."""
    names = sorted([*table, *also])

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        # Not cached in the package's namespace: sys.modules stays the one source, so a test runner that
        # unloads and re-imports our modules (pytester's in-process runs do) never hands out a stale class.
        return getattr(import_module(f"{package}.{module}"), name)

    def __dir__() -> list[str]:
        return names

    return __getattr__, __dir__
