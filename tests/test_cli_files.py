"""``voicecb`` and its files: the serve log on a full disk, symlinks, permissions, rotation; the check report."""

from __future__ import annotations

import json
import os
import resource
import signal
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_voicecb import PayloadFactory
from pytest_voicecb.log import read_records
from tests.handlers.serve import serving
from tests.test_cli import PATH, ROOT, assert_one_line_error, free_port, post, served, voicecb
from tests.test_log import fill, mounted_small_disk


def until_the_log_fails(port: int, factory: PayloadFactory) -> tuple[list[str], str]:
    """Post callbacks (each about 1 KiB) until one is answered 500; the acknowledged callids and the failed one."""
    acknowledged = []
    for payload in factory.batch(60, call_from="1" * 600):
        callid = payload["voiceprompt_callback"]["callid"]
        status, body = post(port, factory.body(payload))
        if status == 500:
            assert b"cannot write the log" in body or b"not taken" in body, body
            return acknowledged, callid
        assert status == 200, body
        acknowledged.append(callid)
    raise AssertionError("the log never failed")


def full_disk(
    tmp_path: Path, request: pytest.FixtureRequest, how: str
) -> tuple[Path, Callable[[int], Callable[[], object]]]:
    """Where to log, and ``limit(pid)``: make that process's log writes fail; it returns ``give_back()``."""
    if how == "tmpfs":
        disk = request.getfixturevalue("small_disk")
        return disk / "callbacks.jsonl", lambda pid: fill(disk).unlink
    log = tmp_path / "callbacks.jsonl"

    def limit_file_size(pid: int) -> Callable[[], object]:
        soft, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (log.stat().st_size + 2500, hard))
        return lambda: resource.prlimit(pid, resource.RLIMIT_FSIZE, (soft, hard))

    return log, limit_file_size


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with mounted_small_disk(tmp_path / "disk") as mount:
        yield mount


@pytest.fixture(scope="module")
def example_url() -> Iterator[str]:
    """The Flask example handler (examples/flask_handler), served on loopback."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(ROOT / "examples"))
        from flask_handler.app import create_app
    with serving(create_app()) as base:
        yield base + PATH


@pytest.mark.parametrize("how", ["tmpfs", "RLIMIT_FSIZE"])
def test_a_full_disk_answers_500_and_never_corrupts_an_acknowledged_line(
    how: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The defect: once space came back, the next callback (answered 200) was glued onto the failed half line."""
    log, limit = full_disk(tmp_path, request, how)
    factory = PayloadFactory(3)
    with served("--log", str(log), "--quiet") as server:
        first = factory.answered()
        assert post(server.port, factory.body(first))[0] == 200
        give_back = limit(server.proc.pid)
        acknowledged, failed = until_the_log_fails(server.port, factory)
        give_back()
        after = factory.batch(3)
        assert [post(server.port, factory.body(p))[0] for p in after] == [200, 200, 200]
        code, stderr = server.stop(signal.SIGTERM)
    assert code == 0
    assert "cannot write the log" in stderr
    records = read_records(log)
    logged = [r["callid"] for r in records]
    assert records.skipped == 0, log.read_bytes()[-2000:]
    expected = [first["voiceprompt_callback"]["callid"], *acknowledged] + [
        p["voiceprompt_callback"]["callid"] for p in after
    ]
    assert logged == expected
    assert failed not in logged


def test_serve_refuses_a_symlinked_log_unless_told(tmp_path: Path) -> None:
    target = tmp_path / "precious.txt"
    target.write_text("keep me\n")
    link = tmp_path / "callbacks.jsonl"
    link.symlink_to(target)
    assert_one_line_error(voicecb("serve", "--port", "0", "--log", str(link)), "symbolic link", "--log-follow-symlinks")
    assert target.read_text() == "keep me\n"
    with served("--log", str(link), "--log-follow-symlinks", "--quiet") as server:
        assert post(server.port, b"{}")[0] == 200
        assert server.stop()[0] == 0
    assert target.read_text().startswith("keep me\n{")


def test_serve_creates_its_log_readable_by_the_owner_only(tmp_path: Path) -> None:
    log = tmp_path / "callbacks.jsonl"
    with served("--log", str(log), "--quiet") as server:
        assert server.stop()[0] == 0
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_sighup_reopens_the_log_after_rotation_and_does_not_stop_the_server(tmp_path: Path) -> None:
    log = tmp_path / "callbacks.jsonl"
    rotated = tmp_path / "callbacks.jsonl.1"
    factory = PayloadFactory(4)
    before, after = factory.batch(2)
    with served("--log", str(log), "--quiet") as server:
        assert post(server.port, factory.body(before))[0] == 200
        log.rename(rotated)  # logrotate: mv, then HUP
        server.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while not log.exists():
            assert time.monotonic() < deadline, "SIGHUP did not reopen the log"
            assert server.proc.poll() is None, "SIGHUP stopped the server"
            time.sleep(0.01)
        assert post(server.port, factory.body(after))[0] == 200
        code, stderr = server.stop(signal.SIGTERM)
    assert (code, stderr) == (0, "")
    assert [r["callid"] for r in read_records(rotated)] == [before["voiceprompt_callback"]["callid"]]
    assert [r["callid"] for r in read_records(log)] == [after["voiceprompt_callback"]["callid"]]


def test_sighup_without_a_log_is_harmless() -> None:
    with served("--quiet") as server:
        server.proc.send_signal(signal.SIGHUP)
        assert post(server.port, b"{}")[0] == 200
        assert server.stop()[0] == 0


def test_check_json_leaves_an_existing_report_alone_when_the_run_exits_2(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    report.write_text('{"ok": true, "from": "the last good run"}\n')
    proc = voicecb("check", f"http://127.0.0.1:{free_port()}{PATH}", "--json", str(report))
    assert_one_line_error(proc, "connection refused")
    assert json.loads(report.read_text())["from"] == "the last good run"
    assert sorted(os.listdir(tmp_path)) == ["report.json"], "a temporary file was left behind"


def test_check_json_replaces_the_report_when_the_run_ends(tmp_path: Path, example_url: str) -> None:
    report = tmp_path / "report.json"
    report.write_text("old")
    proc = voicecb("check", example_url, "--json", str(report), "--skip", "robust/*", "--skip", "reject/*")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(report.read_text())["ok"] is True
    assert sorted(os.listdir(tmp_path)) == ["report.json"]
