"""The callback log: one JSON object per line, written durably, read back forgivingly.

``voicecb serve --log`` writes it; the provider simulator, ``voicecb replay`` and the console read and
write the same format, so it lives here and nowhere else. A record holds ``received_at`` (ISO 8601, UTC),
``method``, ``path`` (with the query), ``content_type``, ``kind``, ``callid``, ``valid``, ``problems``,
``body`` (``body_encoding`` ``"hex"`` when the body is not UTF-8), ``reply_status`` and ``truncated``
(the sender stopped before the whole body arrived).

The promise: a line that was acknowledged (``LogWriter.write`` returned) is whole, on disk, and
``read_records`` yields it. A write that fails (a full disk, a file-size limit) is taken back, so the
next line never gets glued onto half a line; ``read_records`` skips, and counts, what a crash may leave
behind (a partial last line) instead of failing on it.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import threading
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_voicecb.server import RecordedCallback

__all__ = [
    "RECORD_FIELDS",
    "LogWriter",
    "Records",
    "body_of",
    "encode_record",
    "read_records",
    "record_of",
    "write_record",
]

RECORD_FIELDS = (
    "received_at",
    "method",
    "path",
    "content_type",
    "kind",
    "callid",
    "valid",
    "problems",
    "body",
    "body_encoding",
    "reply_status",
    "truncated",
)
"""The keys of a record, in the order they are written."""

_MODE = 0o600  # a log holds phone numbers: readable by its owner only
_sync = getattr(os, "fdatasync", os.fsync)
"""fdatasync where there is one: the data and the file size reach the disk, the modification time may wait."""


def record_of(recorded: RecordedCallback) -> dict[str, Any]:
    """A recorded callback as one log record: when, what was sent, whether it is valid, the answer."""
    try:
        body: str = recorded.body.decode("utf-8")
        encoding = "utf-8"
    except UnicodeDecodeError:
        body, encoding = recorded.body.hex(), "hex"
    callid = recorded.fields.get("callid")
    return {
        "received_at": datetime.fromtimestamp(recorded.received_at, timezone.utc).isoformat(timespec="microseconds"),
        "method": recorded.method,
        "path": recorded.path + (f"?{recorded.query}" if recorded.query else ""),
        "content_type": recorded.headers.get("Content-Type"),
        "kind": recorded.kind,
        "callid": callid if isinstance(callid, str) else None,
        "valid": recorded.valid,
        "problems": [str(problem) for problem in recorded.problems],
        "body": body,
        "body_encoding": encoding,
        "reply_status": recorded.reply.status_code if recorded.reply is not None else None,
        "truncated": bool(getattr(recorded, "truncated", False)),  # the body never fully arrived
    }


def body_of(record: Mapping[str, Any]) -> bytes:
    """The request body a record holds, as the bytes that were received."""
    body = record.get("body") or ""
    if record.get("body_encoding") == "hex":
        return bytes.fromhex(body)
    return str(body).encode("utf-8", "surrogatepass")


def encode_record(record: Mapping[str, Any]) -> bytes:
    """One record as one line: JSON, UTF-8, ending in a newline (JSON escapes any newline inside it)."""
    return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8", "surrogatepass")


def write_record(stream: IO[bytes], record: Mapping[str, Any]) -> None:
    """Append one record to an open binary stream and flush it (no fsync: ``LogWriter`` is the durable one)."""
    stream.write(encode_record(record))
    stream.flush()


class Records:
    """The records of a log, read lazily; what could not be read is skipped and counted, never fatal.

    Iterate to get each record (a dict). Afterwards ``skipped`` is the number of lines that were not a
    JSON object (a line cut short by a crash or a full disk, garbage), and ``skipped_lines`` their line
    numbers (the first 100). Empty lines are ignored.
    """

    def __init__(self, source: str | os.PathLike[str] | IO[bytes]) -> None:
        self.source = source
        self.skipped = 0
        self.skipped_lines: list[int] = []

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self.skipped = 0
        self.skipped_lines = []
        if isinstance(self.source, (str, os.PathLike)):
            with open(self.source, "rb") as stream:
                yield from self._read(stream)
        else:
            yield from self._read(self.source)

    def _read(self, stream: IO[bytes]) -> Iterator[dict[str, Any]]:
        for number, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line.decode("utf-8", "surrogatepass"))
            except (ValueError, RecursionError):
                record = None
            if isinstance(record, dict):
                yield record
                continue
            self.skipped += 1
            if len(self.skipped_lines) < 100:
                self.skipped_lines.append(number)


def read_records(source: str | os.PathLike[str] | IO[bytes]) -> Records:
    """The records of the log at ``source`` (a path or an open binary stream), skipping unreadable lines.

    ``records = read_records(path); for record in records: ...; records.skipped`` tells how many lines
    were skipped.
    """
    return Records(source)


class LogWriter:
    """An append-only log file; ``write`` returns once its whole line is on disk (written and fsynced).

    Group commit: a thread that finds its line already covered by another thread's fsync does not fsync
    again, so concurrent callbacks share one disk flush instead of queueing for one each. A failed write
    is taken back (the file is truncated to the end of the last whole line); if even that fails, the next
    line starts on a fresh line, so a reader loses nothing that was acknowledged.

    The file is created ``0600``. A symbolic link is refused unless ``follow_symlinks`` (someone could
    point the log at a file of theirs). ``reopen()`` opens the path again: after ``mv`` by logrotate, new
    lines go to a new file. Raises ``OSError`` (with a sentence in ``strerror``) when the file cannot be
    opened.
    """

    def __init__(self, path: str | os.PathLike[str], *, follow_symlinks: bool = False) -> None:
        self.path = os.fspath(path)
        self.follow_symlinks = follow_symlinks
        self._write_lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._fd, self._good, self._fresh_line = self._open()
        self._written = 0  # lines written so far
        self._synced = 0  # lines known to be on disk

    def _open(self) -> tuple[int, int, bool]:
        """The file opened for appending; the end of its last whole line; whether it ends mid-line."""
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        if not self.follow_symlinks:
            flags |= getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(self.path, flags, _MODE)
        except OSError as exc:
            if exc.errno == errno.ELOOP and not self.follow_symlinks:
                raise OSError(
                    exc.errno, f"{self.path} is a symbolic link; refusing to write through it", self.path
                ) from None
            raise
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise OSError(errno.EINVAL, f"{self.path} is not a regular file", self.path)
            os.set_blocking(fd, True)
            size = info.st_size
            ends_mid_line = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
        except BaseException:
            os.close(fd)
            raise
        return fd, size, ends_mid_line

    def write(self, record: Mapping[str, Any]) -> None:
        """Append ``record`` as one line and return once it is on disk; ``OSError`` if it could not be."""
        line = encode_record(record)
        with self._write_lock:  # whole lines, one after another: lines never interleave
            fd = self._fd
            if fd < 0:
                raise OSError(errno.EBADF, f"the log {self.path} is closed")
            data = b"\n" + line if self._fresh_line else line
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            except OSError:
                self._take_back(fd)
                raise
            self._good = os.lseek(fd, 0, os.SEEK_CUR)  # O_APPEND: the offset is the end of the file
            self._fresh_line = False
            self._written += 1
            mine = self._written
        with self._sync_lock:
            if self._synced >= mine:
                return  # another thread's fsync (or a reopen), begun after our write, already covered it
            with self._write_lock:
                upto = self._written
                fd = self._fd
            _sync(fd)
            self._synced = upto

    def _take_back(self, fd: int) -> None:
        """Undo a failed write: cut the file back to its last whole line, or start the next line afresh."""
        try:
            if os.fstat(fd).st_size == self._good:
                return  # nothing of the line reached the file
            os.ftruncate(fd, self._good)
        except OSError:
            self._fresh_line = True

    def reopen(self) -> None:
        """Open the path again (after log rotation); lines written so far are flushed to the old file first.

        On failure (``OSError``) the old file stays in use.
        """
        fd, good, fresh_line = self._open()
        with self._sync_lock, self._write_lock:
            old = self._fd
            try:
                if old >= 0:
                    _sync(old)
            except OSError:
                os.close(fd)
                raise
            self._fd, self._good, self._fresh_line = fd, good, fresh_line
            self._synced = self._written
        if old >= 0:
            os.close(old)

    def close(self) -> None:
        """Close the file (lines already acknowledged are on disk)."""
        with self._sync_lock, self._write_lock:
            fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<LogWriter {self.path!r}>"
