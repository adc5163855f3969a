"""The small values shared by the payload factory, the malformed corpus and the client.

A leaf module: it imports nothing of pydantic or werkzeug, so anything may import it cheaply, and the
factory, the corpus and the client depend on it instead of on each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal, NamedTuple

__all__ = ["DEFAULT_PATH", "JSON_CONTENT_TYPE", "MISSING", "Case", "Handling", "Variant"]

DEFAULT_PATH: Final = "/voice/callback"
"""Where callbacks are delivered (and served) unless a path says otherwise; the provider lets each
application choose its URL, so this is only our default. (``contract`` re-exports it.)"""

JSON_CONTENT_TYPE: Final = "application/json"
"""The content type the provider is assumed to send (CONTRACT.md: *unconfirmed*)."""


class _Missing:
    """The type of ``MISSING``."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()
"""Pass as an override to remove a field: ``factory.prompt(fee=MISSING)``."""


class Variant(NamedTuple):
    """One documented valid shape of a callback, with a readable id such as ``prompt/not-answered-times-empty``."""

    id: str
    payload: dict[str, Any]


Handling = Literal["reject", "robust"]
"""What a handler should do with a malformed case: refuse it (``reject``) or take it without harm (``robust``)."""


@dataclass(frozen=True)
class Case:
    """One malformed delivery: ``id`` (stable, readable), ``body`` bytes, ``content_type``, ``expect``, ``why``."""

    id: str
    body: bytes
    content_type: str
    expect: Handling
    why: str
    kind: str | None = None
    """The callback kind the case is about, or None for envelope, encoding and transport cases."""
