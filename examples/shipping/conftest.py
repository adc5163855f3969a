"""Point the shop at the provider simulator, and the simulator's callbacks at the shop."""

from __future__ import annotations

import pytest
from flask import Flask

from pytest_voicecb.provider import Provider
from shipping.app import Settings, create_app


@pytest.fixture
def settings(voicecb_provider: Provider) -> Settings:
    """What production reads from its environment, taken from the simulator."""
    return Settings(
        secret_id=voicecb_provider.secret_id,
        secret_key=voicecb_provider.secret_key,
        voice_sdk_appid=voicecb_provider.voice_sdk_appid,
        endpoint=voicecb_provider.endpoint,
        protocol="http",
    )


@pytest.fixture
def app(settings: Settings) -> Flask:
    return create_app(settings)


@pytest.fixture
def voicecb_target(app: Flask) -> Flask:
    """Callbacks are delivered to the shop in-process; a URL works too."""
    return app
