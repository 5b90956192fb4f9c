"""One HTTP/2 stream: an `Exchange` that is also the `Owner` of its upstream connection.

A stream is a plain object (no task): the exchange dispatch routes (edge/proxy/dispatch.py),
plus what HTTP/2 adds to it: its id, the response bytes the client's flow-control window
does not take yet (`backlog`), the request body bytes not yet given back to the client's
window (`unacked`: they are acknowledged only as they are forwarded upstream, so that a
slow backend slows the client, RFC 9113 §5.2), and where it is in its life (`live` until
the exchange is accounted for or the client reset it). The upstream connection reports the
response to the stream; the stream hands the wire work to its connection (`H2Proxy` in
edge/http2/protocol.py), which owns the codec and the transport.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import TYPE_CHECKING, Protocol

from proxynow.edge.http.exchange import Exchange
from proxynow.edge.http.middlewares.content_type import SNIFF
from proxynow.edge.http.middlewares.sniff import detect
from proxynow.edge.proxy.dispatch import (
    complete,
    finish,
    lost,
    replace,
    response_head,
    upgraded,
)
from proxynow.edge.proxy.downstream import Downstream
from proxynow.edge.upstream.h2 import H2Stream

if TYPE_CHECKING:
    from proxynow.edge.message.headers import RequestHead, ResponseHead
    from proxynow.edge.upstream.connection import UpstreamConnection
    from proxynow.edge.upstream.h2 import Trailers

__all__ = ["Stream", "StreamConnection"]


class StreamConnection(Downstream, Protocol):
    """What a stream needs from its connection (`H2Proxy`, edge/http2/protocol.py): the
    Downstream of dispatch, and the wire work (a Protocol: no import of the connection)."""

    @property
    def client_ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None: ...

    def send_head(self, stream: Stream, status: int, head: ResponseHead) -> None: ...
    def send_interim(self, stream: Stream, status: int, head: ResponseHead) -> None: ...
    def send_body(self, stream: Stream, data: bytes, end: bool) -> None: ...
    def send_trailers(self, stream: Stream, trailers: Trailers) -> None: ...
    def flush(self) -> None: ...
    def write_soon(self) -> None: ...
    def cut(self, stream: Stream) -> None: ...
    def give_back(self, stream: Stream) -> None: ...


log = logging.getLogger(__name__)


class Stream(Exchange):
    """A client stream and its exchange."""

    __slots__ = (
        "awaited",
        "backlog",
        "connection",
        "end_pending",
        "ended_sent",
        "expected",
        "held",
        "live",
        "request_trailers",
        "sending",
        "stream_id",
        "trailers",
        "unacked",
        "upstream_busy",
    )

    def __init__(
        self, connection: StreamConnection, stream_id: int, head: RequestHead, start: float
    ) -> None:
        super().__init__(head, start, connection.client_ip)
        self.connection = connection
        self.stream_id = stream_id
        self.version = "2.0"
        self.live = True  # until accounted for, or reset by the client
        self.sending = False  # response bytes wait for the client's window (in `backlog`)
        self.backlog: list[bytes] = []
        self.end_pending = False  # END_STREAM to follow the backlog
        self.ended_sent = False  # END_STREAM went out (or was queued)
        self.unacked = 0  # request body bytes received, not yet given back to the window
        self.upstream_busy = False  # the upstream's write buffer is full: acks wait
        self.expected = -1  # the response's Content-Length, -1: unknown
        # When the request went upstream whole, for responseHeaderTimeout (0.0: it has
        # none, or not sent whole yet).
        self.awaited = 0.0
        self.trailers: Trailers = ()  # an HTTP/2 backend's, sent once the backlog is out
        # The client's request trailers, sent on by an HTTP/2 backend's stream (read there
        # by name: edge/upstream/h2.py), None: none.
        self.request_trailers: Trailers | None = None
        # A response head contentType types from the body (SNIFF): sent with the first
        # body bytes, as the HTTP/1.1 front end holds its head until them.
        self.held: ResponseHead | None = None

    # ------------------------------------------------------------------ Owner

    def upstream_head(self, conn: UpstreamConnection, status: int, head: ResponseHead) -> None:
        if status < 200:
            # An interim response (103 Early Hints, a backend's 100 Continue) goes on as
            # an informational HEADERS frame, as the HTTP/1.1 front end relays it; a 101
            # is never asked for over HTTP/2 (`upstream_upgraded` answers it).
            if status != 101:
                self.connection.send_interim(self, status, head)
            return
        self.status = status
        load = self.load
        if load is not None:
            load.first_byte(self.connection.loop.time() - self.start)
        if self.chain is not None:
            replaced = response_head(self, status, head)
            if replaced is not None:  # errors, buffering: the backend's answer is not relayed
                replace(self.connection, self, conn, replaced)
                return
            if self.transform is SNIFF:
                self.transform = None  # a marker: the body goes as it is
                self.held = head
                return
            if self.transform is not None:
                head.content_length = b""  # transformed (compress, grpcWeb): a new length
        self.connection.send_head(self, status, head)

    def upstream_body(self, data: bytes) -> None:
        if self.held is not None:
            self._send_typed(self.held, data)
        if self.chain is not None and self.transform is not None:
            data = self.transform(data, False)
            if not data:
                return
        self.bytes_out += len(data)
        end = self.bytes_out == self.expected  # the last bytes of a known length
        if end:
            # Unless an HTTP/2 backend's trailers follow them (its END_STREAM did not come
            # with them): then the end goes with the trailers, in `upstream_done`.
            upstream = self.upstream
            end = type(upstream) is not H2Stream or upstream.ending
        self.connection.send_body(self, data, end)

    def upstream_done(self, conn: UpstreamConnection, reusable: bool) -> None:
        connection = self.connection
        if self.held is not None:  # no body came after all: the head as the backend sent it
            self._send_typed(self.held, b"")
        if self.chain is not None and self.transform is not None and not self.ended_sent:
            # The transform's end (grpcWeb's trailer frame holds the trailers) ends the body.
            tail = self.transform(b"", True)
            self.bytes_out += len(tail)
            connection.send_body(self, tail, True)
        if self.ended_sent:
            connection.write_soon()
        elif conn.trailers:  # an HTTP/2 backend's (gRPC's status)
            connection.send_trailers(self, conn.trailers)
        else:
            connection.send_body(self, b"", True)
        complete(connection, self, conn, reusable)

    def _send_typed(self, head: ResponseHead, data: bytes) -> None:
        """The held head, with the Content-Type its first body bytes tell (`detect`)."""
        self.held = None
        if data:
            head.set(b"Content-Type", detect(data))
        self.connection.send_head(self, self.status, head)

    def upstream_lost(self, conn: UpstreamConnection) -> None:
        if not self.live or self.upstream is not conn:
            return
        connection = self.connection
        if self.status == 0:
            lost(connection, self, conn)
        elif conn.head.content_length or conn.head.te:
            self.upstream = None  # truncated: the client must not take it as whole
            connection.cut(self)
            finish(connection, self, connection.loop.time())
        else:
            self.upstream_done(conn, False)  # close-delimited: EOF is its end

    def upstream_upgraded(self, conn: UpstreamConnection, leftover: bytes) -> None:
        upgraded(self.connection, self, conn)  # never asked for over HTTP/2: a 502

    def upstream_failed(self, conn: UpstreamConnection, exc: BaseException) -> None:
        """Handling the backend's report raised (a bug): this stream ends, the others go on."""
        log.error("internal error in a response from %s", conn.pool.key.host, exc_info=exc)
        self.upstream = None
        if not self.live:
            return
        connection = self.connection
        if self.status == 0:
            connection.error(self, 502)
        else:
            connection.cut(self)
            finish(connection, self, connection.loop.time())

    def upstream_pause(self) -> None:
        self.upstream_busy = True

    def upstream_resume(self) -> None:
        self.upstream_busy = False
        if self.unacked and self.live:
            self.connection.give_back(self)
