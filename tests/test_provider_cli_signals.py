"""``voicecb provider`` stops on SIGTERM whichever of its threads the kernel hands the signal to.

A signal sent to a process goes to any thread that does not block it. CPython runs the handler in the
main thread, but only once that thread runs bytecode again: a main thread blocked in ``Event.wait()``
without a timeout is not woken when the signal landed on a worker thread, so the command ignored
SIGTERM and Ctrl-C now and then (tests/test_provider_cli.py timed out waiting for it). This sends the
signal to a worker thread on purpose (``tgkill``), every time.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time

import pytest

from pytest_voicecb.server import CallbackServer

_TGKILL = {"x86_64": 234, "aarch64": 131}.get(os.uname().machine) if hasattr(os, "uname") else None

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or _TGKILL is None, reason="needs Linux's tgkill to aim at one thread"
)


def _tgkill(pid: int, tid: int, sig: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(_TGKILL, pid, tid, sig) != 0:
        raise OSError(ctypes.get_errno(), f"tgkill({pid}, {tid}, {sig})")


def test_sigterm_on_a_worker_thread_stops_the_provider() -> None:
    with CallbackServer() as receiver:
        command = [sys.executable, "-m", "pytest_voicecb", "provider", "--callback-url", receiver.url, "--quiet"]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert process.stdout is not None
            banner = process.stdout.readline()
            assert "provider listening on" in banner
            time.sleep(0.2)  # the main thread is waiting for a signal by now
            workers = [int(tid) for tid in os.listdir(f"/proc/{process.pid}/task") if int(tid) != process.pid]
            assert workers, "the provider serves from threads of its own"
            _tgkill(process.pid, max(workers), signal.SIGTERM)
            out, err = process.communicate(timeout=15)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert process.returncode == 0, err
    assert "stopped after 0 sends and 0 calls" in out + err, out + err
