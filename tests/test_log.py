"""``pytest_voicecb.log``: the JSON-lines callback log, on real files (and a real full disk where we may mount one)."""

from __future__ import annotations

import errno
import io
import json
import os
import stat
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import pytest

from pytest_voicecb.log import RECORD_FIELDS, LogWriter, body_of, encode_record, read_records, write_record


def record(n: int, **extra: object) -> dict[str, object]:
    return {"callid": f"c{n:05d}", "valid": True, "body": "x" * 50, "body_encoding": "utf-8", **extra}


def test_a_record_is_one_line_that_reads_back_the_same(tmp_path: Path) -> None:
    tricky = record(1, problems=["line\nbreak", "\u2028", "\x1b[2J"], body="空号\n{}")
    line = encode_record(tricky)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    stream = io.BytesIO()
    write_record(stream, tricky)
    write_record(stream, record(2))
    stream.seek(0)
    assert list(read_records(stream)) == [tricky, record(2)]


def test_body_of_gives_back_the_bytes_received() -> None:
    assert body_of({"body": "空号", "body_encoding": "utf-8"}) == "空号".encode()
    assert body_of({"body": "ff00", "body_encoding": "hex"}) == b"\xff\x00"
    assert body_of({"body": ""}) == b""


def test_the_reader_skips_and_counts_garbage_and_a_partial_last_line(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_bytes(
        encode_record(record(1))
        + b"not json\n"
        + b"\n"
        + b"[1, 2]\n"
        + encode_record(record(2))
        + encode_record(record(3))[:20]  # a crash in the middle of a line
    )
    records = read_records(log)
    assert [r["callid"] for r in records] == ["c00001", "c00002"]
    assert records.skipped == 3
    assert records.skipped_lines == [2, 4, 6]


def test_the_writer_appends_whole_lines_from_many_threads(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    with LogWriter(log) as writer:
        threads = [
            threading.Thread(target=lambda i=i: [writer.write(record(i * 1000 + n)) for n in range(50)])
            for i in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    records = read_records(log)
    assert len({r["callid"] for r in records}) == 200
    assert records.skipped == 0


def test_the_file_is_created_readable_by_its_owner_only(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    old = os.umask(0)
    try:
        LogWriter(log).close()
    finally:
        os.umask(old)
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_a_symlink_is_refused_unless_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.txt"
    target.write_text("precious\n")
    link = tmp_path / "log.jsonl"
    link.symlink_to(target)
    with pytest.raises(OSError, match="symbolic link") as caught:
        LogWriter(link)
    assert caught.value.errno == errno.ELOOP
    assert target.read_text() == "precious\n"
    with LogWriter(link, follow_symlinks=True) as writer:
        writer.write(record(1))
    assert target.read_text().splitlines()[0] == "precious"


def test_a_file_that_is_not_regular_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="not a regular file"):  # and opening it did not hang
        LogWriter(fifo)


def test_after_a_crash_mid_line_the_next_line_starts_afresh(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_bytes(encode_record(record(1)) + encode_record(record(2))[:30])
    with LogWriter(log) as writer:
        writer.write(record(3))
    records = read_records(log)
    assert [r["callid"] for r in records] == ["c00001", "c00003"]
    assert records.skipped == 1


def test_reopen_after_a_move_writes_a_new_file(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    with LogWriter(log) as writer:
        writer.write(record(1))
        log.rename(tmp_path / "log.jsonl.1")
        writer.write(record(2))  # still the old file: it was moved, not closed
        writer.reopen()
        writer.write(record(3))
    assert [r["callid"] for r in read_records(tmp_path / "log.jsonl.1")] == ["c00001", "c00002"]
    assert [r["callid"] for r in read_records(log)] == ["c00003"]


def test_a_closed_writer_refuses_to_write(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path / "log.jsonl")
    writer.close()
    with pytest.raises(OSError, match="closed"):
        writer.write(record(1))
    assert RECORD_FIELDS[0] == "received_at"


@contextmanager
def mounted_small_disk(mount: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs at ``mount``: a disk that really fills up. Skips the test where mounting is refused."""
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with mounted_small_disk(tmp_path / "disk") as mount:
        yield mount


def _write_until_error(f: BinaryIO, chunk: bytes) -> int:
    try:
        while True:
            f.write(chunk)
    except OSError as exc:
        return exc.errno or 0


def fill(disk: Path) -> Path:
    """Fill ``disk`` to the last byte; returns the filler file (delete it to give the space back)."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        errors = {_write_until_error(f, b"\0" * size) for size in (4096, 512, 64, 1)}
    assert errors == {errno.ENOSPC}
    return filler


def test_a_full_disk_takes_the_failed_line_back_and_the_next_line_parses(small_disk: Path) -> None:
    """The defect: a partial line stayed in the file and the next acknowledged line was glued onto it."""
    log = small_disk / "log.jsonl"
    written: list[str] = []
    with LogWriter(log) as writer:
        writer.write(record(0))
        written.append("c00000")
        filler = fill(small_disk)
        failed = None
        for n in range(1, 200):  # fill the log's last page until a line does not fit
            try:
                writer.write(record(n, body="y" * 300))
            except OSError as exc:
                failed, error = n, exc.errno
                break
            written.append(f"c{n:05d}")
        assert failed is not None, "the disk never filled"
        assert error == errno.ENOSPC
        size = log.stat().st_size
        assert log.read_bytes().endswith(b"\n"), "the failed line was left half-written"
        filler.unlink()  # space comes back
        writer.write(record(failed + 1))
        written.append(f"c{failed + 1:05d}")
    assert log.stat().st_size > size
    records = read_records(log)
    assert [r["callid"] for r in records] == written
    assert records.skipped == 0
    assert all(json.loads(line) for line in log.read_bytes().splitlines())


def test_when_the_take_back_fails_too_the_next_line_starts_afresh(
    small_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the file cannot be cut back (ftruncate fails as well), the half line stays but never swallows the next."""
    log = small_disk / "log.jsonl"
    with LogWriter(log) as writer:
        writer.write(record(0))
        filler = fill(small_disk)

        def refuse(fd: int, length: int) -> None:
            raise OSError(errno.EIO, "simulated: ftruncate failed")

        monkeypatch.setattr(os, "ftruncate", refuse)
        acknowledged = ["c00000"]
        for n in range(1, 200):
            try:
                writer.write(record(n, body="y" * 300))
            except OSError:
                break
            acknowledged.append(f"c{n:05d}")
        assert not log.read_bytes().endswith(b"\n"), "expected a half-written line to stay"
        monkeypatch.undo()
        filler.unlink()
        writer.write(record(999))
        acknowledged.append("c00999")
    records = read_records(log)
    assert [r["callid"] for r in records] == acknowledged
    assert records.skipped == 1
