"""A request body read whole before the request goes to a backend (the buffering middleware).

The HTTP/1 front end hands each piece of the body, as the client sends it, to the
exchange's `sink` (`RequestBuffer.add`) instead of a backend, and keeps reading: a slow
client holds only its own exchange, never a task or the worker. Up to `memory` bytes stay
in memory, the rest goes to an anonymous temporary file (unlinked at once, so nothing is
left behind), as Traefik's buffer does; past `limit` the client is answered 413. Memory
is also bounded per worker: while the buffers of a worker hold `WORKER_MEMORY` bytes in
all, a buffer spills to its file at once, so concurrent uploads cannot exhaust a worker.

Once the body is whole, the request goes on with a Content-Length (a chunked body is sent
de-chunked): a body in memory leaves with the head (`Exchange.pending`); a spilled one is
pumped from its file in `PIECE` reads, one more each time the backend connection can take
more (`pump`, from the front end's upstream_resume), never the whole file in memory.
"""

from __future__ import annotations

import tempfile
from typing import IO, TYPE_CHECKING

from proxynow.edge.core.flow import UPSTREAM_PENDING, ReadGate
from proxynow.edge.http.middlewares.base import Reply, Resume

if TYPE_CHECKING:
    from proxynow.edge.http.exchange import Exchange
    from proxynow.edge.upstream.connection import UpstreamConnection

__all__ = ["PIECE", "TOO_LARGE", "WORKER_MEMORY", "Budget", "RequestBuffer", "held"]

WORKER_MEMORY = 64 << 20  # the bytes the buffers of one worker may hold in memory in all
PIECE = 256 << 10  # what one file read sends upstream
TOO_LARGE = Reply(413, (), b"Request Entity Too Large")  # Traefik's: no Content-Type
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class Budget:
    """The bytes the body buffers of this worker (this process) hold in memory: the
    request ones, and the response ones (response_buffer.py)."""

    held = 0


def held() -> int:
    """The bytes the request buffers of this worker hold in memory now (for tests)."""
    return Budget.held


class RequestBuffer:
    """One request's body, read whole before it is sent (see the module docstring)."""

    __slots__ = (
        "exchange",
        "file",
        "gate",
        "in_memory",
        "keep",
        "limit",
        "memory",
        "paused",
        "pieces",
        "remaining",
        "resume",
        "size",
        "state",
    )

    def __init__(
        self,
        exchange: Exchange,
        limit: int,
        memory: int,
        resume: Resume,
        gate: ReadGate,
        keep: bool = False,
    ) -> None:
        self.exchange = exchange
        self.keep = keep  # kept once sent, to be sent again (retryExpression)
        self.limit = limit  # 0: none
        self.memory = memory
        self.resume = resume
        self.gate = gate
        self.pieces: list[bytes] = []
        self.in_memory = 0
        self.size = 0
        self.file: IO[bytes] | None = None
        self.remaining = 0  # bytes of the file still to send upstream
        self.paused = False
        self.state = 0  # 0: reading, 1: sending, 2: over, 3: discarding (too large)

    def start(self) -> None:
        """Take the body over from the front end (and what it held already)."""
        ex = self.exchange
        held_before = ex.pending or []
        ex.pending = None
        ex.sink = self
        for data in held_before:  # pieces read while an earlier step waited
            self.add(_unchunked(data) if ex.chunked else data)
        if ex.expect_continue and not ex.sent_continue:
            ex.expect_continue = False  # the client sends its body to us, now
            self.gate.transport.write(_CONTINUE)
        self.gate.unblock(UPSTREAM_PENDING)

    def discard(self) -> None:
        """The body is too large: read the rest off and answer 413 at its end (what
        Traefik's client sees; cutting the upload would reset the answer with it)."""
        self.close()
        self.state = 3
        self.exchange.sink = self

    def add(self, data: bytes) -> None:
        """A piece of the body as the client sent it (de-chunked)."""
        if self.state:
            return
        self.size += len(data)
        if self.limit and self.size > self.limit:
            self.discard()
            return
        if self.file is None and (
            self.in_memory + len(data) > self.memory or Budget.held + len(data) > WORKER_MEMORY
        ):
            self._spill()
        if self.file is not None:
            self.file.write(data)
            return
        self.pieces.append(data)
        self.in_memory += len(data)
        Budget.held += len(data)

    def done(self) -> None:
        """The body is whole: the request goes on, with its length."""
        if self.state == 3:
            self.exchange.sink = None
            self.state = 2
            self.resume(TOO_LARGE)
            return
        if self.state:
            return
        self.state = 1
        ex = self.exchange
        head = ex.head
        ex.chunked = False
        head.lengths = 1
        head.content_length = b"%d" % self.size
        ex.complete = True
        if self.file is not None:
            self.file.flush()
        ex.pending = self.again()  # what is in memory leaves with the head
        if not self.keep:
            self.pieces = []
            if self.file is None:
                self._release()
        self.resume(None)

    def again(self) -> list[bytes]:
        """The body from its start: the memory part to send with the head; the file's
        rewound for `pump`."""
        self.state = 1
        if self.file is not None:
            self.remaining = self.size - self.in_memory
            self.file.seek(0)
            # Held until a connection is attached, which then pumps the file (and reads
            # the client's next request only once the body is out).
            self.gate.block(UPSTREAM_PENDING)
        return list(self.pieces)

    def pump(self, conn: UpstreamConnection) -> None:
        """Send the next pieces of a spilled body while `conn` takes them."""
        if self.state != 1:
            return
        file = self.file
        while file is not None and self.remaining > 0 and not self.paused:
            piece = file.read(min(PIECE, self.remaining))
            if not piece:
                break
            self.remaining -= len(piece)
            conn.write(piece)
            if self.exchange.mirror is not None:  # a mirroring service's copy gets it too
                self.exchange.mirror.add(piece)
        if (file is None or self.remaining <= 0) and not self.keep:
            self.close()

    def close(self) -> None:
        """The exchange is over (or the body all sent): give back memory and the file."""
        self.state = 2
        self.pieces = []
        self._release()
        if self.file is not None:
            self.file.close()
            self.file = None
        if self.exchange.sink is self:
            self.exchange.sink = None
        self.gate.unblock(UPSTREAM_PENDING)  # however the exchange ended, reading goes on

    def _spill(self) -> None:
        """Further pieces go to a temporary file (the memory ones stay where they are)."""
        self.file = tempfile.TemporaryFile(prefix="proxynow-body-")  # noqa: SIM115 (kept open)

    def _release(self) -> None:
        Budget.held -= self.in_memory
        self.in_memory = 0


def _unchunked(data: bytes) -> bytes:
    """The data of a piece the front end framed as one chunk (`%x\\r\\n...\\r\\n`), or of
    its last chunk (nothing)."""
    size, _, rest = data.partition(b"\r\n")
    return rest[: int(size, 16)]
