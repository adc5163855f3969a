"""One way to say "a record matches these criteria", for every record a test queries.

``CallbackServer.wait_for``/``find``/``expect`` match recorded requests with it, ``Provider.find_deliveries``,
``find_sends`` and ``wait_for_*`` match deliveries and sends (pytest-httpserver keeps one ``RequestMatcher``
for dispatch, assertions and queries likewise). The criteria are keywords: a key the record type names as
its own (``kind``, ``callid``, ``state``...) is read from the record, any other key is a callback field
(``result="1"``, ``failure_code=5``) looked up in ``record.fields``, a record without it does not match.
``kind`` takes a short or a full name (an unknown one raises ``ValueError`` at once). A value may be a
callable taking the value; ``where`` is a callable taking the whole record.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, Final, Generic, TypeVar

from pytest_voicecb import contract

__all__ = ["Matcher"]

R = TypeVar("R")

_ABSENT: Final = object()


def _fields(record: Any) -> Mapping[str, Any]:
    fields = getattr(record, "fields", None)
    return fields if isinstance(fields, Mapping) else {}


class Matcher(Generic[R]):
    """A predicate on a record built from keyword criteria; ``wanted`` says them for a failure message.

    ``attributes``: the keys read from the record itself (``getattr``); ``fields``: where the other keys
    are looked up (``record.fields`` by default).
    """

    def __init__(
        self,
        match: Mapping[str, Any],
        *,
        where: Callable[[R], object] | None = None,
        attributes: Collection[str] = ("kind",),
        fields: Callable[[R], Mapping[str, Any]] = _fields,
    ) -> None:
        if where is not None and not callable(where):
            raise TypeError(f"where must be a callable taking the record, got {where!r}")
        tests: list[tuple[str, bool, Any]] = []
        for key, expected in match.items():
            if key == "kind" and "kind" in attributes and not callable(expected) and expected is not None:
                expected = contract.kind_named(expected)
            tests.append((key, key in attributes, expected))
        self._tests = tuple(tests)
        self._where = where
        self._fields = fields
        shown = [f"{key}={expected!r}" for key, _, expected in tests] + (["where=..."] if where else [])
        self.wanted = ", ".join(shown)
        """The criteria as written (full kind names): ``kind='voiceprompt_callback', callid='c-1'``."""

    def __call__(self, record: R) -> bool:
        fields: Mapping[str, Any] | None = None
        for key, on_record, expected in self._tests:
            if on_record:
                value = getattr(record, key)
            else:
                fields = self._fields(record) if fields is None else fields
                value = fields.get(key, _ABSENT)
                if value is _ABSENT:
                    return False
            if not (expected(value) if callable(expected) else value == expected):
                return False
        return self._where is None or bool(self._where(record))

    def select(self, records: Iterable[R]) -> list[R]:
        """The records that match, in their order."""
        return [record for record in records if self(record)]

    def __repr__(self) -> str:
        return f"Matcher({self.wanted or 'anything'})"
