"""Receive the provider's callbacks, acknowledge them at once, and forward each to the customers' URLs.

Standard library only: a plain WSGI application in front (any WSGI server runs it), a worker thread and
``http.client`` behind. Forwarding retries what may succeed later (a refused or dropped connection, a
timeout, a 5xx or 429) a bounded number of times with exponential backoff, and gives up at once on what
will not (any other 4xx, or a contract reply with ``result`` not 0). The queue is in memory here; a real
relay would use a durable one, since the provider was already told "received".
"""

from __future__ import annotations

import http.client
import json
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from voice_callbacks import MAX_BODY_SIZE, CallbackStore, handle

Route = Callable[[str, dict[str, Any]], Iterable[str]]
"""Given (kind, fields) of a callback, the URLs of the customers that get it."""

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass
class Delivery:
    """How forwarding one callback to one URL went."""

    url: str
    attempts: int
    ok: bool
    status: int | None = None
    error: str | None = None


class Relay:
    """A WSGI application that acknowledges callbacks and forwards them in the background.

    Use it as a context manager (or call ``start()`` / ``stop()``) so the forwarding thread runs.
    """

    def __init__(
        self,
        route: Route,
        *,
        attempts: int = 4,
        backoff: float = 0.5,
        timeout: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.route = route
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout
        self.sleep = sleep
        self.store = CallbackStore()
        self.deliveries: list[Delivery] = []
        self._queue: queue.Queue[tuple[str, bytes] | None] = queue.Queue()
        self._worker: threading.Thread | None = None

    # -- receiving (WSGI) ---------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if environ.get("REQUEST_METHOD") != "POST":
            status, reply = "405 Method Not Allowed", {"result": 1, "errmsg": "callbacks are POSTed"}
        elif length > MAX_BODY_SIZE:
            status, reply = "413 Content Too Large", {"result": 1, "errmsg": "body too large"}
        else:
            body = environ["wsgi.input"].read(length) if length else b""
            status, reply = "200 OK", handle(body, self.store, lambda kind, fields: self._enqueue(kind, fields, body))
        data = json.dumps(reply).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return iter([data])

    def _enqueue(self, kind: str, fields: dict[str, Any], body: bytes) -> None:
        for url in self.route(kind, fields):
            self._queue.put((url, body))

    # -- forwarding ---------------------------------------------------------------------------------

    def deliver(self, url: str, body: bytes) -> Delivery:
        """POST ``body`` to ``url``, retrying transient failures; the outcome is also kept in ``deliveries``."""
        delivery = Delivery(url, 0, ok=False)
        for attempt in range(1, self.attempts + 1):
            delivery.attempts = attempt
            retry = self._attempt(delivery, body)
            if delivery.ok or not retry:
                break
            if attempt < self.attempts:
                self.sleep(self.backoff * 2 ** (attempt - 1))
        self.deliveries.append(delivery)
        return delivery

    def _attempt(self, delivery: Delivery, body: bytes) -> bool:
        """One POST; records the outcome in ``delivery`` and says whether trying again may help."""
        parts = urlsplit(delivery.url)
        conn_type = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = conn_type(parts.netloc, timeout=self.timeout)
        try:
            conn.request("POST", parts.path or "/", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            delivery.status, delivery.error = None, f"{type(exc).__name__}: {exc}"
            return True
        finally:
            conn.close()
        delivery.status = response.status
        if response.status in RETRY_STATUSES:
            delivery.error = f"HTTP {response.status}"
            return True
        try:
            reply = json.loads(data)
        except ValueError:
            reply = None
        delivery.ok = response.status == 200 and isinstance(reply, dict) and reply.get("result") == 0
        delivery.error = None if delivery.ok else f"HTTP {response.status}: {data[:200]!r}"
        return False

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                self.deliver(*item)
            finally:
                self._queue.task_done()
        self._queue.task_done()

    def start(self) -> None:
        if self._worker is None:
            self._worker = threading.Thread(target=self._run, name="relay-forwarder", daemon=True)
            self._worker.start()

    def join(self) -> None:
        """Wait until every queued delivery has been made or given up."""
        self._queue.join()

    def stop(self) -> None:
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join()
            self._worker = None

    def __enter__(self) -> Relay:
        self.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()
