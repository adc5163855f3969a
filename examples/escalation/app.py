"""A handler whose callbacks cost money: when a voice notification was not answered (or the call
failed), it places an escalation call to the on-call phone. The provider may deliver a callback twice,
even twice at once, and a failed call reports itself twice (a status callback with ``result`` "2" and a
``voice_failure_callback``, same callid), so the escalation is placed once per callid, decided under a
lock, never for a body it could not parse, and never for a rejected one.

Run it with ``flask --app escalation.app:create_app run --port 8000`` (from ``examples/``).
"""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask, jsonify, request
from voice_callbacks import MAX_BODY_SIZE, Rejected, parse


class Dialler:
    """The telephony client (a fake here: it records the calls it would place)."""

    def __init__(self) -> None:
        self.placed: list[tuple[str, str]] = []

    def call(self, callid: str, mobile: str) -> None:
        self.placed.append((callid, mobile))


class Escalations:
    """Which calls were escalated. ``escalate_once`` checks and records under one lock: two deliveries at
    the same moment must not both see "not yet"."""

    def __init__(self, dialler: Dialler) -> None:
        self.dialler = dialler
        self._done: set[str] = set()
        self._lock = threading.Lock()

    def escalate_once(self, callid: str, mobile: str) -> None:
        with self._lock:
            if callid in self._done:
                return
            self._done.add(callid)
        self.dialler.call(callid, mobile)


def create_app(dialler: Dialler | None = None) -> Flask:
    app = Flask(__name__)
    escalations = Escalations(dialler if dialler is not None else Dialler())
    app.extensions["escalations"] = escalations

    @app.post("/voice/callback")
    def voice_callback() -> Any:
        if (request.content_length or 0) > MAX_BODY_SIZE:
            return jsonify(result=1, errmsg=f"body over the {MAX_BODY_SIZE}-byte limit"), 413
        try:
            kind, fields = parse(request.get_data(cache=False))
        except Rejected as exc:
            return jsonify(result=1, errmsg=str(exc))  # nothing is dialled for what we cannot read
        failed = kind == "voice_failure_callback" or (
            kind in ("voiceprompt_callback", "voicecode_callback") and fields["result"] != "0"
        )
        if failed:
            escalations.escalate_once(fields["callid"], fields["mobile"])
        return jsonify(result=0, errmsg="OK")

    return app
