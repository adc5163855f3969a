"""The handler as a Flask app, written the way an integrator would."""

from __future__ import annotations

from flask import Flask, Response, request

from tests.handlers.logic import Handler


def create_app(*bugs: str, delay: float = 0.0, path: str = "/voice/callback") -> Flask:
    """A Flask app serving ``Handler(*bugs)`` at ``path``; the handler is ``app.extensions["voicecb"]``."""
    handler = Handler(*bugs, delay=delay)
    app = Flask(f"voicecb-{'-'.join(sorted(bugs)) or 'correct'}")
    app.extensions["voicecb"] = handler

    @app.post(path)
    def voice_callback() -> Response:
        status, content_type, body = handler(request.get_data())
        return Response(body, status=status, content_type=content_type)

    return app
