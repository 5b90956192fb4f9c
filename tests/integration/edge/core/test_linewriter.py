"""`LineWriter` (edge/core/linewriter.py) on real files and FIFOs: whole lines, O_APPEND from
two writers, reopen after a rename, and a writer that cannot write never blocks `add`."""

from __future__ import annotations

import os
import time
from pathlib import Path

from proxynow.edge.core.linewriter import LineWriter
from tests.support.proc import poll


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True) if path.exists() else []


def test_two_writers_append_whole_lines_to_one_file(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "access.log"  # the directory is created
    # Room for every batch: here the point is the file's content, not dropping.
    writers = [LineWriter(str(path), flush_at=7, max_bytes=1 << 30) for _ in range(2)]
    for i in range(2000):
        for number, writer in enumerate(writers):
            writer.add(b"writer %d line %d %s\n" % (number, i, b"x" * (i % 300)))
    for writer in writers:
        writer.close()
    lines = lines_of(path)
    assert [writer.dropped for writer in writers] == [0, 0]
    assert len(lines) == 4000
    for number in range(2):
        mine = [line for line in lines if line.startswith(b"writer %d " % number)]
        assert [int(line.split()[3]) for line in mine] == list(range(2000))
        assert all(line.endswith(b"x" * (int(line.split()[3]) % 300) + b"\n") for line in mine)
    assert oct(path.stat().st_mode & 0o777) in ("0o664", "0o644")  # 0664 less the umask


def test_reopen_after_a_rename_writes_to_the_new_file(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    writer = LineWriter(str(path))
    writer.add(b"before\n")
    writer.flush()
    poll(lambda: lines_of(path) == [b"before\n"], what="the first line")
    path.rename(tmp_path / "access.log.1")
    writer.reopen()
    writer.add(b"after\n")
    writer.close()
    assert lines_of(path) == [b"after\n"]
    assert lines_of(tmp_path / "access.log.1") == [b"before\n"]


def test_a_fifo_nobody_reads_drops_lines_and_never_blocks_add(tmp_path: Path) -> None:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # opened, never read
    try:
        writer = LineWriter(str(path), flush_at=10, max_bytes=8000)
        line = b"y" * 200 + b"\n"
        started = time.monotonic()
        for _ in range(20_000):  # 4 MB: far more than a pipe holds
            writer.add(line)
        assert time.monotonic() - started < 5.0
        writer.flush()
        assert writer.dropped > 10_000
        # What the pipe got is whole lines: writes of at most PIPE_BUF on a FIFO.
        data = poll(lambda: _read(reader), what="the thread's first writes")
        assert len(data) % len(line) == 0
        started = time.monotonic()
        writer.close(timeout=0.5)  # the thread is stuck in a write: close gives up
        assert time.monotonic() - started < 3.0
    finally:
        os.close(reader)


def test_a_fifo_nobody_opens_does_not_block_either(tmp_path: Path) -> None:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    writer = LineWriter(str(path), flush_at=1, max_bytes=4)
    for _ in range(100):
        writer.add(b"z\n")
    assert writer.dropped >= 97  # the thread waits in open(): 2 lines wait, the rest is refused
    writer.close(timeout=0.2)


def test_an_unopenable_path_counts_its_lines_as_dropped(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    writer = LineWriter(str(blocker / "access.log"))  # a file where a directory should be
    writer.add(b"lost\n")
    writer.flush()
    poll(lambda: writer.dropped == 1, what="the dropped line counted")
    assert writer.error.startswith(f"opening {blocker / 'access.log'}: ")
    writer.close()


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 1 << 20)
    except BlockingIOError:
        return b""
