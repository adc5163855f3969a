"""The ASGI app, in-process: pytest-voicecb drives it (lifespan included) without a server."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from fastapi_handler.app import create_app


@pytest.fixture
def app() -> FastAPI:
    return create_app()


@pytest.fixture
def voicecb_target(app: FastAPI) -> FastAPI:
    return app
