"""What one delivery sent and what came back: ``SentRequest`` and ``Reply`` (httpx's ``_models.py``).

Plain data with no I/O, so the transports, the errors, the assertions and the reproducer can all use
them without importing the client. ``pytest_voicecb.client`` re-exports both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from werkzeug.datastructures import Headers

from pytest_voicecb import repro
from pytest_voicecb._text import safe

__all__ = ["Reply", "SentRequest"]


@dataclass(frozen=True)
class SentRequest:
    """What was delivered: ``method``, full ``url``, ``headers``, ``body``; ``in_process`` when no socket was used.

    ``redact`` is the client's choice for messages: credentials in headers shown as ``<redacted>``.
    """

    method: str
    url: str
    headers: Headers
    body: bytes
    in_process: bool = False
    redact: bool = True

    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type")

    def summary(self) -> str:
        """One line, safe for a terminal: method, URL, content type and size."""
        content_type = safe(self.content_type) if self.content_type is not None else "no content type"
        return f"{self.method} {safe(self.url)} ({content_type}, {len(self.body):,} bytes)"

    def curl(self, *, redact: bool | None = None) -> str:
        """A shell command that sends the same bytes with the same headers (see ``repro.curl``).

        Credentials are ``<redacted>`` unless ``redact=False`` (default: the client's ``redact``).
        """
        return repro.curl(self, redact=self.redact if redact is None else redact)


@dataclass(frozen=True)
class Reply:
    """A handler's answer to one delivery.

    ``status`` (int), ``headers`` (werkzeug ``Headers``, case-insensitive), ``body`` (bytes, at most
    ``max_reply_size``; ``truncated`` says the handler sent more), ``elapsed`` (seconds from sending to
    the last byte read), ``request`` (what was sent), and for in-process targets ``errors``: what the app
    wrote to ``wsgi.errors`` (Flask logs its 500 tracebacks there) plus the traceback of an exception
    that escaped it.
    """

    status: int
    headers: Headers
    body: bytes
    elapsed: float
    request: SentRequest
    truncated: bool = False
    errors: str = ""

    @property
    def json(self) -> Any:
        """The body decoded as JSON, or None when it is not JSON (or was truncated)."""
        if self.truncated or not self.body:
            return None
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):
            return None

    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type")

    @property
    def text(self) -> str:
        """The body as text (UTF-8, undecodable bytes replaced)."""
        return self.body.decode("utf-8", "replace")

    def curl(self, *, redact: bool | None = None) -> str:
        """A shell command reproducing this delivery against a live URL.

        For an in-process target the URL starts with ``http://localhost:8000`` (``IN_PROCESS_BASE_URL``)
        and the command says so in a comment: point it at wherever the handler is served. Credentials
        are ``<redacted>`` unless ``redact=False``.
        """
        return self.request.curl(redact=redact)
