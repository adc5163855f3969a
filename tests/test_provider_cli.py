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
    assert delivery_line.startswith("deliver #1 prompt callid")  # the short kind names, as everywhere
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["event"] for e in events] == ["send", "delivery"]
    assert events[1]["callid"] == callid
    assert events[1]["acknowledged"] is True


def test_a_bad_callback_url_is_a_usage_error() -> None:
    process = start("--callback-url", "ftp://example")
    _, err = process.communicate(timeout=30)
    assert process.returncode == 2
    assert "bad --callback-url" in err


def banner_of(process: subprocess.Popen[str]) -> dict[str, str]:
    assert process.stdout is not None
    lines = [process.stdout.readline() for _ in range(8)]
    return dict(line.strip().split(" = ") for line in lines[1:])


def place_twelve(settings: dict[str, str], receiver: CallbackServer) -> None:
    """Twelve calls, each send answered (a 500 is a KeyError here) and each callback received."""
    callids = [place_call(settings, "+8613800138000") for _ in range(12)]
    for callid in callids:
        receiver.wait_for(1, callid=callid, timeout=10)


def test_a_closed_stdout_costs_printed_lines_never_a_send_or_a_delivery() -> None:
    """``voicecb provider ... | head -3``: every send answered, every callback delivered, the loss reported."""
    with CallbackServer() as receiver:
        process = start("--callback-url", receiver.url, "--scale", "500")
        try:
            settings = banner_of(process)
            assert process.stdout is not None
            process.stdout.close()  # the reader is gone, as after head -3
            place_twelve(settings, receiver)
        finally:
            process.send_signal(signal.SIGTERM)
            _out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert "stdout was closed; sends are still answered and callbacks delivered" in err
    assert "stopped after 12 sends and 12 calls" in err
    assert "printed lines dropped (stdout was closed)" in err


def test_a_full_disk_under_the_log_costs_log_records_never_a_send_or_a_delivery(tmp_path: Path) -> None:
    import resource

    def small_files() -> None:  # a file may not grow past 1,500 bytes: writes beyond fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (1500, 1500))

    log = tmp_path / "provider.jsonl"
    command = [sys.executable, "-m", "pytest_voicecb", "provider", "--scale", "500", "--log", str(log), "--quiet"]
    with CallbackServer() as receiver:
        process = subprocess.Popen(
            [*command, "--callback-url", receiver.url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=small_files,
        )
        try:
            place_twelve(banner_of(process), receiver)
        finally:
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert f"cannot write the log {log}" in err
    assert "stopped after 12 sends and 12 calls; " in out
    assert "log records dropped" in out
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert 0 < len(events) < 24  # whole lines only: what fitted


def test_each_run_draws_its_own_seed_and_prints_it_for_a_replay() -> None:
    def first_callid(*extra: str) -> tuple[str, str]:
        with CallbackServer() as receiver:
            process = start("--callback-url", receiver.url, "--quiet", *extra)
            try:
                assert process.stdout is not None
                first = process.stdout.readline()
                lines = [process.stdout.readline() for _ in range(7)]
                callid = place_call(dict(line.strip().split(" = ") for line in lines), "+8613800138000")
            finally:
                process.send_signal(signal.SIGTERM)
                process.communicate(timeout=10)
        return first, callid

    (banner1, callid1), (_, callid2) = first_callid(), first_callid()
    assert callid1 != callid2
    seed = banner1.split("--seed ")[1].split()[0]
    banner3, callid3 = first_callid("--seed", seed)
    assert callid3 == callid1
    assert f"(seed {seed}: --seed {seed} replays)" in banner3
