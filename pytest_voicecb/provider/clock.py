"""The simulator's time: a clock the test moves (``ManualClock``) or real time, optionally scaled (``SystemClock``).

Ringing for a minute must not cost a test a minute: under ``ManualClock`` nothing happens until the test
advances time, and every timestamp in a callback comes from the clock, never from ``time.time()``.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

from pytest_voicecb import _arguments

__all__ = ["Clock", "ManualClock", "SystemClock"]


class Clock(Protocol):
    """What the simulator needs of a clock: the current epoch seconds, and whether the test drives it."""

    manual: bool

    def now(self) -> float: ...


class _Movable:
    """Moves forward when told: ``advance(seconds)``, ``move_to(epoch)`` (an offset on top of ``_base``)."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def _base(self) -> float:
        raise NotImplementedError

    def now(self) -> float:
        """The current simulated epoch seconds."""
        return self._base() + self._offset

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (>= 0); returns the new time."""
        step = _arguments.seconds("seconds", seconds, allow_zero=True)
        with self._lock:
            self._offset += step
        return self.now()

    def move_to(self, epoch: float) -> float:
        """Move to ``epoch`` if it is later than now (time never runs backwards); returns the new time."""
        target = _arguments.seconds("epoch", epoch, allow_zero=True)
        with self._lock:
            current = self.now()
            if target > current:
                self._offset += target - current
        return self.now()


class ManualClock(_Movable):
    """Epoch seconds that move only when told: ``advance(seconds)``, ``move_to(epoch)``.

    ``start`` defaults to the current wall-clock second, so callbacks carry plausible times; pass a
    number for times that are the same on every run. ``tick=True`` also lets real time flow on top
    of the moves (for a standalone server a test still nudges).
    """

    manual = True

    def __init__(self, start: float | None = None, *, tick: bool = False) -> None:
        super().__init__()
        self._start = float(int(time.time())) if start is None else _arguments.seconds("start", start, allow_zero=True)
        self.tick = bool(tick)
        self._origin = time.monotonic()

    def __repr__(self) -> str:
        return f"ManualClock(now={self.now():.3f}, tick={self.tick})"

    def _base(self) -> float:
        return self._start + (time.monotonic() - self._origin if self.tick else 0.0)


class SystemClock(_Movable):
    """Real time, ``scale`` times faster (``scale=60``: a minute of ringing takes a second).

    ``advance``/``move_to`` jump it forward too (the standalone's ``/voicecb-api/advance``): time then
    flows on from there.
    """

    manual = False

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = _arguments.seconds("scale", scale)
        self._wall = time.time()
        self._origin = time.monotonic()

    def __repr__(self) -> str:
        return f"SystemClock(scale={self.scale:g})"

    def _base(self) -> float:
        return self._wall + (time.monotonic() - self._origin) * self.scale

    def real_seconds(self, simulated: float) -> float:
        """How many real seconds ``simulated`` seconds of this clock take."""
        return max(simulated, 0.0) / self.scale
