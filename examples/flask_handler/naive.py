"""How not to do it: a Flask handler written straight from the provider's documentation.

It reads ``request.get_json(force=True)``, expects a ``voiceprompt_callback`` (the page it was written
from), computes the talk time and answers success. Valid prompt callbacks work; every other kind raises
``KeyError`` (a 500), an unanswered call with ``""`` times raises ``ValueError``, and a body that is not
JSON gets Flask's HTML 400 page. ``tests/test_conformance_report.py`` checks that the conformance report
of this handler still fits on one screen.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request

app = Flask(__name__)
talk_seconds: dict[str, int] = {}


@app.post("/voice/callback")
def voice_callback() -> Any:
    callback = request.get_json(force=True)["voiceprompt_callback"]
    if callback["result"] == "0":
        talk_seconds[callback["callid"]] = int(callback["end_calltime"]) - int(callback["accept_time"])
    else:
        talk_seconds[callback["callid"]] = int(callback["end_calltime"] or 0)
    return jsonify(result=0, errmsg="OK")
