"""``voicecb replay``: a log recorded by ``voicecb serve --log`` redelivered to a handler, as users run it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_voicecb import CallbackClient, PayloadFactory
from pytest_voicecb.log import read_records
from tests.handlers import flask_app
from tests.handlers.serve import serving

ROOT = Path(__file__).resolve().parents[1]


def voicecb(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_voicecb", *args], capture_output=True, text=True, timeout=60, cwd=ROOT
    )


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real log: ``voicecb serve --log`` receiving a valid prompt, its duplicate, a key press, garbage
    bytes, and a line cut short by a crash."""
    path = tmp_path_factory.mktemp("replay") / "callbacks.jsonl"
    serve = subprocess.Popen(
        [sys.executable, "-m", "pytest_voicecb", "serve", "--port", "0", "--log", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert serve.stdout is not None
        url = serve.stdout.readline().split()[2].rstrip(",")
        factory = PayloadFactory(11)
        prompt = factory.unanswered(accept_time="", end_calltime="")
        with CallbackClient(url) as client:
            for what in (prompt, prompt, factory.keypress(keypress="1"), b"\xff\xfe not json"):
                client.post(what)
    finally:
        serve.terminate()
        serve.communicate(timeout=10)
    with path.open("ab") as f:
        f.write(b'{"received_at": "2025-01-01T00:00:00+00:00", "body": "{\\"voicepro')  # a crash mid-line
    return path


def test_replaying_to_a_correct_handler_passes_every_record(log: Path) -> None:
    assert len(list(read_records(log))) == 4
    with serving(flask_app.create_app()) as base:
        proc = voicecb("replay", str(log), base + "/voice/callback")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split(" -> ")[1].rsplit(": ", 1)[1] for line in lines[:4]] == ["ok"] * 4
    assert lines[2].startswith("#3 keypress ")
    assert lines[-1] == "replayed 4 callbacks: 0 failed, 0 warned, 1 unreadable line skipped"


def test_replaying_finds_what_the_fixed_handler_still_gets_wrong(log: Path) -> None:
    with serving(flask_app.create_app("crash-on-empty-times", "reject-duplicates")) as base:
        proc = voicecb("replay", str(log), base + "/voice/callback")
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert [line.split(": ")[1] for line in lines[:4]] == ["FAILED", "FAILED", "ok", "FAILED"]
    assert "HTTP 500" in lines[0]  # the empty times of an unanswered call still crash it
    assert lines[-1] == "replayed 4 callbacks: 3 failed, 0 warned, 1 unreadable line skipped"


def test_filters_choose_what_is_replayed(log: Path) -> None:
    with serving(flask_app.create_app()) as base:
        only_keys = voicecb("replay", str(log), base + "/voice/callback", "--kind", "keypress")
        only_valid = voicecb("replay", str(log), base + "/voice/callback", "--only-valid")
    assert only_keys.stdout.splitlines()[-1].startswith("replayed 1 callback:")
    assert only_valid.stdout.splitlines()[-1].startswith("replayed 3 callbacks:")


def test_bad_input_is_one_line_and_exit_2(log: Path, tmp_path: Path) -> None:
    missing = voicecb("replay", str(tmp_path / "nope.jsonl"), "http://127.0.0.1:9/voice/callback")
    assert missing.returncode == 2
    assert missing.stderr.count("\n") == 1
    assert "cannot read the log" in missing.stderr
    refused = voicecb("replay", str(log), "http://127.0.0.1:9/voice/callback")
    assert refused.returncode == 2
    assert "connection refused" in refused.stderr
    kind = voicecb("replay", str(log), "http://127.0.0.1:9/voice/callback", "--kind", "sms")
    assert kind.returncode == 2
    assert "--kind" in kind.stderr
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_bytes(b"\x00\x01 not a log\n" + json.dumps(["a list"]).encode() + b"\n")
    empty = voicecb("replay", str(garbage), "http://127.0.0.1:9/voice/callback")
    assert empty.returncode == 2  # a script must not take "nothing replayed" for "all good"
    assert empty.stderr.startswith(f"voicecb replay: no records in {garbage}, 2 unreadable lines skipped: ")


def test_records_that_cannot_be_sent_are_skipped_and_counted(log: Path, tmp_path: Path) -> None:
    """Valid JSON that is not a sendable record (a bad hex body, an unknown kind, a list for a kind) is
    skipped with its reason, and the rest is replayed: no "internal error", no exit 2."""
    mixed = tmp_path / "mixed.jsonl"
    bad = [
        {"method": "POST", "body": "zz not hex", "body_encoding": "hex", "kind": "voiceprompt_callback"},
        {"method": "POST", "body": "{}", "kind": "sms_callback", "callid": "c-1"},
        {"method": "POST", "body": "{}", "kind": ["a", "list"]},
        {"method": "POST", "body": "{}", "content_type": "application/json\r\nX-Injected: 1"},
    ]
    mixed.write_bytes(log.read_bytes() + b"\n" + b"".join(json.dumps(r).encode() + b"\n" for r in bad))
    with serving(flask_app.create_app()) as base:
        proc = voicecb("replay", str(mixed), base + "/voice/callback", "--kind", "prompt")
        every = voicecb("replay", str(mixed), base + "/voice/callback")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[-1].endswith("2 records that cannot be sent skipped")  # bad hex, a list
    assert every.returncode == 0, every.stdout + every.stderr
    assert "#6 unknown kind 'sms_callback' c-1 -> HTTP 200" in every.stdout  # sent as recorded, judged
    assert "internal error" not in every.stderr
    assert every.stdout.splitlines()[-1].endswith("2 records that cannot be sent skipped")
