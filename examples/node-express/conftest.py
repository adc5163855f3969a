"""The Node.js service as the Python side's tests see it: ``node app.js`` on a free loopback port with its
data in the test's own directory, and ``voicecb provider`` as a process, both stopped after the test.

Tests here skip when ``node`` or the npm packages are missing (run ``npm ci`` in this directory), and
fail instead under ``VOICECB_REQUIRE_NODE=1``, which CI sets after installing them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent


def _require_node() -> None:
    missing = None
    if shutil.which("node") is None:
        missing = "node is not installed (the example needs Node.js 18 or later)"
    elif not (HERE / "node_modules" / "express").is_dir():
        missing = f"the example's npm packages are not installed: run `npm ci` in {HERE}"
    if missing and os.environ.get("VOICECB_REQUIRE_NODE") == "1":
        pytest.fail(f"VOICECB_REQUIRE_NODE=1 but {missing}", pytrace=False)
    if missing:
        pytest.skip(missing)


@dataclass
class NodeService:
    """The running handler: its callback ``url``, its ``base`` URL and its ``data`` directory."""

    url: str
    base: str
    data: Path

    def effects(self) -> dict[str, Any]:
        """What the handler did, from its test-only endpoint: ``{"escalations": [...]}``."""
        with urllib.request.urlopen(f"{self.base}/_test/effects", timeout=10) as response:
            snapshot: dict[str, Any] = json.loads(response.read())
            return snapshot


def stop(process: subprocess.Popen[str]) -> str:
    """Stop a process started here (SIGTERM, then kill); its stderr."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.communicate(timeout=10)[1] or ""
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()[1] or ""


@pytest.fixture
def node_service(tmp_path: Path) -> Iterator[NodeService]:
    _require_node()
    env = {**os.environ, "PORT": "0", "DATA_DIR": str(tmp_path), "ENABLE_TEST_ENDPOINTS": "1"}
    process = subprocess.Popen(
        ["node", "app.js"], cwd=HERE, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:"), line + (
            process.stderr.read() if process.stderr else ""
        )
        url = line.split()[-1]
        yield NodeService(url, url.rsplit("/voice/callback", 1)[0], tmp_path)
    finally:
        stop(process)


@pytest.fixture
def provider_settings(node_service: NodeService) -> Iterator[dict[str, str]]:
    """``voicecb provider`` delivering to the Node.js handler (60 simulated seconds per second, each status
    delivered twice); the settings it printed."""
    command = [sys.executable, "-m", "pytest_voicecb", "provider", "--callback-url", node_service.url]
    process = subprocess.Popen(
        [*command, "--scale", "60", "--duplicates", "1", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        process.stdout.readline()  # provider listening on ..., delivering to ...
        settings: dict[str, str] = {}
        while not {"endpoint", "secret_id", "secret_key", "voice_sdk_appid"} <= settings.keys():
            name, _, value = process.stdout.readline().strip().partition(" = ")
            assert name, f"voicecb provider stopped: {stop(process)}"
            settings[name] = value
        yield settings
    finally:
        stop(process)
