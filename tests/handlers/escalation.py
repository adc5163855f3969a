"""A Flask handler with side effects: it dials a (fake) escalation call when a call was not answered or
failed, once per callid. Bugs seen in real handlers switch on what costs money:

- ``redial-duplicates``: dials again on every delivery of an unanswered or failed call;
- ``dial-on-garbage``: ignores its JSON decode error, takes the empty result for "not answered", dials,
  and answers success (acknowledge everything, log what could not be parsed);
- ``race``: checks "seen?" and records the callid a moment apart, so two deliveries at once both dial.

``app.extensions["escalation"]`` is the ``Dialler``: ``calls`` (what was dialled) and ``requests``
(every request, a snapshot that changes on anything: a wrong ``effects`` callable).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from flask import Flask, Response, jsonify, request

from pytest_voicecb.contract import FAILURE, PROMPT, CallbackError, CodeCallback, PromptCallback, parse_callback

BUGS = ("redial-duplicates", "dial-on-garbage", "race")


class Dialler:
    """The fake telephony client: records each call it is asked to place."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.requests = 0
        self.lock = threading.Lock()

    def dial(self, callid: str, mobile: str) -> None:
        with self.lock:
            self.calls.append((callid, mobile))


def create_app(*bugs: str) -> Flask:
    unknown = set(bugs) - set(BUGS)
    if unknown:
        raise ValueError(f"unknown bugs {sorted(unknown)}; known: {', '.join(BUGS)}")
    dialler = Dialler()
    escalated: set[str] = set()
    app = Flask(f"escalation-{'-'.join(bugs) or 'correct'}")
    app.extensions["escalation"] = dialler

    def first_time(callid: str) -> bool:
        if "race" in bugs:
            seen = callid in escalated
            time.sleep(0.05)  # the database round trip between the check and the insert
            escalated.add(callid)
            return not seen
        with dialler.lock:
            seen = callid in escalated
            escalated.add(callid)
        return not seen

    @app.post("/voice/callback")
    def voice_callback() -> Any:
        with dialler.lock:
            dialler.requests += 1
        body = request.get_data()
        if "dial-on-garbage" in bugs:
            try:
                data = json.loads(body)
            except ValueError:
                data = {}  # "log it and acknowledge, so the provider stops retrying"
            inner = data.get(PROMPT) if isinstance(data, dict) else None
            fields: dict[str, Any] = inner if isinstance(inner, dict) else {}
            if fields.get("result") != "0":
                dialler.dial(str(fields.get("callid")), str(fields.get("mobile")))
            return jsonify(result=0, errmsg="OK")
        try:
            callback = parse_callback(body)
        except CallbackError as exc:
            return jsonify(result=1, errmsg=str(exc.problems[0]))
        failed = callback.kind == FAILURE or (
            isinstance(callback, (PromptCallback, CodeCallback)) and callback.result != "0"
        )
        if failed and (first_time(callback.callid) or "redial-duplicates" in bugs):
            dialler.dial(callback.callid, callback.mobile)
        return jsonify(result=0, errmsg="OK")

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        response = jsonify(result=1, errmsg=f"internal error: {type(exc).__name__}")
        return response

    return app
