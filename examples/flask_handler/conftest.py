"""Point pytest-voicecb at the Flask app: one fixture, and every voicecb fixture and check uses it."""

from __future__ import annotations

import pytest
from flask import Flask

from flask_handler.app import create_app


@pytest.fixture
def app() -> Flask:
    return create_app()


@pytest.fixture
def voicecb_target(app: Flask) -> Flask:
    """The handler under test, in-process (no server needed); a URL string works too."""
    return app
