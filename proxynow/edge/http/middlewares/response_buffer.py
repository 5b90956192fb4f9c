"""A backend's response read whole before the client gets any of it (the buffering middleware).

As oxy's buffer in Traefik: the body is read at the backend's pace (the client's does not
slow it), `memory` bytes (memResponseBodyBytes) in memory, the rest in an anonymous
temporary file (unlinked at once); past `limit` (maxResponseBodyBytes, or a Content-Length
over it) the backend connection is dropped, the file closed, and the client answered
`500 Internal Server Error` (what Traefik answers). Memory is also bounded per worker, with
the request buffers: while the buffers of a worker hold `WORKER_MEMORY` bytes in all, a
buffer spills to its file at once.

How it plugs in: the step's response-head hook replaces the backend's response (a `Defer`,
as errors does: dispatch `replace`), and `ResponseBuffer.start` becomes the backend
connection's owner. Once the body is whole, the connection goes back to its pool and the
response is replayed to the front end that would have relayed it (the connection's owner
before, kept when the head arrived) by a `BufferedResponse`, which stands in for the
backend connection: the head with the body's length, then the body, memory part first,
then `PIECE` reads of the file, each while the client takes more (the front end's
`pause_reading` / `resume_reading`, as for a backend). The response-head hooks of the steps
outside buffering run on the replayed head (the exchange's chain has only those then);
those inside ran on the backend's, as Traefik's response writers wrap each other, and
a body transform of a step inside (compress) is applied as the body is buffered: the
limit counts its output, as in Traefik.
"""

from __future__ import annotations

import asyncio
import tempfile
from typing import IO, TYPE_CHECKING

from proxynow.edge.http.middlewares.base import Chain, Defer, Reply, Resume
from proxynow.edge.http.middlewares.body_buffer import PIECE, WORKER_MEMORY, Budget
from proxynow.edge.http.middlewares.content_type import SNIFF
from proxynow.edge.message.headers import ResponseHead
from proxynow.edge.upstream.connection import Owner, UpstreamConnection

if TYPE_CHECKING:
    from collections.abc import Callable

    from proxynow.edge.http.exchange import Exchange
    from proxynow.edge.http.middlewares.base import ResponseHeadHook

__all__ = ["TOO_LARGE", "BufferedResponse", "ResponseBuffer", "buffered"]

TOO_LARGE = Reply(500, (), b"Internal Server Error")  # Traefik's: no Content-Type
BROKEN = Reply(502, (), b"Bad Gateway")  # the backend cut its body short


def buffered(
    exchange: Exchange, head: ResponseHead, status: int, limits: tuple[int, int], hook: object
) -> Defer | None:
    """The `Defer` that buffers this response (`hook`: the step's response-head hook, to
    find the hooks outside it), or None when there is no body to buffer."""
    conn = exchange.upstream
    if conn is None or status in (204, 304) or exchange.method_b == b"HEAD":
        return None
    limit = limits[0]
    length = head.content_length
    if limit and length.isdigit() and int(length) > limit:
        return Defer(lambda resume: _refused(conn, resume))
    owner = conn.owner
    assert owner is not None
    buffer = ResponseBuffer(exchange, conn, owner, status, _copy(head), limits, hook)
    transform = exchange.transform
    if transform is SNIFF:
        buffer.sniff = True  # the front end sniffs the replayed body
    else:
        buffer.transform = transform  # a step inside (compress): what is buffered is its output
    return Defer(buffer.start)


def _refused(conn: UpstreamConnection, resume: Resume) -> None:
    conn.abort()  # a body nobody will read: not drained
    resume(TOO_LARGE)


class ResponseBuffer:
    """The owner of a backend connection while its response body is read whole."""

    __slots__ = (
        "conn",
        "exchange",
        "file",
        "head",
        "hook",
        "in_memory",
        "limit",
        "memory",
        "owner",
        "pieces",
        "resume",
        "size",
        "sniff",
        "status",
        "transform",
    )

    def __init__(
        self,
        exchange: Exchange,
        conn: UpstreamConnection,
        owner: Owner,
        status: int,
        head: ResponseHead,
        limits: tuple[int, int],
        hook: object,
    ) -> None:
        self.exchange = exchange
        self.conn: UpstreamConnection | None = conn  # None: done with it
        self.owner = owner  # the front end the response is replayed to
        self.status = status
        self.head = head
        self.limit, self.memory = limits
        self.hook = hook
        self.pieces: list[bytes] = []
        self.in_memory = 0
        self.size = 0
        self.file: IO[bytes] | None = None
        self.resume: Resume | None = None
        self.transform: Callable[[bytes, bool], bytes] | None = None
        self.sniff = False

    def start(self, resume: Resume) -> None:
        """Take the connection over (dispatch `replace` made a drain its owner)."""
        conn = self.conn
        assert conn is not None
        self.resume = resume
        conn.owner = self
        # The rest of a request body still goes to the backend meanwhile (one that answers
        # before reading it all would wait for it otherwise), and the exchange's end (the
        # client gone) drops the connection.
        self.exchange.upstream = conn
        _READING[id(self.exchange)] = self

    # -- Owner: what the backend connection reports

    def upstream_head(self, conn: UpstreamConnection, status: int, head: ResponseHead) -> None:
        """Never called: buffering starts after the head."""

    def upstream_body(self, data: bytes) -> None:
        if self.conn is None:
            return
        if self.transform is not None:
            data = self.transform(data, False)
        self._add(data)

    def _add(self, data: bytes) -> None:
        self.size += len(data)
        if self.limit and self.size > self.limit:
            self._answer(TOO_LARGE)
            return
        if self.file is None and (
            self.in_memory + len(data) > self.memory or Budget.held + len(data) > WORKER_MEMORY
        ):
            self.file = tempfile.TemporaryFile(prefix="proxynow-response-")  # noqa: SIM115
        if self.file is not None:
            self.file.write(data)
            return
        self.pieces.append(data)
        self.in_memory += len(data)
        Budget.held += len(data)

    def upstream_done(self, conn: UpstreamConnection, reusable: bool) -> None:
        if self.transform is not None:
            exchange = self.exchange
            exchange.upstream = conn  # what the transform's end may read (the trailers)
            tail = self.transform(b"", True)
            exchange.upstream = None
            self._add(tail)
            if self.conn is None:
                return  # over the limit with it: answered
        self.conn = None
        conn.owner = None
        trailers = conn.trailers
        if reusable and self.exchange.complete:
            conn.pool.release(conn, asyncio.get_running_loop().time())
        else:
            conn.close()
        self._replay(trailers)

    def upstream_lost(self, conn: UpstreamConnection) -> None:
        if self.conn is None:
            return
        head = self.head
        if head.content_length or head.te:
            self._answer(BROKEN)  # cut short
        else:
            self.upstream_done(conn, False)  # close-delimited: EOF is its end

    def upstream_upgraded(self, conn: UpstreamConnection, leftover: bytes) -> None:
        self._answer(BROKEN)

    def upstream_failed(self, conn: UpstreamConnection, exc: BaseException) -> None:
        self._answer(BROKEN)

    def upstream_pause(self) -> None:
        self.owner.upstream_pause()  # the request body may still be going out

    def upstream_resume(self) -> None:
        self.owner.upstream_resume()

    # -- the end

    def close(self) -> None:
        """The exchange is over (the client went, or it was answered): drop everything."""
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.owner = None
            conn.abort()
            if self.exchange.upstream is conn:
                self.exchange.upstream = None
        self.pieces = []
        Budget.held -= self.in_memory
        self.in_memory = 0
        if self.file is not None:
            self.file.close()
            self.file = None
        if _READING.get(id(self.exchange)) is self:
            del _READING[id(self.exchange)]

    def _answer(self, reply: Reply) -> None:
        resume = self.resume
        self.close()
        if resume is not None:
            self.resume = None
            resume(reply)

    def _replay(self, trailers: tuple[tuple[bytes, bytes], ...]) -> None:
        """Hand the whole response to the front end, as a backend connection would."""
        exchange = self.exchange
        if _READING.get(id(exchange)) is self:
            del _READING[id(exchange)]
        head = self.head
        head.content_length = b"%d" % self.size
        head.te = b""
        chain = exchange.chain
        if isinstance(chain, Chain):
            exchange.chain = _outer(chain, self.hook)
            exchange.transform = SNIFF if self.sniff else None
        replay = BufferedResponse(self, trailers)
        exchange.upstream = replay
        self.resume = None
        owner = replay.owner = self.owner
        try:
            owner.upstream_head(replay, self.status, head)
            replay.pump()
        except Exception as exc:  # in the backend's callback: the front end's bug handler
            owner.upstream_failed(replay, exc)


def _outer(chain: Chain, hook: object) -> Chain:
    """`chain` with only the response-head hooks of the steps outside buffering."""
    heads = chain.response_head
    outer: tuple[ResponseHeadHook, ...] = ()
    for index, candidate in enumerate(heads):  # innermost first: the outer ones follow
        if candidate == hook:
            outer = heads[index + 1 :]
            break
    return Chain(
        chain.request, outer, chain.response_body, chain.outcome, chain.failure, chain.answered
    )


class BufferedResponse(UpstreamConnection):
    """A buffered response as the front end reads it: a stand-in for the backend
    connection (it has no socket), pumping the body while the client takes it."""

    __slots__ = ("at_file", "buffer", "pumping")

    def __init__(self, buffer: ResponseBuffer, trailers: tuple[tuple[bytes, bytes], ...]) -> None:
        # Not UpstreamConnection.__init__: no parser, no transport; only what owners read.
        self.buffer = buffer
        self.pool = None  # type: ignore[assignment]  # never released: closed at its end
        self.transport = None
        self.tunnel = None
        self.owner: Owner | None = None
        self.head = buffer.head
        self.status = buffer.status
        self.trailers = trailers
        self.closed = False
        self.reused = False
        self.got_bytes = True
        self.head_only = False
        self.body_left = 0  # the parser's bypass (UpstreamConnection): never here
        self.reading_paused = False
        self.keep_alive = False
        self.idle_since = 0.0
        self.at_file = False
        self.pumping = False

    def pump(self) -> None:
        """Hand over pieces until the client's side pauses, then the end."""
        if self.pumping or self.closed:
            return
        self.pumping = True
        try:
            self._pieces()
        finally:
            self.pumping = False

    def _pieces(self) -> None:
        buffer = self.buffer
        while not self.reading_paused and not self.closed:
            owner = self.owner
            if owner is None:
                return
            piece = self._next(buffer)
            if piece is None:
                self.closed = True
                owner.upstream_done(self, False)
                return
            owner.upstream_body(piece)

    def _next(self, buffer: ResponseBuffer) -> bytes | None:
        if buffer.pieces:
            piece = buffer.pieces.pop(0)
            buffer.in_memory -= len(piece)
            Budget.held -= len(piece)
            return piece
        file = buffer.file
        if file is None:
            return None
        if not self.at_file:
            self.at_file = True
            file.flush()
            file.seek(0)
        return file.read(PIECE) or None

    def write(self, data: bytes) -> None:
        """The rest of a request body after the answer: dropped."""

    def pause_reading(self) -> None:
        self.reading_paused = True

    def resume_reading(self) -> None:
        if self.reading_paused:
            self.reading_paused = False
            self.pump()

    def close(self) -> None:
        self.closed = True
        self.buffer.close()

    def abort(self) -> None:
        self.close()


# The response buffers of this worker still reading, by exchange: an exchange that ends
# (the client went) closes its buffer from the step's outcome hook (`drop`).
_READING: dict[int, ResponseBuffer] = {}


def drop(exchange: Exchange) -> None:
    """The exchange ended: its response buffer, if one is still reading, is closed."""
    buffer = _READING.get(id(exchange))
    if buffer is not None and buffer.exchange is exchange:
        buffer.close()
    upstream = exchange.upstream
    if isinstance(upstream, BufferedResponse):
        upstream.close()


def in_progress() -> int:
    """How many response buffers are reading now (for tests)."""
    return len(_READING)


def _copy(head: ResponseHead) -> ResponseHead:
    """The head kept: the connection's own is reset by its next response."""
    kept = ResponseHead()
    kept.lines = list(head.lines)
    kept.content_length = head.content_length
    kept.te = head.te
    kept.connection = head.connection
    kept.upgrade = head.upgrade
    return kept
