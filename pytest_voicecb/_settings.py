"""What the command line and the ini file say about targets and conformance runs, read once per run.

Shared by ``plugin.py`` (the fixtures) and ``conformance/items.py`` (``--voicecb-conformance``); imports
only pytest, as everything the plugin loads at start-up must.
"""

from __future__ import annotations

from typing import Any

import pytest

__all__ = ["HOW_TO_CONFIGURE", "Settings", "path_for", "settings"]

HOW_TO_CONFIGURE = """\
pytest-voicecb has no target: tell it which callback handler to test, in one of three ways.

1. A fixture in conftest.py returning an in-process app or a URL:

       import pytest

       @pytest.fixture
       def voicecb_target():
           from myproject.app import app  # Flask / Django WSGI app, or FastAPI / Starlette ASGI app
           return app                     # or "http://127.0.0.1:8000/voice/callback"

2. On the command line:

       pytest --voicecb-target=http://127.0.0.1:8000/voice/callback
       pytest --voicecb-target=myproject.wsgi:application

3. In the pytest configuration (pytest.ini [pytest], or pyproject.toml [tool.pytest.ini_options]):

       voicecb_target = myproject.wsgi:application"""


class Settings:
    """What the command line and the ini file say about targets and conformance runs."""

    def __init__(self, *, target: str | None, path: str | None, deadline: float | None, strict: bool) -> None:
        self.target = target
        self.path = path
        self.deadline = deadline
        self.strict = strict

    def runner_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"strict": self.strict}
        if self.deadline is not None:
            options["deadline"] = self.deadline
        return options


_SETTINGS = pytest.StashKey[Settings]()


def settings(config: pytest.Config) -> Settings:
    found = config.stash.get(_SETTINGS, None)
    if found is None:
        found = config.stash[_SETTINGS] = _read_settings(config)
    return found


def _read_settings(config: pytest.Config) -> Settings:
    target = config.getoption("voicecb_target", None) or str(config.getini("voicecb_target") or "").strip()
    path = config.getoption("voicecb_path", None) or str(config.getini("voicecb_path") or "").strip()
    return Settings(
        target=str(target) if target else None,
        path=str(path) if path else None,
        deadline=config.getoption("voicecb_deadline", None),
        strict=bool(config.getoption("voicecb_strict", False)),
    )


def path_for(config: pytest.Config, target: object) -> str | None:
    """The configured path where it applies: in-process apps, and URLs that name no path of their own."""
    path = settings(config).path
    if path is None:
        return None
    if not isinstance(target, str):
        from pytest_voicecb.client import CallbackClient

        return None if isinstance(target, CallbackClient) else path  # a client has its own path
    from urllib.parse import urlsplit

    from pytest_voicecb.client import TargetError, resolve_target

    try:
        url = resolve_target(target)  # the client's reading: "host:port" is an http URL too
        has_path = isinstance(url, str) and bool(urlsplit(url).path)
    except (TargetError, TypeError, ValueError):
        return None  # the client explains a bad target
    return None if has_path else path
