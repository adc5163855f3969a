"""Old public names kept working for one release, each with a ``DeprecationWarning`` naming the new one.

CHANGELOG.md's "Deprecated" section lists every move; a name here goes in the release after.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, TypeVar

__all__ = ["RecordList", "moved", "moved_module", "warn"]

T = TypeVar("T")


def warn(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Say that ``old`` is deprecated in favour of ``new`` (the warning points at the caller's line)."""
    warnings.warn(f"{old} is deprecated; use {new}", DeprecationWarning, stacklevel=stacklevel)


class RecordList(list[T]):
    """A record list that was a method and is now a property: calling it still works, with a warning.

    ``provider.held`` is a list; ``provider.held()`` returns the same list and warns, for one release.
    With arguments, the call goes to the query that replaced it (``deliveries(callid=...)`` ->
    ``find_deliveries(callid=...)``).
    """

    def __init__(self, items: Any, old: str, new: str, query: Callable[..., list[T]] | None = None) -> None:
        super().__init__(items)
        self._old, self._new, self._query = old, new, query

    def __call__(self, *args: Any, **kwargs: Any) -> list[T]:
        warn(self._old, self._new)
        if (args or kwargs) and self._query is not None:
            return self._query(*args, **kwargs)
        return list(self)


def moved(namespace: str, renamed: Mapping[str, tuple[str, Callable[[], object]]]) -> Callable[[str], object]:
    """A module ``__getattr__`` serving ``renamed``'s old names (old -> (new name, getter)) with a warning."""

    def __getattr__(name: str) -> object:
        if name in renamed:
            new, get = renamed[name]
            warn(f"{namespace}.{name}", f"{namespace}.{new}")
            return get()
        raise AttributeError(f"module {namespace!r} has no attribute {name!r}")

    return __getattr__


def moved_module(old: str, new: ModuleType) -> None:
    """Serve the module path ``old`` (a shim calling this) as ``new`` itself, with a warning: the same
    objects, so patching ``old``'s attributes patches ``new``'s (the import system hands out what
    ``sys.modules`` holds once the shim ran). The warning points at the importing line: stacklevel counts
    this function and the shim; Python skips the import system's own frames."""
    warn(old, new.__name__, stacklevel=4)
    sys.modules[old] = new
