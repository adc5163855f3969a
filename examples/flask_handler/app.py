"""The Flask wiring of a voice-callback handler: one route, the raw body, a JSON reply, never a 5xx.

Run it locally with ``flask --app flask_handler.app run --port 8000`` (from ``examples/``), then
``voicecb check http://127.0.0.1:8000/voice/callback``.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, request
from voice_callbacks import MAX_BODY_SIZE, CallbackStore, handle
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


def create_app(store: CallbackStore | None = None) -> Flask:
    """The application; ``store`` remembers processed callbacks (a fresh one unless given)."""
    app = Flask(__name__)
    app.extensions["voice_callbacks"] = store = store if store is not None else CallbackStore()

    @app.post("/voice/callback")
    def voice_callback() -> Any:
        # Check the size before reading: a huge body is refused without being buffered.
        if (request.content_length or 0) > MAX_BODY_SIZE:
            return jsonify(result=1, errmsg=f"body over the {MAX_BODY_SIZE}-byte limit"), 413
        # get_data() is the raw body whatever the Content-Type; request.json would refuse text/plain.
        return jsonify(handle(request.get_data(cache=False), store))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        # Flask's default error pages are HTML; the provider expects the contract's JSON shape.
        status = exc.code if exc.code and exc.code < 500 else 200
        return jsonify(result=1, errmsg=exc.description or exc.name), status

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        # A bug must not turn into a 5xx: log it and ask the provider to try again later.
        log.exception("voice callback failed")
        return jsonify(result=2, errmsg="temporarily unable to process the callback")

    return app


app = create_app()
