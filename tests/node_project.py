"""The Node.js example project (``examples/node-express``) for tests that run the official Node.js SDK.

``node_project()`` skips when ``node`` or the project's ``node_modules`` is missing, and fails instead when
the environment says ``VOICECB_REQUIRE_NODE=1`` (as ``.ci/run`` does after ``npm ci``), so a broken
install cannot pass silently; ``read_settings`` reads what ``voicecb provider`` prints at start-up.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import IO

import pytest

PROJECT = Path(__file__).resolve().parent.parent / "examples" / "node-express"


def node_project() -> Path:
    """The example's directory, with ``node`` on PATH and its packages installed."""
    if shutil.which("node") is None:
        _missing("node is not installed (Node.js 18 or later runs the official Node.js SDK)")
    if not (PROJECT / "node_modules" / "tencentcloud-sdk-nodejs").is_dir():
        _missing(f"the Node.js packages are not installed: run `npm ci` in {PROJECT}")
    return PROJECT


def _missing(reason: str) -> None:
    if os.environ.get("VOICECB_REQUIRE_NODE") == "1":
        pytest.fail(f"VOICECB_REQUIRE_NODE=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def read_settings(stdout: IO[str]) -> dict[str, str]:
    """The ``name = value`` settings ``voicecb provider`` prints after its first line."""
    settings: dict[str, str] = {}
    stdout.readline()  # provider listening on ..., delivering to ...
    while not {"endpoint", "secret_id", "secret_key", "voice_sdk_appid"} <= settings.keys():
        line = stdout.readline()
        if not line:
            raise AssertionError(f"voicecb provider stopped before printing its settings; got {settings}")
        name, _, value = line.strip().partition(" = ")
        settings[name] = value
    return settings
