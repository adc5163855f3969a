"""The malformed corpus: bodies a provider-facing handler must survive (CONTRACT.md rules 2 and 3).

Each ``Case`` is a request body as raw bytes with the content type it is sent under. ``expect`` says
what a correct handler does with it: ``"reject"`` (answer a contract error, never crash) or
``"robust"`` (accept or reject, but answer in the contract shape; a strict profile demands rejection).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from pytest_voicecb.factory import PayloadFactory

__all__ = ["Case", "cases"]

JSON = "application/json"


@dataclass(frozen=True)
class Case:
    """One malformed delivery: ``id`` (stable, readable), ``body`` bytes, ``content_type``, ``expect``, ``why``."""

    id: str
    body: bytes
    content_type: str
    expect: Literal["reject", "robust"]
    why: str
    kind: str | None = None
    """The callback kind the case is about, or None for envelope, encoding and transport cases."""


def cases(factory: PayloadFactory, kind: str | None = None) -> list[Case]:
    """The corpus, built on ``factory``'s payloads; ``kind`` keeps only cases about that kind
    (plus the kind-independent ones)."""
    out = [
        Case("empty-body", b"", JSON, "reject", "an empty body is not a callback"),
        Case("not-json", b"result=0&callid=1", JSON, "reject", "a form-encoded body is not JSON"),
    ]
    return out
