"""The shipped locustfile, run as users run it: Locust processes on loopback against real servers.

Each test starts ``locust`` in processes of its own (Locust patches the standard library for gevent
when imported, which must not happen in the test process). Deselect them with ``-k "not locust"``.
"""

from __future__ import annotations

import json
import os
import socket
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_voicecb.integrations import LOCUSTFILE
from tests.handlers.serve import serving

pytestmark = pytest.mark.load

ROOT = Path(__file__).resolve().parent.parent
PATH = "/voice/callback"
KIND_NAMES = {"voiceprompt_callback", "voicecode_callback", "voicekey_callback", "voice_failure_callback"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def locust_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "locust", "-f", LOCUSTFILE, *args]


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


class Run:
    """What a Locust run printed: its exit code, its final statistics (``--json``) and its error report."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode = returncode
        self.output = stdout + stderr
        lines = stdout.splitlines()
        assert "[" in lines, self.output[-3000:]
        start = lines.index("[")  # --json prints the final statistics as an indented list, at column 0
        end = lines.index("]", start)
        self.stats: list[dict[str, Any]] = json.loads("\n".join(lines[start : end + 1]))
        # The error report is logged (to stderr), after the run.
        self.error_report = stderr[stderr.find("Error report") :] if "Error report" in stderr else ""

    def total(self, key: str) -> int:
        return sum(int(entry[key]) for entry in self.stats)

    @property
    def names(self) -> set[str]:
        return {entry["name"] for entry in self.stats}


def start_locust(host: str, *options: str, seconds: int, workers: int = 0, users: int = 10) -> list[Any]:
    """Start a headless run of the shipped locustfile; with ``workers``, a master and that many workers."""
    command = ["--headless", "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--host", host]
    command += ["--json", "--only-summary", *options]
    pipes: dict[str, Any] = {"env": environment(), "stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    if not workers:
        return [subprocess.Popen(locust_command(*command), **pipes)]
    port = free_port()
    command += ["--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port)]
    command += ["--expect-workers", str(workers)]
    worker = locust_command("--worker", "--master-host", "127.0.0.1", "--master-port", str(port))
    return [subprocess.Popen(locust_command(*command), **pipes)] + [
        subprocess.Popen(worker, **pipes) for _ in range(workers)
    ]


def finish(started: list[Any]) -> Run:
    """Wait for the processes of one run (the master first) and read what the master printed."""
    try:
        outputs = [process.communicate(timeout=60) for process in started]
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
                process.wait(5)
    stdout, stderr = (part.decode("utf-8", "replace") for part in outputs[0])
    workers_said = "".join(part.decode("utf-8", "replace") for output in outputs[1:] for part in output)
    return Run(started[0].returncode, stdout, stderr + workers_said)


@pytest.fixture(scope="module")
def flask_example() -> Iterator[str]:
    """The Flask example handler (examples/flask_handler) on werkzeug's threaded server."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(ROOT / "examples"))
        from flask_handler.app import create_app
    with serving(create_app()) as base:
        yield base


def test_locust_distributed_run_against_the_flask_example_finds_no_contract_failure(flask_example: str) -> None:
    run = finish(start_locust(flask_example, seconds=5, workers=2))
    assert run.returncode == 0, run.output[-3000:]
    assert run.total("num_failures") == 0, run.error_report
    assert run.total("num_requests") > 100
    assert KIND_NAMES | {f"{name} (duplicate)" for name in KIND_NAMES} <= run.names
    assert "Traceback" not in run.output


class _Chaos(socketserver.BaseRequestHandler):
    """Answers in turn: HTML, a closed connection, nothing at all (a hang), and a JSON string."""

    turn = 0
    release = threading.Event()

    def handle(self) -> None:
        self.request.recv(65536)
        _Chaos.turn += 1
        mode = _Chaos.turn % 4
        if mode == 0:
            self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nConnection: close\r\n\r\n<html></html>")
        elif mode == 2:
            _Chaos.release.wait(5)
        elif mode == 3:
            self.request.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\n"OK"')


@pytest.fixture
def chaos() -> Iterator[str]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Chaos)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        _Chaos.release.set()
        server.shutdown()
        server.server_close()


def test_locust_counts_a_broken_handler_and_a_hanging_refusing_garbage_one_as_failures_with_causes(
    chaos: str,
) -> None:
    from tests.handlers.flask_app import create_app

    with serving(create_app("reject-duplicates", "crash-on-empty-times")) as broken:
        # Both runs at once: neither needs the other's CPU to be correct, and the suite waits once.
        chaotic = start_locust(chaos, "--voicecb-timeout", "0.5", seconds=2, users=4)
        results = {"broken": finish(start_locust(broken, seconds=2, workers=2)), "chaos": finish(chaotic)}

    run = results["broken"]
    assert run.returncode == 1, run.output[-3000:]
    assert run.total("num_failures") > 0
    causes = run.error_report
    assert "CONTRACT.md rule 4 (a duplicate gets success again): expected a success reply: result is 1" in causes
    assert "CONTRACT.md rule 1 (valid input gets success): expected a success reply: HTTP status 500" in causes
    assert "reproduce:\n  curl -sS -i -X POST http://127.0.0.1:" in run.output  # the first of each cause, logged

    run = results["chaos"]
    assert run.returncode == 1, run.output[-3000:]
    causes = run.error_report
    assert "no reply (the provider would retry): HTTPConnectionClosed" in causes, causes
    assert "original=timed out" in causes, causes
    assert '$: not JSON: expected value at line 1 column 1; body starts "<html></html>"' in causes
    assert '$: must be a JSON object, got the string "OK"' in causes
    assert "Traceback" not in run.output


def test_bad_options_are_a_clear_usage_error(tmp_path: Path) -> None:
    done = subprocess.run(
        locust_command("--headless", "--voicecb-duplicates", "1.5", "--host", "http://127.0.0.1:9"),
        cwd=tmp_path,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "duplicate" in done.stderr or "share from 0 to 1" in done.stderr, done.stderr


def test_the_example_locustfile_offers_only_its_own_user() -> None:
    command = [sys.executable, "-m", "locust", "-f", str(ROOT / "examples" / "load" / "locustfile.py"), "--list"]
    done = subprocess.run(command, env=environment(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    users = done.stdout.split("Available Users:")[1].split()
    assert users == ["CampaignEnd"]
