"""Stopping the simulator: prompt, bounded, and nothing owed is lost from the record."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from pytest_voicecb.provider import Provider, RetryPolicy, SystemClock
from pytest_voicecb.server import CallbackServer
from tests.handlers.serve import serving
from tests.test_provider_delivery import send


def _wait_until(condition: Any) -> None:
    """Synchronise with a background thread (not a timing assertion: it only waits for a state)."""
    event = threading.Event()
    for _ in range(2000):
        if condition():
            return
        event.wait(0.005)
    raise AssertionError("the state never came")


def test_stop_leaves_deliveries_that_had_not_begun_owed_instead_of_attempting_them() -> None:
    """One worker, its handler hung on the first call: stop() must not run the two queued calls' attempts
    (before, the pool's shutdown ran them, each waiting out its timeout); they stay owed in the record."""
    release, hung = threading.Event(), threading.Event()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        hung.set()
        release.wait(10)
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"result":0,"errmsg":"OK"}']

    policy = RetryPolicy(retries=0, timeout=0.5)
    with serving(app) as url:
        provider = Provider(url, seed=1, clock=SystemClock(scale=1000), retry=policy, concurrency=1).start()
        try:
            callids = [send(provider, f"+861380000000{n}") for n in range(3)]
            assert hung.wait(10)
            _wait_until(lambda: provider.dispatcher.next_due() is None)  # all three handed to the pool
        finally:
            provider.stop()
            release.set()
    attempted = {callid: len(provider.find_deliveries(callid=callid)[0].attempts) for callid in callids}
    assert sorted(attempted.values()) == [0, 0, 1], attempted
    assert provider.dispatcher.pending == 2
    assert {d.state for d in provider.deliveries if not d.attempts} == {"pending"}


def _tgkill(pid: int, tid: int, number: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.tgkill(pid, tid, number) != 0:
        raise OSError(ctypes.get_errno(), "tgkill failed")


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux's /proc/PID/task to signal one thread")
def test_voicecb_provider_exits_on_a_sigterm_the_kernel_hands_to_another_thread(tmp_path: Path) -> None:
    """A process signal goes to any thread; the command used to wait on an Event with no timeout, which a
    signal caught by another thread never wakes, so SIGTERM was ignored (seen under a loaded full suite)."""
    with CallbackServer() as receiver:
        command = [sys.executable, "-m", "pytest_voicecb", "provider", "--callback-url", receiver.url, "--quiet"]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert process.stdout is not None
            assert process.stdout.readline().startswith("provider listening on ")
            threads = sorted(int(tid) for tid in os.listdir(f"/proc/{process.pid}/task") if int(tid) != process.pid)
            assert threads, "the provider runs threads besides the main one"
            _tgkill(process.pid, threads[0], signal.SIGTERM)
            _out, err = process.communicate(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert process.returncode == 0, err
    assert "stopped after 0 sends and 0 calls" in err + _out
