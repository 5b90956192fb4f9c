"""`LineWriter` (edge/core/linewriter.py) on real files and FIFOs, fed by the access log's
`LineBuffer` (edge/http/access_lines.py): whole lines, O_APPEND from two writers, reopen
after a rename, and a writer that cannot write never blocks `add` nor grows memory."""

from __future__ import annotations

import os
import time
from pathlib import Path

from proxynow.edge.core.linewriter import LineWriter
from proxynow.edge.http.access_lines import LineBuffer
from tests.support.proc import poll


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True) if path.exists() else []


def test_two_writers_append_whole_lines_to_one_file(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "access.log"  # the directory is created
    # Room for every batch: here the point is the file's content, not dropping.
    writers = [LineWriter(str(path), max_bytes=1 << 30) for _ in range(2)]
    buffers = [LineBuffer(writer, flush_at=7) for writer in writers]
    for i in range(2000):
        for number, buffer in enumerate(buffers):
            buffer.add(f"writer {number} line {i} {'x' * (i % 300)}\n")
    for buffer, writer in zip(buffers, writers, strict=True):
        buffer.flush()
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
    writer.submit(["before\n"], 7)
    poll(lambda: lines_of(path) == [b"before\n"], what="the first line")
    path.rename(tmp_path / "access.log.1")
    writer.reopen()
    writer.submit(["after\n"], 6)
    writer.close()
    assert lines_of(path) == [b"after\n"]
    assert lines_of(tmp_path / "access.log.1") == [b"before\n"]


def test_a_fifo_nobody_reads_drops_lines_and_never_blocks_add(tmp_path: Path) -> None:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # opened, never read
    try:
        writer = LineWriter(str(path), max_bytes=8000)
        buffer = LineBuffer(writer, flush_at=10)
        line = "y" * 200 + "\n"
        started = time.monotonic()
        for _ in range(20_000):  # 4 MB: far more than a pipe holds
            buffer.add(line)
        assert time.monotonic() - started < 5.0
        buffer.flush()
        assert writer.dropped > 10_000
        assert writer.waiting <= 8000  # what waits for the thread is bounded
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
    writer = LineWriter(str(path), max_bytes=4)
    buffer = LineBuffer(writer, flush_at=1)
    for _ in range(100):
        buffer.add("z\n")
    assert writer.dropped >= 97  # the thread waits in open(): 2 lines wait, the rest is refused
    writer.close(timeout=0.2)


def test_an_unopenable_path_counts_its_lines_as_dropped(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    writer = LineWriter(str(blocker / "access.log"))  # a file where a directory should be
    writer.submit(["lost\n"], 5)
    poll(lambda: writer.dropped == 1, what="the dropped line counted")
    assert writer.error.startswith(f"opening {blocker / 'access.log'}: ")
    writer.close()


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 1 << 20)
    except BlockingIOError:
        return b""


def test_a_batch_is_one_write_of_whole_lines_and_non_ascii_is_utf8(tmp_path: Path) -> None:
    """The thread joins and encodes a batch (the loop handed it `str` lines): an é is two
    bytes in the file, a lone surrogate (never from a decoded request) a `?`."""
    path = tmp_path / "access.log"
    writer = LineWriter(str(path))
    lines = ["caf\u00e9\n", "a\ud800b\n", *[f"n {i}\n" for i in range(1000)]]
    writer.submit(lines, sum(map(len, lines)))
    writer.close()
    assert writer.written == 1002 and writer.dropped == 0 and writer.batches == 1
    assert lines_of(path)[:3] == [b"caf\xc3\xa9\n", b"a?b\n", b"n 0\n"]
    assert len(lines_of(path)) == 1002
