"""Whole lines to a file or stdout, written by a thread so the event loop never waits on a disk.

`LineWriter.add(line)` is all the loop does per line: an append to an in-memory list. The list
is handed to the writer thread as one batch when `flush_at` lines have accumulated, or (with
`flush_at` 0, the default) when `_BATCH_BYTES` are buffered or `FLUSH_DELAY` after the
batch's first line (one timer per batch, not per line), or by `flush()` from the worker's
tick. Each hand-off wakes the thread, which then takes the GIL from the event loop for a
moment: handing every loop iteration's few lines (as a `call_soon` per iteration did) cost
a wake-up and a write per handful of requests; a batch of up to 256 KiB is a few hundred
lines per wake-up and per write. The hand-off never blocks: at most `max_bytes` wait for
the thread, and a batch that would go past that is dropped and counted in `dropped` (a
full or stalled disk, or a FIFO nobody reads, costs log lines, never requests or memory).
Each counter is written by one thread only (the loop: lines handed and refused; the
writer: lines done and failed), so no lock is taken.

Several worker processes write one file: it is opened with O_APPEND, and every `write` call
carries whole lines only, so lines never interleave. On a regular file Linux does one
append per call; on a pipe or FIFO only writes of at most PIPE_BUF bytes are atomic, so
there the lines are grouped into writes of at most PIPE_BUF (a single longer line is
written alone). Opening happens in the thread as well (opening a FIFO blocks until a
reader comes). `reopen()` (SIGUSR1, for logrotate) makes the thread close the file and
open the path again before its next write.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import select
import stat
import threading

__all__ = ["LineWriter"]

_REGULAR_CHUNK = 1 << 20  # bytes per write to a regular file (one append each)
_FLUSH_BYTES = 1 << 20  # buffered bytes that are handed to the thread at once
_BATCH_BYTES = 256 << 10  # with flush_at 0: buffered bytes handed at once
FLUSH_DELAY = 0.05  # with flush_at 0: seconds a line waits at most for its batch
_WAKE = b""  # a queue item that only wakes the thread (a reopen, or stop)


class LineWriter:
    """Buffered, non-blocking, whole-line writes of `bytes` lines (each ending with b"\\n")."""

    __slots__ = (
        "_batch_bytes",
        "_done",
        "_failed",
        "_fd",
        "_handed",
        "_loop",
        "_pending",
        "_queue",
        "_refused",
        "_reopen",
        "_scheduled",
        "_size",
        "_stopping",
        "_thread",
        "batches",
        "error",
        "flush_at",
        "max_bytes",
        "path",
        "written",
    )

    def __init__(
        self,
        path: str,
        flush_at: int = 0,
        max_bytes: int = 16 << 20,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.path = path  # "" : stdout
        self.flush_at = flush_at
        self._loop = loop
        self._pending: list[bytes] = []
        self._scheduled = False
        self.max_bytes = max_bytes
        self._size = 0  # bytes of `_pending`
        self._batch_bytes = min(_BATCH_BYTES, max_bytes)
        self.batches = 0  # batches handed to the thread (each one wake-up of it)
        # (lines, their bytes) to write, or _WAKE
        self._queue: queue.SimpleQueue[tuple[list[bytes], int] | bytes] = queue.SimpleQueue()
        self._reopen = threading.Event()
        self._stopping = False
        self._fd = -1
        self._handed = self._refused = 0  # the loop's counters: bytes handed, lines refused
        self._done = self._failed = 0  # the thread's: bytes written or failed, lines failed
        self.written = 0  # lines the thread wrote
        self.error = ""  # the last open or write error (set by the thread)
        self._thread = threading.Thread(target=self._run, name="access-log", daemon=True)
        self._thread.start()

    # -- the event loop's side

    def add(self, line: bytes) -> None:
        """Queue one line; never blocks."""
        pending = self._pending
        pending.append(line)
        self._size += len(line)
        if self.flush_at:
            # A large bufferingSize holds at most _FLUSH_BYTES, whatever it says.
            if len(pending) >= self.flush_at or self._size >= _FLUSH_BYTES:
                self.flush()
        elif self._size >= self._batch_bytes:
            self.flush()
        elif not self._scheduled and self._loop is not None:
            self._scheduled = True
            self._loop.call_later(FLUSH_DELAY, self._flush_later)
        elif self._loop is None:
            self.flush()

    def _flush_later(self) -> None:
        if self._scheduled:  # else a full batch went meanwhile, and a new one waits
            self.flush()

    def flush(self) -> None:
        """Hand the lines queued so far to the thread (dropped if its queue is full)."""
        batch = self._pending
        if not batch:
            return
        self._scheduled = False
        size, self._pending, self._size = self._size, [], 0
        if self._handed - self._done + size > self.max_bytes:
            self._refused += len(batch)  # the thread is that far behind
            return
        self._handed += size
        self.batches += 1
        self._queue.put((batch, size))  # a SimpleQueue never blocks a put

    @property
    def dropped(self) -> int:
        """Lines lost: refused while the thread was behind, or whose write failed."""
        return self._refused + self._failed

    def reopen(self) -> None:
        """Close and reopen the file before the next write (logrotate moved it)."""
        if not self._reopen.is_set():  # a flood of signals queues one wake-up
            self._reopen.set()
            self._queue.put(_WAKE)

    def close(self, timeout: float = 2.0) -> None:
        """Flush, let the thread write what it holds (up to `timeout`), then stop it."""
        self.flush()
        self._stopping = True
        self._queue.put(_WAKE)
        self._thread.join(timeout)

    # -- the writer thread

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if self._reopen.is_set():
                self._reopen.clear()
                self._close_fd()
            if isinstance(item, tuple):
                self._write(*item)
                self._done += item[1]
            if self._stopping and self._queue.empty():
                self._close_fd()
                return

    def _write(self, batch: list[bytes], total: int) -> None:
        """Write `batch` (`total` bytes) in whole-line writes. This thread holds the GIL
        while it runs Python, taking it from the event loop: a batch that fits one write
        (every batch of a regular file unless bufferingSize is large) is one join and
        one write, no loop over its lines."""
        if self._fd < 0 and not self._open():
            self._failed += len(batch)
            return
        limit = _REGULAR_CHUNK if _regular(self._fd) else select.PIPE_BUF
        if total <= limit:
            self._write_chunk(batch)
            return
        start = size = 0
        for index, line in enumerate(batch):
            if size and size + len(line) > limit:
                self._write_chunk(batch[start:index])
                start, size = index, 0
            size += len(line)
        self._write_chunk(batch[start:])

    def _write_chunk(self, lines: list[bytes]) -> None:
        data = memoryview(b"".join(lines))
        try:
            while data:
                data = data[os.write(self._fd, data) :]
        except OSError as exc:
            # A full disk or a closed pipe: these lines are lost, later ones are retried on
            # a reopened file.
            self.error = f"writing {self.path or 'stdout'}: {exc.strerror}"
            self._failed += len(lines)
            self._close_fd()
            return
        self.written += len(lines)

    def _open(self) -> bool:
        if not self.path:
            self._fd = os.dup(1)
            return True
        try:
            directory = os.path.dirname(self.path)
            if directory:
                os.makedirs(directory, 0o755, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o664)
        except OSError as exc:
            self.error = f"opening {self.path}: {exc.strerror}"
            return False
        return True

    def _close_fd(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1


def _regular(fd: int) -> bool:
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError:
        return False
