"""Whole lines to a file or stdout, written by a thread so the event loop never waits on a disk.

The event loop hands batches of lines (`str`, each ending with "\\n") to `submit`, which only
puts the list on the thread's queue: the lines are collected by the caller (the access
log's `LineBuffer`, edge/http/access_lines.py, compiled: one list append per line) and
handed over a few hundred at a time, so that the thread wakes, takes the interpreter lock
and writes once per batch. The thread joins a batch and encodes it to UTF-8 (C, one call
each, off the loop's time slices). The hand-off never blocks: at most `max_bytes` (in
characters) wait for the thread, and a batch that would go past that is dropped and counted
in `dropped` (a full or stalled disk, or a FIFO nobody reads, costs log lines, never
requests or memory). Each counter is written by one thread only (the loop: characters
handed and lines refused; the writer: characters done, lines written and failed), so no
lock is taken.

Several worker processes write one file: it is opened with O_APPEND, and every `write` call
carries whole lines only, so lines never interleave. On a regular file Linux does one
append per call; on a pipe or FIFO only writes of at most PIPE_BUF bytes are atomic, so
there the lines are grouped into writes of at most PIPE_BUF (a single longer line is
written alone). Opening happens in the thread as well (opening a FIFO blocks until a
reader comes). `reopen()` (SIGUSR1, for logrotate) makes the thread close the file and
open the path again before its next write.
"""

from __future__ import annotations

import contextlib
import os
import queue
import select
import stat
import threading

__all__ = ["LineWriter"]

_REGULAR_CHUNK = 1 << 20  # bytes per write to a regular file (one append each)
MAX_BYTES = 16 << 20  # characters of lines waiting for the thread, at most
_WAKE: tuple[list[str], int] = ([], 0)  # a queue item that only wakes the thread


class LineWriter:
    """Non-blocking hand-off of batches of whole lines to a writer thread."""

    __slots__ = (
        "_done",
        "_failed",
        "_fd",
        "_handed",
        "_queue",
        "_refused",
        "_reopen",
        "_stopping",
        "_thread",
        "batches",
        "error",
        "max_bytes",
        "path",
        "written",
    )

    def __init__(self, path: str, max_bytes: int = MAX_BYTES) -> None:
        self.path = path  # "" : stdout
        self.max_bytes = max_bytes
        self.batches = 0  # batches handed to the thread (each one wake-up of it)
        # (lines, their characters) to write; _WAKE for a reopen or stop
        self._queue: queue.SimpleQueue[tuple[list[str], int]] = queue.SimpleQueue()
        self._reopen = threading.Event()
        self._stopping = False
        self._fd = -1
        self._handed = self._refused = 0  # the loop's counters: characters handed, lines refused
        self._done = self._failed = 0  # the thread's: characters written or failed, lines failed
        self.written = 0  # lines the thread wrote
        self.error = ""  # the last open or write error (set by the thread)
        self._thread = threading.Thread(target=self._run, name="access-log", daemon=True)
        self._thread.start()

    # -- the event loop's side

    def submit(self, lines: list[str], size: int) -> None:
        """Hand `lines` (`size` characters) to the thread; never blocks. Dropped, and
        counted, when the thread is `max_bytes` behind."""
        if self._handed - self._done + size > self.max_bytes:
            self._refused += len(lines)
            return
        self._handed += size
        self.batches += 1
        self._queue.put((lines, size))  # a SimpleQueue never blocks a put

    @property
    def dropped(self) -> int:
        """Lines lost: refused while the thread was behind, or whose write failed."""
        return self._refused + self._failed

    @property
    def waiting(self) -> int:
        """Characters handed to the thread and not written yet."""
        return self._handed - self._done

    def reopen(self) -> None:
        """Close and reopen the file before the next write (logrotate moved it)."""
        if not self._reopen.is_set():  # a flood of signals queues one wake-up
            self._reopen.set()
            self._queue.put(_WAKE)

    def close(self, timeout: float = 2.0) -> None:
        """Let the thread write what it was handed (up to `timeout`), then stop it."""
        self._stopping = True
        self._queue.put(_WAKE)
        self._thread.join(timeout)

    # -- the writer thread

    def _run(self) -> None:
        while True:
            lines, size = self._queue.get()
            if self._reopen.is_set():
                self._reopen.clear()
                self._close_fd()
            if lines:
                self._write(lines)
                self._done += size
            if self._stopping and self._queue.empty():
                self._close_fd()
                return

    def _write(self, lines: list[str]) -> None:
        """Write `lines` in whole-line writes. This thread holds the GIL while it runs
        Python, taking it from the event loop: a batch that fits one write (every batch of
        a regular file unless bufferingSize is large) is one join, one encode and one
        write, no loop over its lines."""
        if self._fd < 0 and not self._open():
            self._failed += len(lines)
            return
        if _regular(self._fd):
            data = "".join(lines).encode("utf-8", "replace")
            if len(data) <= _REGULAR_CHUNK:
                self._write_chunk(data, len(lines))
                return
            limit = _REGULAR_CHUNK
        else:
            limit = select.PIPE_BUF
        chunk: list[bytes] = []
        size = 0
        for line in lines:
            raw = line.encode("utf-8", "replace")
            if size and size + len(raw) > limit:
                self._write_chunk(b"".join(chunk), len(chunk))
                chunk, size = [], 0
            chunk.append(raw)
            size += len(raw)
        if chunk:
            self._write_chunk(b"".join(chunk), len(chunk))

    def _write_chunk(self, data: bytes, lines: int) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            # A full disk or a closed pipe: these lines are lost, later ones are retried on
            # a reopened file.
            self.error = f"writing {self.path or 'stdout'}: {exc.strerror}"
            self._failed += lines
            self._close_fd()
            return
        self.written += lines

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
