"""Handlers with side effects, shaped like the public handlers we measured (CONTRACT.md rule 7).

Each is a plain WSGI app (fast enough to run the whole suite many times) with its side effects as a list:
``app.actions`` (escalation calls dialled, SMS sent, rows written). Served over HTTP (``tests.handlers.serve``)
it also answers ``GET /_test/effects`` with ``{"actions": [...]}`` and takes ``POST /_test/prepare`` (a
callback body: that call is now one the handler placed), so ``voicecb check --effects-url/--prepare-url``
sees what the in-process run sees.

- ``escalate-unanswered``: the correct one: escalates an unanswered or failed prompt call and a failure
  callback once per call, only for calls it placed (``known_only``) or for any call;
- ``escalate-everything``: dials on-call for every callback of every kind, once per callid and kind;
- ``lenient-result``: reads ``result`` without validating it: ``result != "0"`` escalates, so an
  answered call whose ``result`` is the number 0 is escalated;
- ``sms-per-delivery``: a ``void`` Java handler: an empty 200 to everything, and an SMS for every failure
  callback delivered, duplicates included;
- ``record-status``: records each prompt's (callid, result) reading only those two fields, so a callback
  missing a field it never reads is recorded too (a warning, not a failure);
- ``framework-400``: a body parser in front of the handler answers ``400 text/plain`` to anything that is
  not JSON, before any handler code runs.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from typing import Any

from pytest_voicecb.contract import FAILURE, KINDS, PROMPT

Environ = dict[str, Any]
StartResponse = Callable[..., Any]

SHAPES = (
    "escalate-unanswered",
    "escalate-everything",
    "lenient-result",
    "sms-per-delivery",
    "record-status",
    "framework-400",
)
ESCALATES = ["prompt/not-answered", "prompt/call-error", "failure"]
"""The ``effects_on`` of a handler that escalates unanswered and failed calls."""

OK = b'{"result":0,"errmsg":"OK"}'


class EffectsApp:
    """One handler of a ``SHAPES`` shape; ``known_only``: it acts only on calls registered with ``place``."""

    def __init__(self, shape: str, *, known_only: bool = False) -> None:
        if shape not in SHAPES:
            raise ValueError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")
        self.shape = shape
        self.known_only = known_only
        self.actions: list[list[str]] = []
        self.placed: set[str] = set()
        self._done: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self.__name__ = f"EffectsApp({shape})"

    # -- the test's hooks ---------------------------------------------------------------------------

    def effects(self) -> list[list[str]]:
        with self._lock:
            return [list(action) for action in self.actions]

    def place(self, payload: dict[str, Any]) -> None:
        """``prepare``: the call of this callback is one the handler placed."""
        fields = next(iter(payload.values()))
        with self._lock:
            self.placed.add(str(fields["callid"]))

    # -- WSGI ---------------------------------------------------------------------------------------

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ["REQUEST_METHOD"]
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        if path == "/_test/effects" and method == "GET":
            return _answer(start_response, "200 OK", json.dumps({"actions": self.effects()}).encode())
        if path == "/_test/prepare" and method == "POST":
            self.place(json.loads(body))
            return _answer(start_response, "204 No Content", b"")
        if path != "/voice/callback" or method != "POST":
            return _answer(start_response, "404 Not Found", b"not found", "text/plain")
        status, reply = self.handle(body)
        content_type = "text/plain" if status.startswith("400") else "application/json"
        return _answer(start_response, status, reply, content_type)

    def handle(self, body: bytes) -> tuple[str, bytes]:
        try:
            data = json.loads(body)
        except ValueError:
            if self.shape == "framework-400":
                return "400 Bad Request", b"Bad Request"
            return "200 OK", b'{"result":1,"errmsg":"not JSON"}'
        kind = next((key for key in KINDS if isinstance(data, dict) and isinstance(data.get(key), dict)), None)
        if kind is None:
            return "200 OK", b'{"result":1,"errmsg":"no callback"}'
        fields: dict[str, Any] = data[kind]
        callid = fields.get("callid")
        if not isinstance(callid, str) or not callid:
            return "200 OK", b'{"result":1,"errmsg":"no callid"}'
        if self.known_only and callid not in self.placed:
            return "200 OK", OK  # not a call of ours: acknowledge and ignore
        self.act(kind, callid, fields)
        return "200 OK", (b"" if self.shape == "sms-per-delivery" else OK)

    def act(self, kind: str, callid: str, fields: dict[str, Any]) -> None:
        shape = self.shape
        if shape == "escalate-everything":
            self._once(kind, callid, ["dial", kind, callid])
        elif shape == "sms-per-delivery":
            if kind == FAILURE:
                with self._lock:
                    self.actions.append(["sms", callid])
        elif shape == "record-status":
            if kind == PROMPT:
                self._once(kind, callid, ["row", callid, str(fields.get("result"))])
        elif kind == FAILURE or (kind == PROMPT and _unanswered(fields, strict=shape != "lenient-result")):
            self._once("call", callid, ["dial", callid])

    def _once(self, kind: str, callid: str, action: list[str]) -> None:
        with self._lock:
            if (kind, callid) not in self._done:
                self._done.add((kind, callid))
                self.actions.append(action)


def _unanswered(fields: dict[str, Any], *, strict: bool) -> bool:
    result = fields.get("result")
    if strict:
        return result in ("1", "2")
    return result != "0"


def _answer(start_response: StartResponse, status: str, body: bytes, content_type: str = "application/json") -> Any:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


class EdgeRejecter:
    """A handler that refuses one edge value with a contract error and acknowledges everything else:
    ``empty-call-from``, ``hex-callid``, ``uuid1-callid`` or ``foreign-nationcode``."""

    EDGES = ("empty-call-from", "hex-callid", "uuid1-callid", "foreign-nationcode")

    def __init__(self, edge: str) -> None:
        if edge not in self.EDGES:
            raise ValueError(f"unknown edge {edge!r}")
        self.edge = edge

    def refuses(self, fields: dict[str, Any]) -> bool:
        callid = str(fields.get("callid", ""))
        if self.edge == "empty-call-from":
            return fields.get("call_from") == ""
        if self.edge == "hex-callid":
            return len(callid) == 32 and "-" not in callid
        if self.edge == "uuid1-callid":
            return len(callid) == 36 and callid[14] == "1"
        return fields.get("nationcode") not in ("86", None)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        try:
            data = json.loads(body)
        except ValueError:
            return _answer(start_response, "200 OK", b'{"result":1,"errmsg":"not JSON"}')
        fields = next(iter(data.values()), None) if isinstance(data, dict) and len(data) == 1 else None
        if isinstance(fields, dict) and self.refuses(fields):
            return _answer(start_response, "200 OK", b'{"result":1,"errmsg":"refused"}')
        return _answer(start_response, "200 OK", OK)
