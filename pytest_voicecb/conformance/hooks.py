"""``effects`` and ``prepare`` for handlers in any language: an HTTP endpoint of the service, or a command.

``voicecb check`` builds these from ``--effects-url`` / ``--effects-cmd`` and ``--prepare-url`` /
``--prepare-cmd``. Each is a plain callable that ``run_conformance`` takes as it takes a Python function.
A hook that cannot work (nothing listening, a non-2xx answer, a command that exits non-zero, a snapshot
that is not JSON) raises ``StopRun``: the run stops with that one error, never a wall of failed checks.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any
from urllib.parse import urlsplit

from werkzeug.datastructures import Headers

from pytest_voicecb._models import SentRequest
from pytest_voicecb._text import one_line, preview
from pytest_voicecb._tls import client_context
from pytest_voicecb._transports import HttpTransport
from pytest_voicecb.conformance.effects import StopRun
from pytest_voicecb.errors import DeliveryError

__all__ = ["EffectsCommand", "EffectsUrl", "PrepareCommand", "PrepareUrl"]

TIMEOUT = 10.0
"""Seconds a snapshot or a prepare may take before the run stops."""
MAX_SIZE = 1024 * 1024
"""The largest snapshot (or prepare reply) read."""


class _Endpoint:
    """A hook's URL over one keep-alive connection, its replies read as every client of ours reads one
    (``_transports``: a reply cut short or over the limit is an error, never a snapshot)."""

    def __init__(self, url: str, option: str, timeout: float) -> None:
        parts = urlsplit(url)
        https = parts.scheme == "https"
        self.url, self.option, self.timeout = url, option, timeout
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        context = client_context(None, False) if https else None
        self.transport = HttpTransport(
            parts.scheme, parts.hostname or "", parts.port or (443 if https else 80), context
        )

    def exchange(self, method: str, body: bytes = b"") -> tuple[int, bytes]:
        headers = Headers({"Content-Type": "application/json"} if body else {})
        request = SentRequest(method=method, url=self.url, headers=headers, body=body)
        try:
            reply = self.transport.deliver(request, self.path, self.timeout, MAX_SIZE)
        except DeliveryError as error:
            why = one_line(error.reason, 200)
            raise StopRun(f"{self.option}: {method} {self.url} failed: {why}; is the service running?") from None
        if reply.truncated:
            raise StopRun(f"{self.option}: {method} {self.url} answered more than {MAX_SIZE:,} bytes")
        return reply.status, reply.body


class EffectsUrl:
    """GET ``url``; its JSON body is the snapshot (``--effects-url``)."""

    def __init__(self, url: str, *, timeout: float = TIMEOUT) -> None:
        self.url = url
        self.endpoint = _Endpoint(url, "--effects-url", timeout)
        self.__name__ = f"GET {urlsplit(url).path or '/'}"

    def __call__(self) -> object:
        status, body = self.endpoint.exchange("GET")
        if not 200 <= status < 300:
            raise StopRun(_answered("--effects-url", "GET", self.url, status, body, "answer 200 with a JSON snapshot"))
        try:
            return json.loads(body)
        except ValueError:
            raise StopRun(
                f"--effects-url: GET {self.url} answered {preview(body, 80)}, which is not JSON: the snapshot "
                'endpoint must answer a JSON document (e.g. {"escalations": [...]})'
            ) from None


class EffectsCommand:
    """Run ``command`` in the shell; its standard output is the snapshot (JSON when it parses, else the
    text) (``--effects-cmd``)."""

    def __init__(self, command: str, *, timeout: float = TIMEOUT) -> None:
        self.command = command
        self.timeout = timeout
        self.__name__ = one_line(command, 40)

    def __call__(self) -> object:
        out = _run(self.command, None, self.timeout, "--effects-cmd")
        text = out.decode("utf-8", "replace").strip()
        try:
            return json.loads(text)
        except ValueError:
            return text


class PrepareUrl:
    """POST each callback about to be delivered to ``url`` as JSON (``--prepare-url``)."""

    def __init__(self, url: str, *, timeout: float = TIMEOUT) -> None:
        self.url = url
        self.endpoint = _Endpoint(url, "--prepare-url", timeout)
        self.__name__ = f"POST {urlsplit(url).path or '/'}"

    def __call__(self, payload: dict[str, Any]) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode()
        status, answer = self.endpoint.exchange("POST", body)
        if not 200 <= status < 300:
            raise StopRun(_answered("--prepare-url", "POST", self.url, status, answer, "answer 2xx", body))


class PrepareCommand:
    """Run ``command`` in the shell with each callback about to be delivered, as JSON, on its standard
    input (``--prepare-cmd``)."""

    def __init__(self, command: str, *, timeout: float = TIMEOUT) -> None:
        self.command = command
        self.timeout = timeout
        self.__name__ = one_line(command, 40)

    def __call__(self, payload: dict[str, Any]) -> None:
        _run(self.command, json.dumps(payload, ensure_ascii=False).encode(), self.timeout, "--prepare-cmd")


def _answered(option: str, method: str, url: str, status: int, body: bytes, must: str, sent: bytes = b"") -> str:
    what = f" (sent {preview(sent, 100)})" if sent else ""
    return f"{option}: {method} {url}{what} answered HTTP {status} {preview(body, 120)}; it must {must}"


def _run(command: str, stdin: bytes | None, timeout: float, option: str) -> bytes:
    try:
        done = subprocess.run(command, shell=True, input=stdin, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise StopRun(f"{option}: {command!r} did not finish within {timeout:g} s") from None
    except OSError as error:
        raise StopRun(f"{option}: {command!r} could not run: {error}") from None
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        tail = f": {' / '.join(said)}" if said else ""
        raise StopRun(f"{option}: {command!r} exited with status {done.returncode}{tail}")
    return done.stdout
