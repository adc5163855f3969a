"""``voicecb serve --forward-to URL``: relay each callback to a handler and answer with the handler's reply.

The Stripe CLI's ``listen --forward-to`` for this provider: the provider (or a simulator, or a teammate's
``voicecb send``) posts to ``serve``; the callback is recorded and logged as usual, relayed byte for byte
(same body, same content type) to the handler, and the handler's reply goes back to the sender. Both
sides are judged: the callback by the contract (``valid``/``problems`` in the log), the handler's reply by
``verdict.judge``, printed and logged as ``forwarded``. A handler that does not answer makes a 502 in the
contract's error shape, so the sender retries as it would against a broken handler.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from werkzeug.wrappers import Response

    from pytest_voicecb.client import CallbackClient
    from pytest_voicecb.server import RecordedCallback

__all__ = ["Forwarded", "Forwarder"]

_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}
)


@dataclass(frozen=True)
class Forwarded:
    """What the handler at ``url`` made of one relayed callback: its HTTP ``status`` (None: no reply), the verdict's
    ``outcome`` (passed, warned, failed) and ``problems``."""

    url: str
    status: int | None
    outcome: str
    problems: tuple[str, ...]

    def to_record(self) -> dict[str, Any]:
        """The ``forwarded`` entry of a log record."""
        return {"url": self.url, "status": self.status, "outcome": self.outcome, "problems": list(self.problems)}

    def describe(self) -> str:
        """``handler 200 ok`` / ``handler 500 FAILED: ...`` for the printed line."""
        status = "no reply" if self.status is None else str(self.status)
        if self.outcome == "passed":
            return f"handler {status} ok"
        word = "FAILED" if self.outcome == "failed" else "WARNING"
        return f"handler {status} {word}: {'; '.join(self.problems)}"


class Forwarder:
    """The ``answer`` hook of a ``CallbackServer`` relaying to ``url``: one keep-alive client per request
    thread, ``timeout`` per delivery (connect to last byte). ``last()`` returns, in the same thread, what
    the handler made of the callback just relayed (for ``on_callback``, which runs right after)."""

    def __init__(self, url: str, *, timeout: float = 5.0, strict: bool = False, redact: bool = True) -> None:
        from pytest_voicecb.client import resolve_target

        resolved = resolve_target(url)  # a bad URL fails here, before the server starts
        if not isinstance(resolved, str):
            raise ValueError(f"--forward-to takes the handler's URL, got {url!r}")
        self.url = resolved
        self.timeout = timeout
        self.strict = strict
        self.redact = redact
        self._local = threading.local()
        self._clients: list[CallbackClient] = []
        self._lock = threading.Lock()

    def __call__(self, recorded: RecordedCallback) -> Response:
        from werkzeug.wrappers import Response

        from pytest_voicecb.client import DeliveryError
        from pytest_voicecb.conformance.verdict import judge

        content_type = recorded.headers.get("Content-Type") or ""
        try:
            reply = self._client().post(recorded.body, content_type=content_type)
        except DeliveryError as exc:
            self._local.last = Forwarded(self.url, None, "failed", (f"no reply: {exc.reason}",))
            return _bad_gateway(f"the handler at {self.url} did not answer: {exc.reason}")
        if reply.truncated:  # never relay the first part of a reply as if it were all of it
            why = f"HTTP {reply.status} with more than {len(reply.body):,} bytes (the read limit)"
            self._local.last = Forwarded(self.url, reply.status, "failed", (f"reply too large: {why}",))
            return _bad_gateway(f"the handler at {self.url} answered {why}; not relayed")
        verdict = judge(reply, recorded.body, strict=self.strict)
        self._local.last = Forwarded(self.url, reply.status, verdict.outcome, tuple(verdict.problems))
        headers = [(name, value) for name, value in reply.headers.items() if name.lower() not in _HOP_BY_HOP]
        response = Response(reply.body, reply.status, headers=headers)
        if reply.content_type is None:
            del response.headers["Content-Type"]  # werkzeug's text/plain default is not what the handler sent
        return response

    def last(self) -> Forwarded | None:
        """What the handler made of the callback this thread relayed last (and forget it)."""
        last: Forwarded | None = getattr(self._local, "last", None)
        self._local.last = None
        return last

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()

    def _client(self) -> CallbackClient:
        client: CallbackClient | None = getattr(self._local, "client", None)
        if client is None:
            from pytest_voicecb.client import CallbackClient

            client = CallbackClient(self.url, timeout=self.timeout, redact=self.redact)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client


def _bad_gateway(message: str) -> Response:
    """A 502 in the contract's error shape, so the sender retries as it would against a broken handler."""
    from werkzeug.wrappers import Response

    from pytest_voicecb import contract

    return Response(contract.encode(contract.error_reply(message)), 502, content_type=contract.JSON_CONTENT_TYPE)
