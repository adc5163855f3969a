"""Output that never holds up a reply: printed lines and log records queued for a thread of their own.

``voicecb serve`` and ``voicecb provider`` answer senders and deliver callbacks whatever happens to their
output: a stdout nobody reads, a closed one (``| head -3``), a log on a full disk. Each stream gets an
``Outlet`` (a bounded queue and a writer thread); what cannot be written is dropped and counted, and
``say_goodbye`` reports the count at exit (on stderr when stdout is gone).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pytest_voicecb import _text

if TYPE_CHECKING:
    from pytest_voicecb.log import LogWriter

__all__ = ["LogOutlet", "Printer", "say_goodbye"]

QUEUE_ITEMS = 10_000  # items waiting to be written before new ones are dropped
FINISH_SECONDS = 1.0  # at exit, how long the last items may take to be written

T = TypeVar("T")


class Outlet(Generic[T]):
    """Items written by a thread of its own, so the caller never waits.

    ``put`` queues an item (or drops it, counted in ``dropped``, when the queue is full because the
    stream is stuck). ``_sink`` writes a batch and returns how many items it could not write; when the
    stream is gone for good (EPIPE), it sets ``closed`` and every later item is dropped.
    """

    def __init__(self, name: str, on_closed: Callable[[], None] | None = None) -> None:
        self.closed = False
        self._dropped = 0
        self._count_lock = threading.Lock()
        self._queue: queue.Queue[T | None] = queue.Queue(QUEUE_ITEMS)
        self._on_closed = on_closed
        self._last: Callable[[], T] | None = None
        self._thread = threading.Thread(target=self._run, name=f"voicecb-{name}", daemon=True)
        self._thread.start()

    @property
    def dropped(self) -> int:
        return self._dropped

    @property
    def pending(self) -> int:
        """Items queued and not yet written."""
        return self._queue.qsize()

    def put(self, item: T) -> None:
        """Write ``item`` soon, or count it as dropped; never blocks, never raises."""
        if self.closed:
            self._drop(1)
            return
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self._drop(1)

    def _drop(self, n: int) -> None:
        with self._count_lock:
            self._dropped += n

    def _close(self) -> None:
        self.closed = True
        if self._on_closed is not None:
            self._on_closed()

    def _run(self) -> None:
        while True:
            items = [self._queue.get()]
            while len(items) < 512:  # what else is waiting goes out in the same write
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            done = None in items
            self._write([item for item in items if item is not None])
            if done:
                if self._last is not None:
                    self._write([self._last()])
                return

    def _write(self, items: list[T]) -> None:
        if not items:
            return
        if self.closed:
            self._drop(len(items))
            return
        try:
            lost = self._sink(items)
        except Exception:  # a sink's bug or a stream gone for good: count, never let it out
            lost = len(items)
            self._close()
        if lost:
            self._drop(lost)

    def _sink(self, items: list[T]) -> int:
        raise NotImplementedError

    def finish(self, timeout: float, last: Callable[[], T] | None = None) -> bool:
        """Write every queued item, then ``last()`` (computed once the count of dropped items is final).

        Waits up to ``timeout`` seconds; False if the stream is stuck.
        """
        self._last = last
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return False
        self._thread.join(timeout)
        return not self._thread.is_alive()


class Printer(Outlet[str]):
    """Lines to one file descriptor (stdout, stderr). A closed reader (EPIPE) closes the printer."""

    def __init__(self, fd: int, name: str, on_closed: Callable[[], None] | None = None) -> None:
        self.fd = fd
        super().__init__(name, on_closed)

    def say(self, line: str) -> None:
        """Print ``line`` soon, or count it as dropped; never blocks."""
        self.put(line)

    def _sink(self, items: list[str]) -> int:
        # EPIPE raises here (Python ignores SIGPIPE): the reader is gone, ``_write`` closes the printer
        view = memoryview("".join(line + "\n" for line in items).encode("utf-8", "backslashreplace"))
        while view:
            view = view[os.write(self.fd, view) :]
        return 0


class LogOutlet(Outlet[Mapping[str, Any]]):
    """Records to a ``LogWriter`` off the caller's path: a record that cannot be written (a full disk) is
    dropped and counted, and ``errors`` says so (once per run of failures); later records are tried again."""

    def __init__(self, log: LogWriter, errors: Printer, program: str) -> None:
        self.log = log
        self.errors = errors
        self.program = program
        self._failing = False
        super().__init__("log")

    def _sink(self, items: list[Mapping[str, Any]]) -> int:
        lost = 0
        for record in items:
            try:
                self.log.write(record)
                self._failing = False
            except OSError as exc:
                lost += 1
                if not self._failing:
                    self._failing = True
                    where = _text.safe(self.log.path)
                    self.errors.say(
                        f"{self.program}: cannot write the log {where}: {exc.strerror or exc}; records dropped"
                    )
        return lost


def say_goodbye(program: str, line: str, out: Printer, errors: Printer, log: LogOutlet | None = None) -> None:
    """The last line: ``line``, and how many printed lines (and log records) were dropped; on stderr if
    stdout is gone. Then nothing more may reach a stdout that is gone, not even the interpreter's flush."""

    def lost_records() -> str:
        if log is None or not (log.dropped or log.pending):
            return ""
        return f"; {_text.plural(log.dropped, 'log record')} dropped (see the messages above)"

    def last() -> str:
        slow = f" ({_text.plural(out.dropped, 'printed line')} dropped: stdout was not read fast enough)"
        return line + (slow if out.dropped else "") + lost_records()

    if log is not None:
        log.finish(FINISH_SECONDS)
    written = not out.closed and out.finish(FINISH_SECONDS, last)
    if out.closed or not written:
        if out.closed:
            lost, why = _text.plural(out.dropped, "printed line"), "stdout was closed"
        else:  # plus the lines the printer holds in a write that never returned
            lost = f"at least {_text.plural(out.dropped + out.pending, 'printed line')}"
            why = "stdout is not being read"
        errors.say(f"{program}: {line}; {lost} dropped ({why}){lost_records()}")
    errors.finish(FINISH_SECONDS)
    if out.closed or not written:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, out.fd)
        os.close(devnull)
