"""The client side of HTTP/2 (RFC 9113): an asyncio.Protocol over a codec of codec.py's
interface (libnghttp2's or h2's, as edge/http2/choice.py picks).

One `H2Proxy` per connection (TLS with ALPN `h2`, or prior-knowledge h2c on a plain
entrypoint). It is the `Downstream` dispatch sees (edge/proxy/downstream.py): every method
of that protocol takes the exchange, and each stream is its own exchange (`Stream`,
edge/http2/stream.py), so several are in flight at once, share the connection's route
cache and context, and each is the `Owner` of its upstream connection (set in `attached`).
Streams are plain objects, no task per stream; what the streams answer during one read is
written in one `transport.write` at its end (`flush`), and what a backend sends in one of
its reads in one write too.

Flow control both ways is tied to backpressure: request body bytes are given back to the
client's window only once forwarded to a backend whose write buffer is not full, and a
response the client's window (or the connection's write buffer) does not take waits in
the stream's backlog with that backend's reading paused, until a WINDOW_UPDATE (or
`resume_writing`).

Limits on by default: `entryPoints.<n>.http2.maxConcurrentStreams` (250) streams in flight,
counted by the front end (a stream the client reset counts until its upstream work ends,
and one past the limit gets RST_STREAM(REFUSED_STREAM)); the decoded header list is bounded
by `http.maxHeaderBytes`; the idle timeout closes a connection without streams, readTimeout
cuts a request still read after it (408), a server's responseHeaderTimeout (from the
request sent whole) gives a 504, writeTimeout resets a response not written whole in time; a
client that resets streams faster than it lets them finish is cut (Rapid Reset); a client
that does not read is not read from either (control-frame floods). `shutdown()`
sends GOAWAY(NO_ERROR), finishes the streams in flight, then closes.
"""

from __future__ import annotations

import asyncio
import logging
from http import HTTPStatus
from typing import TYPE_CHECKING, cast

from proxynow.edge.core.errors import HeaderTooLarge, ProxyError, UriTooLong
from proxynow.edge.core.metrics import EntryPointStats, request_key
from proxynow.edge.http.exchange import EntryPointRuntime, Exchange, validate
from proxynow.edge.http.peers import PeerCache
from proxynow.edge.http2.codec import (
    CANCEL,
    ENHANCE_YOUR_CALM,
    INTERNAL_ERROR,
    REFUSED_STREAM,
    CodecError,
    Headers,
    ServerCodec,
    Settings,
)
from proxynow.edge.http2.stream import Stream
from proxynow.edge.message.headers import RequestHead, ResponseHead
from proxynow.edge.proxy.dispatch import abandon, finish, route
from proxynow.edge.upstream.h2 import H2Stream

if TYPE_CHECKING:
    import ipaddress

    from proxynow.edge.graph.build import HttpTarget, RouterGraph
    from proxynow.edge.graph.state import WorkerState
    from proxynow.edge.http.middlewares import Reply
    from proxynow.edge.upstream.connection import UpstreamConnection
    from proxynow.edge.upstream.h2 import Trailers
    from proxynow.rules import RouteTable

__all__ = ["PREFACE", "H2Proxy"]

log = logging.getLogger(__name__)

# RFC 9113 §3.4: what a client speaking HTTP/2 with prior knowledge sends first.
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
INF = float("inf")
_LAST_CHUNK = b"0\r\n\r\n"
# `:status` values as bytes, built once.
_STATUS = {code: b"%d" % code for code in range(100, 600)}
# Response fields HTTP/2 forbids (RFC 9113 §8.2.2) that `ResponseHead` keeps as lines.
_CONNECTION_SPECIFIC = frozenset((b"connection", b"keep-alive", b"proxy-connection", b"te"))
_CONNECTION_SPECIFIC |= {b"transfer-encoding", b"upgrade"}
_TEXT = b"text/plain; charset=utf-8"
# While streams are in flight the connection's deadline is a scan of them this often: a
# request read for longer than readTimeout is cut (408), one whose backend has not
# answered within its responseHeaderTimeout gets a 504. One timer per connection, none
# per stream.
_SCAN = 1.0
# Rapid Reset (CVE-2023-44487): a client that has reset more than this many streams in
# flight, and more than it let finish, is sent GOAWAY(ENHANCE_YOUR_CALM) and cut.
_RESETS_ALLOWED = 100
# A response body chunk this large is written at once rather than at the end of the turn:
# coalescing pays for small answers (a system call and a TLS record each), while holding
# big chunks to the turn's end made a 1 MiB download cost 10% more CPU (bigger buffers).
_WRITE_NOW = 1024


class H2Proxy(asyncio.Protocol):
    """One client connection speaking HTTP/2 (the `Downstream` of its streams)."""

    __slots__ = (
        "access_log",
        "access_peer",
        "client_cert",
        "client_ip",
        "closed",
        "codec",
        "deadline",
        "draining",
        "entrypoint",
        "entrypoint_stats",
        "finished",
        "flush_due",
        "forward_context",
        "graph",
        "idle_timeout",
        "last_stream",
        "loop",
        "max_streams",
        "path",
        "pause_pending",
        "peer",
        "peer_hosts",
        "peers",
        "raw_path",
        "reading",
        "resets",
        "sent_seen",
        "stalled",
        "state",
        "streams",
        "table",
        "tls_bits",
        "transport",
        "unrouted",
        "writing_paused",
    )

    def __init__(
        self,
        state: WorkerState,
        entrypoint: EntryPointRuntime,
        stats: EntryPointStats,
        peers: PeerCache,
        settings: Settings,
        codec: type[ServerCodec],
    ) -> None:
        self.state = state
        self.entrypoint = entrypoint
        self.entrypoint_stats = stats
        self.unrouted = stats.unrouted
        self.peers = peers
        self.access_log = state.access_log if entrypoint.access_logs else None
        self.access_peer: object = None  # the access log's pieces of this connection
        self.loop = asyncio.get_running_loop()
        self.codec: ServerCodec = codec(settings)
        self.max_streams = settings.max_concurrent_streams
        self.streams: dict[int, Stream] = {}
        # The route cache of edge/proxy/dispatch.py, shared by the connection's streams.
        self.graph: RouterGraph | None = None
        self.table: RouteTable[HttpTarget] | None = None
        self.raw_path = b""
        self.path = "/"
        self.reading = False  # inside `data_received`: its end writes what was queued
        self.flush_due = False  # a write at the end of this loop turn is scheduled
        self.writing_paused = False
        self.pause_pending = False  # an upstream paused before `attached` (see there)
        self.draining = False
        self.closed = False
        self.last_stream = 0  # after a graceful GOAWAY: the last stream still served
        self.resets = 0  # streams in flight the client reset
        self.finished = 0  # streams accounted for
        self.stalled = 0.0  # seconds with a response held by the client and nothing sent
        self.sent_seen = 0
        self.client_ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
        self.tls_bits = 0
        idle = entrypoint.idle_timeout
        self.idle_timeout = idle if idle > 0 else INF
        self.deadline = INF

    @property
    def body_gate(self) -> None:
        """No read gate: a body is never read ahead of its stream (buffering streams it)."""
        return None

    # ------------------------------------------------------------------ connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.client_cert = b""  # the client's TLS certificate (DER), b"": none
        peer = transport.get_extra_info("peername")
        self.peer = self.peers.get(peer[0] if isinstance(peer, tuple) else "")
        self.client_ip, self.forward_context, self.peer_hosts = self.peer
        state = self.state
        state.connections.add(self)
        state.clocked.add(self)
        self.entrypoint_stats.open_connections += 1
        if self.entrypoint.tls:
            ssl_object = transport.get_extra_info("ssl_object")
            if ssl_object is not None:
                cipher = ssl_object.cipher()
                version = ssl_object.version() or ""
                self.tls_bits = state.metrics.tls.bits(version, cipher[0] if cipher else "")
                # For passTLSClientCert, as the HTTP/1.1 front end reads it.
                self.client_cert = ssl_object.getpeercert(True) or b""
        state.ensure_ticking(self.loop)
        self.deadline = self.loop.time() + self.idle_timeout
        self.codec.start()
        self.flush()
        if state.draining:
            self.shutdown()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        state = self.state
        state.connections.discard(self)
        state.clocked.discard(self)
        self.entrypoint_stats.open_connections -= 1
        now = self.loop.time()
        for stream in list(self.streams.values()):
            if stream.live:
                stream.live = False
                abandon(stream, now, self)
        self.streams.clear()

    def eof_received(self) -> bool:
        # The client sends no more: the streams in flight are answered, then the end.
        self.on_goaway()
        return True

    def on_deadline(self, now: float) -> None:
        """Idle with no stream: close; else the scan of the streams' deadlines."""
        if not self.streams:
            self.deadline = INF
            self._close()
            return
        self.deadline = now + _SCAN
        self.codec.tick()
        if self._stalled():
            self.transport.abort()
            return
        read_timeout = self.entrypoint.read_timeout
        for stream in [s for s in self.streams.values() if s.live and not s.status]:
            if not stream.complete and read_timeout > 0 and now - stream.start > read_timeout:
                self.error(stream, 408)
                continue
            # responseHeaderTimeout counts from the request sent whole, as over HTTP/1.1
            # (Go's: "after fully writing the request"), not from its first byte.
            server = stream.server
            awaited = stream.awaited
            if awaited and server is not None and now - awaited > server.response_header_timeout:
                self.error(stream, 504)
        write_timeout = self.entrypoint.write_timeout
        if write_timeout > 0:
            for stream in [s for s in self.streams.values() if s.live or s.sending]:
                if now - stream.start > write_timeout:
                    self._expire(stream, now)
        self.flush()

    def _expire(self, stream: Stream, now: float) -> None:
        """writeTimeout: a response not written whole within it of its request's head
        (Go's HTTP/2 server, per stream) is reset with INTERNAL_ERROR and its backend
        released; the connection's other streams go on."""
        self.codec.reset(stream.stream_id, INTERNAL_ERROR)
        stream.ended_sent = True
        stream.sending = False
        stream.backlog = []
        if stream.live:
            stream.live = False
            abandon(stream, now, self)
        self._retire(stream)

    def _stalled(self) -> bool:
        """Whether the client has let nothing out for too long (zero window, or not
        reading the socket) while a response waits: writeTimeout, or idleTimeout without
        it. Counted in scans, so that sending pays one increment and no clock read."""
        if not self.writing_paused and not any(s.sending for s in self.streams.values()):
            self.stalled = 0.0
            return False
        sent = self.codec.sent
        self.stalled = self.stalled + _SCAN if sent == self.sent_seen else 0.0
        self.sent_seen = sent
        limit = self.entrypoint.write_timeout or self.idle_timeout
        return self.stalled >= limit

    def shutdown(self) -> None:
        """Drain: GOAWAY, finish the streams in flight, then close (at once when idle)."""
        if self.draining or self.closed:
            return
        self.draining = True
        self.last_stream = self.codec.drain()
        self.flush()
        if not self.streams:
            self._close()

    def abort(self) -> None:
        self.transport.abort()

    def pause_writing(self) -> None:
        # The client does not read: what it sends is not read either, so that what it
        # asks for (PING and SETTINGS acks, answers) cannot pile up in the write buffer.
        self.writing_paused = True
        self.transport.pause_reading()
        for stream in self.streams.values():
            upstream = stream.upstream
            if upstream is not None:
                upstream.pause_reading()

    def resume_writing(self) -> None:
        self.writing_paused = False
        if not self.closed:
            self.transport.resume_reading()
        for stream in self.streams.values():
            upstream = stream.upstream
            if upstream is not None and not stream.sending:
                upstream.resume_reading()

    def _close(self) -> None:
        self.flush()
        self.transport.close()

    # ------------------------------------------------------------------ reading

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        self.reading = True
        try:
            self.codec.receive(data, self)
        except CodecError as exc:
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s: HTTP/2 protocol error: %s", self.entrypoint.name, exc)
            self.reading = False
            self._close()  # the GOAWAY is queued
            return
        self.reading = False
        self._write_done()  # with the answers of backends read in the same turn

    # -- codec events (codec.Events)

    def on_request(self, stream_id: int, headers: Headers, ended: bool) -> None:
        codec = self.codec
        if len(self.streams) >= self.max_streams or (
            self.draining and stream_id > self.last_stream
        ):
            codec.reset(stream_id, REFUSED_STREAM)
            return
        now = self.loop.time()
        stream = Stream(
            self, stream_id, RequestHead(self.forward_context.trusted, self.tls_bits), now
        )
        self.streams[stream_id] = stream
        if len(self.streams) == 1:
            self.deadline = now + _SCAN  # from idle to scanning the streams
        try:
            self._read_head(stream, headers, ended)
        except ProxyError as exc:
            self._refuse(stream, exc.status)
            return
        try:
            route(self, stream)
        except Exception as exc:
            log.error("internal error routing an HTTP/2 request", exc_info=exc)
            if stream.live:
                if stream.status == 0:
                    self.error(stream, 500)
                else:
                    self.cut(stream)
                    finish(self, stream, self.loop.time())

    def _read_head(self, stream: Stream, headers: Headers, ended: bool) -> None:
        """The request's fields into its `RequestHead` (the codec checked the HTTP/2 rules)."""
        head = stream.head
        authority = b""
        for name, value in headers:
            if name[0] == 0x3A:  # ':' a pseudo-header
                if name == b":method":
                    stream.method_b = value
                elif name == b":path":
                    stream.target = value
                elif name == b":authority":
                    authority = value
                head.size += len(name) + len(value) + 4
            else:
                head.add(name, value)
        entrypoint = self.entrypoint
        if head.count > entrypoint.max_header_count or head.size > entrypoint.max_header_bytes:
            raise HeaderTooLarge()
        if len(stream.target) > entrypoint.max_target_bytes:
            raise UriTooLong()
        if authority:  # RFC 9113 §8.3.1: :authority wins over a Host field
            head.host, head.hosts = authority, 1
        validate(stream)
        # HTTP/2 frames the body itself: it is whole at END_STREAM; without a length it
        # goes upstream chunked.
        stream.complete = ended
        stream.chunked = not ended and head.lengths == 0

    def _refuse(self, stream: Stream, status: int) -> None:
        """A request that cannot be served (a 400 or 431): answered on its stream."""
        stream.status = status
        self._send_error(stream, status)
        stream.live = False
        self.unrouted.observe(request_key(status, stream.method_b, stream.head.bits), 0.0, 0, 0)
        self._retire(stream)

    def on_data(self, stream_id: int, data: bytes, flow: int, ended: bool) -> None:
        stream = self.streams.get(stream_id)
        if stream is None or not stream.live or stream.status:
            # Refused, reset or answered already: the bytes are dropped, the window given back.
            self.codec.ack(stream_id, flow)
            return
        if data:
            stream.bytes_in += len(data)
            limit = self.entrypoint.max_body_bytes
            if limit and stream.bytes_in > limit:
                self.error(stream, 413)
                return
            if stream.sink is not None:  # a step takes the body (grpcWeb decodes it)
                stream.sink.add(data)
                data = b""
            elif stream.chunked:
                data = b"%x\r\n%b\r\n" % (len(data), data)
        if ended:
            stream.complete = True
            if stream.sink is not None:
                stream.sink.done()
            elif stream.chunked:
                data += _LAST_CHUNK
            if stream.upstream is not None:
                self._awaiting(stream)
        stream.unacked += flow
        if data:
            self._forward(stream, data)
        if not stream.upstream_busy and stream.upstream is not None:
            self.give_back(stream)

    def _forward(self, stream: Stream, data: bytes) -> None:
        conn = stream.upstream
        if conn is not None and stream.pending is None:
            conn.write(data)
            stream.body_sent = True
            if stream.replay is not None:  # kept to be sent again (retry on a status)
                stream.replay.add(data)
        else:
            if stream.pending is None:
                stream.pending = []
            stream.pending.append(data)

    def on_trailers(self, stream_id: int, headers: Headers) -> None:
        # Request trailers end the stream; an HTTP/2 backend gets them (edge/upstream/h2.py),
        # an HTTP/1.1 one does not (as over HTTP/1.1).
        stream = self.streams.get(stream_id)
        if stream is not None:
            stream.request_trailers = tuple(headers)
        self.on_data(stream_id, b"", 0, True)

    def on_reset(self, stream_id: int) -> None:
        stream = self.streams.get(stream_id)
        if stream is None:
            return
        if stream.live:
            stream.live = False
            abandon(stream, self.loop.time(), self)
            self.resets += 1
            if self.resets > _RESETS_ALLOWED and self.resets > self.finished:
                self.codec.goaway(ENHANCE_YOUR_CALM)
                self._close()
                return
        stream.sending = False
        stream.backlog = []
        self._retire(stream)

    def on_window(self, stream_id: int) -> None:
        if stream_id:
            stream = self.streams.get(stream_id)
            if stream is not None and stream.sending:
                self._drain(stream)
        else:
            for stream in [s for s in self.streams.values() if s.sending]:
                self._drain(stream)

    def on_goaway(self) -> None:
        # The client opens no more streams: those in flight finish, then the connection ends.
        self.draining = True
        self.last_stream = max(self.streams, default=0)
        if not self.streams:
            self._close()

    # ------------------------------------------------------------------ writing

    def flush(self) -> None:
        """Write what the codec queued, in one write."""
        data = self.codec.output()
        if data and not self.closed:
            self.transport.write(data)

    def _write_done(self) -> None:
        """After a send: written at the end of this turn of the loop, in one write with
        whatever the connection's other streams send in the same turn (the responses of
        several backends read in one poll: one system call, one TLS record, where a write
        per response cost a send each); a read writes once at its end anyway."""
        if not self.reading and not self.flush_due:
            self.flush_due = True
            self.loop.call_soon(self._flush_turn)

    def write_soon(self) -> None:
        """A stream's end is queued: written as `_write_done` writes (at the end of the turn)."""
        if not self.reading and not self.flush_due:
            self.flush_due = True
            self.loop.call_soon(self._flush_turn)

    def _flush_turn(self) -> None:
        """The end of the turn: what the streams queued goes out (see `_write_done`)."""
        self.flush_due = False
        self.flush()

    def send_head(self, stream: Stream, status: int, head: ResponseHead) -> None:
        """The backend's response head to the client (held until its body, or its end)."""
        # `_fields` inlined: this runs for every response.
        fields: Headers = [(b":status", _STATUS.get(status) or b"%d" % status)]
        lines = head.kept_lines()
        for i in range(0, len(lines), 4):
            name = lines[i].lower()
            if name not in _CONNECTION_SPECIFIC:
                fields.append((name, lines[i + 2]))
        if stream.response_head:  # lines the proxy added (a sticky Set-Cookie)
            fields += _header_lines(stream.response_head)
            stream.response_head = b""
        no_body = stream.method_b == b"HEAD" or status == 204 or status == 304
        if head.content_length:
            fields.append((b"content-length", head.content_length))
            if not no_body:
                stream.expected = int(head.content_length)
        end = no_body or stream.expected == 0
        if end and not no_body:
            # An HTTP/2 backend's trailers may follow even an empty body: the end is then
            # the backend stream's (`Stream.upstream_done`).
            upstream = stream.upstream
            end = type(upstream) is not H2Stream or upstream.head_ended
        self.codec.headers(stream.stream_id, fields, end)
        stream.ended_sent = end

    def send_interim(self, stream: Stream, status: int, head: ResponseHead) -> None:
        """A backend's 1xx (103 Early Hints, 100 Continue) as it came, before the final head."""
        if not stream.ended_sent:
            self.codec.informational(stream.stream_id, _fields(status, head))
            self._write_done()

    def send_body(self, stream: Stream, data: bytes, end: bool) -> None:
        """Response bytes (and the stream's end), within the client's window; the rest waits
        in the backlog with the backend's reading paused."""
        if stream.ended_sent:
            return  # a HEAD response's end is sent with its head
        if stream.sending:
            stream.backlog.append(data)
            stream.end_pending = stream.end_pending or end
            return
        codec = self.codec
        room = codec.window(stream.stream_id)
        size = len(data)
        if size <= room:
            codec.data(stream.stream_id, data, end)
            stream.ended_sent = end
        else:
            if room > 0:
                codec.data(stream.stream_id, data[:room], False)
                data = data[room:]
            stream.sending = True
            stream.backlog.append(data)
            stream.end_pending = end
            if stream.upstream is not None:
                stream.upstream.pause_reading()
        if size >= _WRITE_NOW and not self.reading:
            self.flush()  # a big body's bytes go now: holding them to the turn's end costs
        else:
            self._write_done()

    def send_trailers(self, stream: Stream, trailers: Trailers) -> None:
        """The response's end with an HTTP/2 backend's trailers (gRPC's status), after
        whatever of the body still waits for the client's window."""
        if stream.ended_sent:
            return
        stream.trailers = trailers
        if stream.sending:
            stream.end_pending = True  # `_drain` sends them after the backlog
            return
        self.codec.headers(stream.stream_id, list(trailers), True)
        stream.ended_sent = True
        self._write_done()

    def _drain(self, stream: Stream) -> None:
        """The client's window opened: send what waits, resume the backend when done."""
        codec = self.codec
        backlog = stream.backlog
        while backlog:
            room = codec.window(stream.stream_id)
            if room <= 0:
                break
            data = backlog[0]
            if len(data) <= room:
                backlog.pop(0)
                end = stream.end_pending and not backlog and not stream.trailers
                codec.data(stream.stream_id, data, end)
            else:
                codec.data(stream.stream_id, data[:room], False)
                backlog[0] = data[room:]
        if not backlog:
            stream.sending = False
            if stream.trailers and stream.end_pending:
                codec.headers(stream.stream_id, list(stream.trailers), True)
            stream.ended_sent = stream.end_pending
            if stream.upstream is not None and not self.writing_paused:
                stream.upstream.resume_reading()
            if not stream.live:
                self._retire(stream)
        self._write_done()

    def give_back(self, stream: Stream) -> None:
        """Request body bytes reached the backend: the client may send as many more."""
        unacked, stream.unacked = stream.unacked, 0
        self.codec.ack(stream.stream_id, unacked)
        self._write_done()

    def cut(self, stream: Stream) -> None:
        """End a stream whose response cannot be finished (a truncated backend response)."""
        self.codec.reset(stream.stream_id, INTERNAL_ERROR)
        stream.ended_sent = True
        stream.sending = False
        stream.backlog = []
        self._write_done()

    def _send_error(self, stream: Stream, status: int) -> None:
        phrase = HTTPStatus(status).phrase
        body = f"{status} {phrase}\n".encode("ascii")
        fields: Headers = [
            (b":status", _STATUS[status]),
            (b"content-type", _TEXT),
            (b"x-content-type-options", b"nosniff"),
            (b"content-length", b"%d" % len(body)),
        ]
        self._answer(stream, fields, body)

    def _answer(self, stream: Stream, fields: Headers, body: bytes) -> None:
        """A whole answer the proxy makes itself (small: within any window but a zero one)."""
        if stream.method_b == b"HEAD" or not body:
            self.codec.headers(stream.stream_id, fields, True)
            stream.ended_sent = True
            self._write_done()
        else:
            self.codec.headers(stream.stream_id, fields, False)
            stream.bytes_out = len(body)
            self.send_body(stream, body, True)

    def _retire(self, stream: Stream) -> None:
        """Forget a stream once accounted for and all of its response is out."""
        if stream.live or stream.sending:
            return
        self.streams.pop(stream.stream_id, None)
        if not self.streams:
            if self.draining:
                self._close()
            else:
                self.deadline = self.loop.time() + self.idle_timeout

    # ------------------------------------------------------------------ Downstream

    def error(self, exchange: Exchange, status: int) -> None:
        stream = cast(Stream, exchange)
        if stream.upstream is not None:
            stream.upstream.abort()
            stream.upstream = None
        stream.status = status
        self._send_error(stream, status)
        finish(self, stream, self.loop.time())

    def reply(self, exchange: Exchange, reply: Reply) -> None:
        stream = cast(Stream, exchange)
        stream.status = reply.status
        fields: Headers = [(b":status", _STATUS.get(reply.status) or b"%d" % reply.status)]
        for name, value in reply.headers:
            lower = name.lower()
            if lower not in _CONNECTION_SPECIFIC and lower != b"content-length":
                fields.append((lower, value))
        fields.append((b"content-length", b"%d" % len(reply.body)))
        self._answer(stream, fields, reply.body)
        finish(self, stream, self.loop.time())

    def answer(self, exchange: Exchange, status: int, body: bytes) -> None:
        stream = cast(Stream, exchange)
        stream.status = status
        fields: Headers = [
            (b":status", _STATUS[status]),
            (b"content-type", _TEXT),
            (b"content-length", b"%d" % len(body)),
        ]
        self._answer(stream, fields, body)
        finish(self, stream, self.loop.time())

    def attached(self, exchange: Exchange, conn: UpstreamConnection) -> None:
        stream = cast(Stream, exchange)
        conn.owner = stream  # `attach` sent on behalf of the connection: the stream hears
        if stream.complete:  # `_awaiting` inlined: this runs for every request
            server = stream.server
            if server is not None and server.response_header_timeout > 0:
                stream.awaited = self.loop.time()
        if self.pause_pending:
            self.pause_pending = False
            stream.upstream_busy = True
        if self.writing_paused:
            conn.pause_reading()
        if stream.unacked and not stream.upstream_busy:
            self.give_back(stream)  # the body held until now went out with the head

    def _awaiting(self, stream: Stream) -> None:
        """The request went upstream whole: its responseHeaderTimeout starts (the clock
        is read only for a server that has one)."""
        server = stream.server
        if server is not None and server.response_header_timeout > 0:
            stream.awaited = self.loop.time()

    def ended(self, exchange: Exchange, now: float) -> None:
        stream = cast(Stream, exchange)
        if stream.live and not stream.ended_sent and not stream.sending:
            # Accounted for before its end went out (an upstream cut): say so.
            self.codec.reset(stream.stream_id, CANCEL)
            self._write_done()
        stream.live = False
        self.finished += 1
        if stream.unacked:
            self.give_back(stream)  # what the backend never took is dropped (see `on_data`)
        self._retire(stream)

    def wants(self, exchange: Exchange) -> bool:
        return cast(Stream, exchange).live and not self.closed

    def failed(self, exc: BaseException) -> None:
        log.error("internal error after a dial; closing the HTTP/2 connection", exc_info=exc)
        self.codec.goaway(INTERNAL_ERROR)
        self._close()

    # ------------------------------------------------------------------ upstream (Owner)
    # `attach` hands the connection to `conn.send` as the owner; `attached` passes it to
    # the stream right after. Nothing reaches these in between but a write-buffer report.

    def upstream_head(self, conn: UpstreamConnection, status: int, head: ResponseHead) -> None:
        raise AssertionError("an upstream reported to the connection, not its stream")

    def upstream_body(self, data: bytes) -> None:
        raise AssertionError("an upstream reported to the connection, not its stream")

    def upstream_done(self, conn: UpstreamConnection, reusable: bool) -> None:
        raise AssertionError("an upstream reported to the connection, not its stream")

    def upstream_lost(self, conn: UpstreamConnection) -> None:
        raise AssertionError("an upstream reported to the connection, not its stream")

    def upstream_upgraded(self, conn: UpstreamConnection, leftover: bytes) -> None:
        raise AssertionError("an upstream reported to the connection, not its stream")

    def upstream_failed(self, conn: UpstreamConnection, exc: BaseException) -> None:
        log.error("internal error from an upstream; closing", exc_info=exc)
        self._close()

    def upstream_pause(self) -> None:
        self.pause_pending = True  # the head's write filled the buffer: `attached` tells

    def upstream_resume(self) -> None:
        self.pause_pending = False


def _fields(status: int, head: ResponseHead) -> Headers:
    """`:status` and a backend head's fields, lowercase, without connection-specific ones."""
    fields: Headers = [(b":status", _STATUS.get(status) or b"%d" % status)]
    lines = head.kept_lines()
    for i in range(0, len(lines), 4):
        name = lines[i].lower()
        if name not in _CONNECTION_SPECIFIC:
            fields.append((name, lines[i + 2]))
    return fields


def _header_lines(block: bytes) -> Headers:
    """`Name: value\\r\\n` lines (what a sticky pick adds) as HTTP/2 fields."""
    fields: Headers = []
    for line in block.split(b"\r\n"):
        name, sep, value = line.partition(b":")
        if sep:
            fields.append((name.strip().lower(), value.strip()))
    return fields
