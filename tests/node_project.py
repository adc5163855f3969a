"""The Node.js example project (``examples/node-express``) for tests that run the official Node.js SDK.

``node_project()`` skips when ``node`` or the project's ``node_modules`` is missing, and fails instead when
the environment says ``VOICECB_REQUIRE_NODE=1`` (as ``.ci/run`` does after ``npm ci``), so a broken
install cannot pass silently; ``running_provider`` runs ``voicecb provider`` as a process and yields the
settings it printed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
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


def read_settings(stdout: IO[str], *also: str) -> dict[str, str]:
    """The ``name = value`` settings ``voicecb provider`` prints after its first line (waiting for ``also``,
    e.g. ``ca_path`` with ``--tls``)."""
    settings: dict[str, str] = {}
    stdout.readline()  # provider listening on ..., delivering to ...
    while not {"endpoint", "secret_id", "secret_key", "voice_sdk_appid", *also} <= settings.keys():
        line = stdout.readline()
        if not line:
            raise AssertionError(f"voicecb provider stopped before printing its settings; got {settings}")
        name, _, value = line.strip().partition(" = ")
        settings[name] = value
    return settings


@contextmanager
def running_provider(callback_url: str, *options: str) -> Iterator[dict[str, str]]:
    """``voicecb provider --callback-url URL OPTIONS --quiet`` until the block ends; the settings it printed."""
    command = [sys.executable, "-m", "pytest_voicecb", "provider", "--callback-url", callback_url, *options]
    process = subprocess.Popen([*command, "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        yield read_settings(process.stdout, *(["ca_path"] if "--tls" in options else []))
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=10)
