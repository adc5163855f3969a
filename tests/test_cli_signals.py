"""A command stops promptly on SIGTERM whenever it arrives. The handler used to set a ``threading.Event``
the main thread was waiting on: a signal landing inside that Event's own ``wait()`` (its lock held by the
same thread) deadlocked the command, which then ignored every later SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

from pytest_voicecb.cli.common import Signals


@pytest.mark.parametrize("command", [["provider", "--callback-url", "127.0.0.1:9/cb"], ["serve", "--port", "0"]])
def test_sigterm_right_after_start_up_stops_the_command(command: list[str]) -> None:
    for _ in range(3):  # the signal lands at a slightly different moment each time
        process = subprocess.Popen(
            [sys.executable, "-m", "pytest_voicecb", *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ.copy(),
        )
        try:
            assert process.stdout is not None
            assert process.stdout.readline()
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        assert process.returncode == 0


def test_a_signal_is_recorded_without_any_lock_the_main_thread_may_hold() -> None:
    previous = signal.getsignal(signal.SIGUSR1)
    try:
        signals = Signals(signal.SIGUSR1)
        lock = threading.Lock()
        with lock:  # as inside an Event's wait(): the handler must not need any lock
            signal.raise_signal(signal.SIGUSR1)
        signals.wait(5)
        assert signals.take() == [signal.SIGUSR1]
        assert signals.take() == []
    finally:
        signal.signal(signal.SIGUSR1, previous)
