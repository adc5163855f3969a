"""The README's commands for Node.js teams ("Teams in other languages") run as written: each line of its
``sh`` block in order, from the repository root, a line ending in ``&`` started in the background (and
waited for until its port listens), ports 8000 and 9100 swapped for free ones, the handler's data in the
test's directory. ``npm ci`` is the line CI runs before the tests (``.ci/run``), not run again here: it
would replace the packages other tests are using."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.node_project import node_project
from tests.test_cli import free_port

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Teams in other languages"


def node_commands() -> list[str]:
    """The lines of the section's ``sh`` block."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index(SECTION) :]
    section = section[: section.index("\n## ", len(SECTION))]
    (block,) = re.findall(r"^```sh\n(.*?)^```$", section, re.M | re.S)
    return block.splitlines()


def test_npm_ci_in_the_readme_is_what_ci_runs() -> None:
    commands = node_commands()
    assert commands[:2] == ["cd examples/node-express", "npm ci"]
    assert "(cd examples/node-express && npm ci --no-audit --no-fund)" in (ROOT / ".ci" / "run").read_text()


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def background() -> Iterator[list[subprocess.Popen[str]]]:
    """The processes the README starts with ``&``, each in a session of its own, stopped after the test."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        with_group = os.getpgid(process.pid) if process.poll() is None else None
        if with_group is not None:
            os.killpg(with_group, signal.SIGTERM)
        process.communicate(timeout=10)


def test_the_node_commands_run_as_written(tmp_path: Path, background: list[subprocess.Popen[str]]) -> None:
    node_project()
    ports = {"8000": str(free_port()), "9100": str(free_port())}
    env = {
        **os.environ,
        "DATA_DIR": str(tmp_path),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    cwd = ROOT
    output = ""
    for line in node_commands():
        command = re.sub(r"\b(8000|9100)\b", lambda m: ports[m.group()], line)
        if command.startswith("cd "):
            cwd = cwd / shlex.split(command)[1]
            continue
        if command == "npm ci":
            continue
        if command.endswith(" &"):
            process = subprocess.Popen(
                ["bash", "-c", command[:-2]],
                cwd=cwd,
                env=env,
                text=True,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            background.append(process)
            port = int(re.findall(r"(?:PORT=|--port )(\d+)", command)[0])
            deadline = time.monotonic() + 60
            while not listening(port):
                assert process.poll() is None, f"{line!r} stopped: {process.communicate()[1]}"
                assert time.monotonic() < deadline, f"{line!r} never listened on {port}"
                time.sleep(0.05)
            continue
        output = until_it_shows(command, cwd, env) if command.startswith("curl ") else run(command, cwd, env)
    numbers = [row["number"] for row in json.loads(output)["escalations"]]
    assert numbers.count("+8613900000001") == 1, numbers  # the SDK's call: once, however often delivered
    assert len(numbers) > 50, "and each call voicecb check registered and left unanswered: once each"
    for report in ("junit.xml", "summary.md"):  # written where the README's check ran; not left in the repository
        assert (cwd / report).is_file()
        (cwd / report).unlink()


def run(command: str, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{command!r} exited {done.returncode}: {done.stdout}{done.stderr}"
    return done.stdout


def until_it_shows(command: str, cwd: Path, env: dict[str, str]) -> str:
    """The README's last line, run until the callback has arrived (a second of simulated ringing)."""
    deadline = time.monotonic() + 60
    while True:
        output = run(command, cwd, env)
        numbers = [row["number"] for row in json.loads(output)["escalations"]]
        if "+8613900000001" in numbers or time.monotonic() > deadline:
            return output
        time.sleep(0.2)
