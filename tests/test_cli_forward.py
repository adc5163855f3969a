"""``voicecb serve --forward-to``: callbacks relayed to a real handler, its replies sent back, judged, logged."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.wrappers import Response

from pytest_voicecb import CallbackClient, CallbackServer, PayloadFactory
from tests.handlers import flask_app
from tests.handlers.serve import serving

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def relay(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, Path, subprocess.Popen[str]]]:
    """``voicecb serve --forward-to`` in front of the test handler with the bugs the test names."""
    bugs = getattr(request, "param", ())
    log = tmp_path / "relayed.jsonl"
    with serving(flask_app.create_app(*bugs)) as base:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest_voicecb", "serve", "--port", "0", "--log", str(log), "--forward-to",
             base.removeprefix("http://") + "/voice/callback"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()
            assert first.rstrip().endswith(f"forwarding to {base}/voice/callback")  # host:port made a URL
            yield first.split()[2].rstrip(","), log, proc
        finally:
            proc.terminate()
            proc.communicate(timeout=10)


def test_the_sender_gets_the_handlers_reply_and_both_are_logged(relay: tuple[str, Path, subprocess.Popen[str]]) -> None:
    url, log, proc = relay
    factory = PayloadFactory(5)
    with CallbackClient(url) as client:
        ok = client.post(factory.answered())
        garbage = client.post(b"not json")
    assert ok.json == {"result": 0, "errmsg": "OK"}
    assert garbage.status == 200
    assert garbage.json["result"] != 0  # the handler's contract error, not serve's own
    proc.terminate()
    out, _ = proc.communicate(timeout=10)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["forwarded"]["outcome"] for r in records] == ["passed", "passed"]
    assert [r["forwarded"]["status"] for r in records] == [200, 200]
    assert [r["valid"] for r in records] == [True, False]
    assert out.count("(handler 200 ok)") == 2


@pytest.mark.parametrize("relay", [("crash-on-empty-times", "string-result")], indirect=True)
def test_a_broken_handlers_replies_are_passed_back_and_judged(relay: tuple[str, Path, subprocess.Popen[str]]) -> None:
    url, log, proc = relay
    factory = PayloadFactory(5)
    with CallbackClient(url) as client:
        crashed = client.post(factory.unanswered(accept_time="", end_calltime=""))
        stringy = client.post(factory.answered())
    assert crashed.status == 500  # what the handler said, passed through
    assert stringy.json == {"result": "0", "errmsg": "OK"}
    proc.terminate()
    out, _ = proc.communicate(timeout=10)
    assert "(handler 500 FAILED: HTTP status 500" in out
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["forwarded"]["outcome"] for r in records] == ["failed", "failed"]
    assert "must be a JSON number" in " ".join(records[1]["forwarded"]["problems"])


def test_no_handler_behind_the_relay_is_a_502_in_the_contract_shape(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest_voicecb", "serve", "--port", "0", "--forward-to", "127.0.0.1:9/cb"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split()[2].rstrip(",")
        with CallbackClient(url) as client:
            reply = client.post(PayloadFactory(1).answered())
        assert reply.status == 502
        assert reply.json["result"] != 0
        assert "did not answer" in reply.json["errmsg"]
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert "(handler no reply FAILED: no reply: connection refused" in out


def test_forward_to_does_not_combine_with_a_scripted_reply() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_voicecb", "serve", "--forward-to", "127.0.0.1:9/cb", "--reply", "ok"],
        capture_output=True, text=True, timeout=30, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "does not combine with --reply" in proc.stderr


def test_the_answer_hook_decides_unscripted_replies_and_a_failing_hook_is_a_502() -> None:
    calls: list[str] = []

    def answer(recorded: object) -> Response | None:
        calls.append("called")
        if len(calls) == 1:
            return Response(b'{"result": 7, "errmsg": "from the hook"}', 200, content_type="application/json")
        if len(calls) == 2:
            return None  # the contract's default
        raise RuntimeError("boom")

    with CallbackServer(answer=answer) as server, CallbackClient(server.url) as client:
        payload = PayloadFactory(2).answered()
        assert client.post(payload).json == {"result": 7, "errmsg": "from the hook"}
        assert client.post(payload).json == {"result": 0, "errmsg": "OK"}
        failed = client.post(payload)
        assert failed.status == 502
        assert "RuntimeError: boom" in failed.json["errmsg"]
        server.reply_with(result=3, errmsg="scripted")
        assert client.post(payload).json == {"result": 3, "errmsg": "scripted"}  # a script wins: no hook call
        assert len(calls) == 3
        assert [r.reply.status_code for r in server.requests if r.reply is not None] == [200, 200, 502, 200]
    with pytest.raises(TypeError, match="answer must be callable"):
        CallbackServer(answer="nope")  # type: ignore[arg-type]
