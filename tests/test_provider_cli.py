"""``voicecb provider`` as a process: prints the settings, each send and each delivery; logs them durably."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from pytest_voicecb.server import CallbackServer
from tests.provider_calls import place_call


def start(*args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "pytest_voicecb", "provider", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())


def test_it_serves_prints_and_logs_each_send_and_delivery(tmp_path: Path) -> None:
    log = tmp_path / "provider.jsonl"
    with CallbackServer() as receiver:
        process = start("--callback-url", receiver.url, "--scale", "200", "--seed", "4", "--log", str(log))
        try:
            assert process.stdout is not None
            banner = [process.stdout.readline() for _ in range(8)]
            settings = dict(line.strip().split(" = ") for line in banner[1:])
            assert settings["voice_sdk_appid"]
            assert settings["legacy_url"].endswith("/v5/tlsvoicesvr/sendvoiceprompt")
            callid = place_call(settings, "+8613900000001")
            (record,) = receiver.wait_for(1, callid=callid, timeout=10)  # 60 s of ringing, scaled
            assert record.json["voiceprompt_callback"]["result"] == "1"
            send_line = process.stdout.readline()
            delivery_line = process.stdout.readline()
        finally:
            process.send_signal(signal.SIGTERM)
            _out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert send_line.startswith("send    3.0 SendTtsVoice accepted")
    assert callid in send_line
    assert "attempt 1: acknowledged" in delivery_line
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["event"] for e in events] == ["send", "delivery"]
    assert events[1]["callid"] == callid
    assert events[1]["acknowledged"] is True


def test_a_bad_callback_url_is_a_usage_error() -> None:
    process = start("--callback-url", "ftp://example")
    _, err = process.communicate(timeout=30)
    assert process.returncode == 2
    assert "bad --callback-url" in err
