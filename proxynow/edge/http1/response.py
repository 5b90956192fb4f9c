"""The response side of the client HTTP/1.1 protocol: what the upstream connection reports.

`ResponseSide` is the part of `HttpProxy` (edge/http1/protocol.py) that the pooled upstream
connection calls back: the response head re-framed for the client (chunked for HTTP/1.1
when the length is unknown, close-delimited for HTTP/1.0, `Connection: close` when the
connection ends after it), the body streamed with one write per read, the end of the
response, a lost backend (retried once when nothing was sent, else 502 or a cut
connection), and the switch to a raw tunnel after a 101. It holds no state of its own:
the attributes it reads are `HttpProxy`'s slots. Also here: the wire constants both sides
write.
"""

from __future__ import annotations

import asyncio
import logging
from http import HTTPStatus
from typing import TYPE_CHECKING

from proxynow.edge.core import flow
from proxynow.edge.core.errors import error_response
from proxynow.edge.core.flow import ReadGate
from proxynow.edge.http.exchange import F_CHUNK, F_NONE, F_PASS, Exchange, retryable
from proxynow.edge.message.headers import ResponseHead

if TYPE_CHECKING:
    from proxynow.edge.balance.least import Load
    from proxynow.edge.upstream.connection import UpstreamConnection
    from proxynow.edge.upstream.pool import UpstreamPool

__all__ = ["D_READ", "D_RESPONSE", "INF", "STATUS_LINES", "ResponseSide", "status_line"]

INF = float("inf")
STATUS_LINES: dict[int, bytes] = {
    s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode("ascii") for s in HTTPStatus
}
CHUNKED = b"Transfer-Encoding: chunked\r\n"
CLOSE = b"Connection: close\r\n"
KEEP_ALIVE = b"Connection: keep-alive\r\n"
LAST_CHUNK = b"0\r\n\r\n"
log = logging.getLogger(__name__)

# What the connection deadline means when it passes.
D_READ = 0  # reading a request or idle between requests: close
D_RESPONSE = 1  # waiting for the backend's response head: 504


class ResponseSide:
    """The upstream callbacks of `HttpProxy` (a mixin: state lives in its slots)."""

    if not TYPE_CHECKING:
        __slots__ = ()  # the attributes are HttpProxy's slots (mypy checks them here)
    else:
        active: Exchange | None
        transport: asyncio.Transport
        loop: asyncio.AbstractEventLoop
        gate: ReadGate
        shutting_down: bool
        deadline: float
        deadline_kind: int
        stash: list[bytes] | None
        tunnel: UpstreamConnection | None
        load: Load | None

        def _finish(self, ex: Exchange, now: float) -> None: ...
        def _error(self, ex: Exchange, status: int) -> None: ...
        def _dial(self, ex: Exchange, pool: UpstreamPool) -> None: ...
        def _observe(self, ex: Exchange, now: float) -> None: ...

    def upstream_head(self, conn: UpstreamConnection, status: int, head: ResponseHead) -> None:
        ex = self.active
        assert ex is not None
        if status < 200:
            if status == 101 or (status == 100 and ex.sent_continue) or ex.version != "1.1":
                return
            self.transport.write(b"".join((status_line(status), *head.kept_lines(), b"\r\n")))
            return
        ex.status = status
        if self.load is not None:  # leasttime's time to first byte, from the request's start
            self.load.first_byte(self.loop.time() - ex.start)
        keep = ex.keep_alive and not self.shutting_down and not ex.upgrade
        line = STATUS_LINES.get(status)
        # Until now `response_head` holds the lines the proxy adds (a sticky Set-Cookie).
        parts = [line or status_line(status), ex.response_head, *head.kept_lines()]
        if ex.method_b == b"HEAD" or status == 204 or status == 304:
            ex.framing = F_NONE
            if head.content_length:
                parts += (b"Content-Length: ", head.content_length, b"\r\n")
        elif head.content_length and not head.te:
            ex.framing = F_PASS
            parts += (b"Content-Length: ", head.content_length, b"\r\n")
        elif ex.version == "1.1":
            ex.framing = F_CHUNK
            parts.append(CHUNKED)
        else:
            ex.framing = F_PASS  # HTTP/1.0: the end of the body is the end of the connection
            keep = False
        if not keep:
            parts.append(CLOSE)
        elif ex.version == "1.0":
            parts.append(KEEP_ALIVE)
        parts.append(b"\r\n")
        ex.keep = keep
        # Held until the first body bytes (usually in the same read) so that a small
        # response leaves in one write.
        ex.response_head = b"".join(parts)
        if self.deadline_kind == D_RESPONSE:
            self.deadline = INF
            self.deadline_kind = D_READ

    def upstream_body(self, data: bytes) -> None:
        ex = self.active
        assert ex is not None
        ex.bytes_out += len(data)
        head = ex.response_head
        if ex.framing == F_CHUNK:
            self.transport.write(b"%b%x\r\n%b\r\n" % (head, len(data), data))
        else:
            self.transport.write(head + data if head else data)
        ex.response_head = b""

    def upstream_done(self, conn: UpstreamConnection, reusable: bool) -> None:
        ex = self.active
        assert ex is not None
        if ex.framing == F_CHUNK:
            self.transport.write(ex.response_head + LAST_CHUNK)
        elif ex.response_head:
            self.transport.write(ex.response_head)
        now = self.loop.time()
        ex.upstream = None
        if conn.reading_paused:
            conn.resume_reading()
        if reusable and ex.complete:
            conn.pool.release(conn, now)
        else:
            conn.close()
        self._finish(ex, now)

    def upstream_lost(self, conn: UpstreamConnection) -> None:
        ex = self.active
        if ex is None or ex.upstream is not conn:
            return
        ex.upstream = None
        if ex.status == 0:
            if retryable(ex, conn):
                ex.retried = True
                assert ex.stats is not None and ex.server is not None
                ex.stats.retry()
                self._dial(ex, ex.server.pool)
            else:
                self._error(ex, 502)
        elif conn.head.content_length or conn.head.te or ex.framing == F_NONE:
            ex.keep = False  # truncated response: the client must see the connection end
            self._finish(ex, self.loop.time())
        else:
            self.upstream_done(conn, False)  # close-delimited body: EOF is its end

    def upstream_upgraded(self, conn: UpstreamConnection, leftover: bytes) -> None:
        ex = self.active
        assert ex is not None
        head = conn.head
        if conn.status != 101 or not ex.upgrade:
            conn.abort()
            self._error(ex, 502)
            return
        ex.status = 101
        self.transport.write(
            b"".join(
                (
                    status_line(101),
                    ex.response_head,
                    *head.kept_lines(),
                    b"Connection: Upgrade\r\nUpgrade: ",
                    head.upgrade,
                    b"\r\n\r\n",
                    leftover,
                )
            )
        )
        ex.upstream = None
        self.tunnel = conn
        assert conn.transport is not None
        conn.tunnel = self.transport
        conn.owner = self  # only for pause/resume_writing: backpressure from the backend
        for chunk in self.stash or ():
            conn.write(chunk)
        self.stash = None
        self.active = None
        self.deadline = INF
        self._observe(ex, self.loop.time())
        self.gate.unblock(flow.UPSTREAM_PENDING | flow.PIPELINE)

    def upstream_failed(self, conn: UpstreamConnection, exc: BaseException) -> None:
        """Handling the backend's report raised (a bug): log it, end this connection.

        Without this the exception would end only the upstream side and leave the client
        waiting, in CLOSE-WAIT, holding drain; so whatever state the exchange is in, the
        client gets a 502 if nothing was sent yet, else the end of the connection.
        """
        ex = self.active
        log.error("internal error in a response from %s; closing", conn.pool.key.host, exc_info=exc)
        if ex is not None:
            ex.upstream = None
            if ex.status == 0 and not self.transport.is_closing():
                self.transport.write(error_response(502, True))
        self.transport.close()

    def upstream_pause(self) -> None:
        self.gate.block(flow.UPSTREAM_BUSY)

    def upstream_resume(self) -> None:
        self.gate.unblock(flow.UPSTREAM_BUSY)


def status_line(status: int) -> bytes:
    """The precomputed status line, or one built for a status Python does not name."""
    line = STATUS_LINES.get(status)
    return line if line is not None else b"HTTP/1.1 %d \r\n" % status
