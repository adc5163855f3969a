"""The ``voicecb_server`` and ``voicecb_server_factory`` fixtures, run as users run them (pytester)."""

from __future__ import annotations

import time

import pytest

pytest_plugins = ["pytester"]

HELPERS = """
import json, threading, time, urllib.error, urllib.request
import pytest
from pytest_voicecb.factory import PayloadFactory

factory = PayloadFactory(1)


def send(url, body, timeout=10):
    request = urllib.request.Request(url, data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())
"""


def run(pytester: pytest.Pytester, tests: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(HELPERS + tests)
    return pytester.runpytest("-p", "no:randomly", *args)


def test_one_server_per_session_reset_before_each_test_and_no_delay_leaks(pytester: pytest.Pytester) -> None:
    started = time.monotonic()
    result = run(
        pytester,
        """
PORTS = []


def test_first(voicecb_server):
    PORTS.append(voicecb_server.port)
    assert send(voicecb_server.url, factory.body(factory.prompt())) == (200, {"result": 0, "errmsg": "OK"})
    voicecb_server.reply_with(result=1, errmsg="scripted", times=None)
    voicecb_server.reply_with(delay=60, times=5)
    # a sender still sleeping in this test's scripted delay when the test ends
    sleeper = threading.Thread(target=send, args=(voicecb_server.url, factory.body(factory.prompt()), 120))
    sleeper.daemon = True
    sleeper.start()
    voicecb_server.wait_for(2)


def test_second(voicecb_server):
    PORTS.append(voicecb_server.port)
    assert voicecb_server.requests == []
    started = time.monotonic()
    assert send(voicecb_server.url, factory.body(factory.prompt())) == (200, {"result": 0, "errmsg": "OK"})
    assert time.monotonic() - started < 2
    assert len(voicecb_server.requests) == 1
    assert PORTS[0] == PORTS[1], "one server for the whole session"
""",
    )
    result.assert_outcomes(passed=2)
    assert time.monotonic() - started < 20, "teardown did not wait for the sleeping request"


def test_an_undeclared_invalid_callback_fails_the_test_at_teardown_showing_the_request(
    pytester: pytest.Pytester,
) -> None:
    result = run(
        pytester,
        """
def test_sends_an_empty_callid(voicecb_server):
    body = factory.body(factory.keypress(callid=""))
    status, reply = send(voicecb_server.url_for("/hooks/voice?t=1"), body)
    assert status == 200 and reply["result"] == 1


def test_fine(voicecb_server):
    send(voicecb_server.url, factory.body(factory.prompt()))
""",
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_sends_an_empty_callid*",
            "*the callback server at http://127.0.0.1:*/ received 1 invalid request:",
            "*#1 POST /hooks/voice?t=1 (* bytes, Content-Type: application/x-www-form-urlencoded)",
            '*body: \'{"voicekey_callback":{*"callid":"",*',
            "*invalid voicekey_callback: 1 problem",
            "*- $.voicekey_callback.callid: must not be empty",
            '*answered: 200 {"result":1,*',
            "*call expect_invalid() on the server.",
            "*(or mark the test @pytest.mark.voicecb(allow_invalid=True))",
        ]
    )
    assert "test_fine" not in "\n".join(line for line in result.outlines if "ERROR" in line)


def test_expect_invalid_and_the_marker_opt_out_for_one_test_only(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
def test_declares_it(voicecb_server):
    voicecb_server.expect_invalid()
    send(voicecb_server.url, b"not json")


@pytest.mark.voicecb(allow_invalid=True)
def test_marked(voicecb_server):
    send(voicecb_server.url, b"[]")


def test_strict_again(voicecb_server):
    send(voicecb_server.url, b"{}")
""",
    )
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_strict_again*", "*no known callback key*"])


def test_the_factory_starts_servers_with_other_options_and_stops_and_checks_them(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
SERVERS = []


def test_two_more_servers(voicecb_server_factory, voicecb_server):
    small = voicecb_server_factory(path="/small", max_body_size=100)
    other = voicecb_server_factory("127.0.0.1", path="/hooks", timeout=3)
    SERVERS.extend([small, other])
    assert len({small.port, other.port, voicecb_server.port}) == 3
    assert small.url.endswith("/small") and other.url.endswith("/hooks")
    assert send(other.url, factory.body(factory.code())) == (200, {"result": 0, "errmsg": "OK"})
    assert other.wait_for(kind="code")[0].path == "/hooks"
    status, reply = send(small.url, factory.body(factory.prompt()))
    assert status == 413 and "100-byte limit" in reply["errmsg"]
    small.expect_invalid()
    assert voicecb_server.requests == []


def test_they_were_stopped():
    assert len(SERVERS) == 2 and not any(server.running for server in SERVERS)


def test_factory_servers_are_strict(voicecb_server_factory):
    server = voicecb_server_factory()
    send(server.url, b"oops")


@pytest.mark.voicecb(allow_invalid=True)
def test_the_marker_covers_them(voicecb_server_factory):
    server = voicecb_server_factory()
    send(server.url, b"oops")


def test_bad_options_fail_the_test_clearly(voicecb_server_factory):
    with pytest.raises(ValueError, match="path must be a string starting with"):
        voicecb_server_factory(path="nope")
""",
    )
    result.assert_outcomes(passed=5, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_factory_servers_are_strict*", "*body: 'oops'"])


def test_each_xdist_worker_has_its_own_server(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(
        HELPERS
        + """
import os


@pytest.mark.parametrize("i", range(3))
def test_records_port(voicecb_server, i, tmp_path_factory):
    assert send(voicecb_server.url, factory.body(factory.prompt()))[0] == 200
    assert len(voicecb_server.requests) == 1
    worker = os.environ["PYTEST_XDIST_WORKER"]
    with open(os.path.join(os.environ["PORTS_DIR"], f"{worker}-{i}"), "w") as file:
        file.write(str(voicecb_server.port))
"""
    )
    ports_dir = pytester.mkdir("ports")
    monkeypatch.setenv("PORTS_DIR", str(ports_dir))
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # only the two plugins at work: a faster start
    result = pytester.runpytest_subprocess(
        "-p", "pytest_voicecb.plugin", "-p", "xdist.plugin", "-n", "2", "--dist", "each"
    )
    result.assert_outcomes(passed=6)
    ports: dict[str, set[str]] = {}
    for entry in ports_dir.iterdir():
        ports.setdefault(entry.name.split("-")[0], set()).add(entry.read_text())
    assert sorted(ports) == ["gw0", "gw1"]
    assert all(len(seen) == 1 for seen in ports.values()), f"one server per worker: {ports}"
    assert ports["gw0"] != ports["gw1"], "workers do not share a server"
