"""The client side of the HTTP/1.1 proxy: an asyncio.Protocol driven by httptools callbacks.

Per connection one `HttpProxy` parses requests, validates them strictly (the smuggling
vectors httptools lets through are checked here), routes each with the graph it read when
its head completed, and drives one `Exchange` at a time against a pooled upstream
connection; pipelined requests wait in order with reading paused. Bodies stream both ways
with backpressure (`ReadGate` on the client, pause_reading on the upstream). Responses are
re-framed for the client (chunked for HTTP/1.1 when the length is unknown, close-delimited
for HTTP/1.0). After a 101 both sockets become a raw tunnel.

Hot-path habits (../shared/DESIGN.md): no task or coroutine per request, status lines
precomputed, one `transport.write` per response head, metrics are integer increments on
the matched target's stats, `loop.time()` read when a request starts and when it ends,
deadlines enforced by the worker's tick instead of timers. Errors are `ProxyError`s, answered via
`errors.error_response` only; a parse error is logged at debug level, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

import httptools

from proxynow.edge.core import flow
from proxynow.edge.core.errors import (
    BadRequest,
    HeaderTooLarge,
    PayloadTooLarge,
    ProxyError,
    UriTooLong,
    error_response,
)
from proxynow.edge.core.flow import ReadGate
from proxynow.edge.core.metrics import METHOD_BITS, EntryPointStats, request_key
from proxynow.edge.http.exchange import (
    EntryPointRuntime,
    Exchange,
    entrypoint_runtime,
    validate,
)
from proxynow.edge.http.peers import PeerCache
from proxynow.edge.http1.local import LocalAnswers
from proxynow.edge.http1.request_line import Lenient, lenient_line
from proxynow.edge.http1.response import (
    CHUNKED,
    D_READ,
    D_RESPONSE,
    INF,
    LAST_CHUNK,
    ResponseSide,
)
from proxynow.edge.message.headers import (
    REQUEST_MEMO,
    RequestHead,
    forwarded_headers,
    upstream_head,
)
from proxynow.edge.upstream.connection import UpstreamConnection
from proxynow.edge.upstream.pool import UpstreamPool
from proxynow.rules import routing_path

if TYPE_CHECKING:
    from proxynow.edge.balance.least import Load
    from proxynow.edge.graph.build import HttpTarget, RouterGraph, Server
    from proxynow.edge.graph.state import WorkerState
    from proxynow.rules import RouteTable

__all__ = [
    "EntryPointRuntime",
    "Exchange",
    "HttpProxy",
    "entrypoint_runtime",
    "http_protocol_factory",
]

log = logging.getLogger(__name__)

_IP = ipaddress.IPv4Address | ipaddress.IPv6Address
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# A request line may arrive in pieces; held until whole (see `_hold`), up to the target
# limit plus this much for the method and the version.
_LINE_SLACK = 1024
# An int, not b"\n": `bytes in bytes` first tries the needle as an integer and formats a
# TypeError it then discards (~1,000 instructions per request, measured with callgrind).
_LF = 0x0A
# At a chunk-size line the head-size clock restarts (for trailers, see `on_chunk_header`),
# less the rest of the read that held the line: one socket read (uvloop's is 256 KiB).
_READ_MAX = 256 << 10


def http_protocol_factory(
    state: WorkerState, entrypoint: EntryPointRuntime
) -> Callable[[], asyncio.Protocol]:
    """The protocol factory for one HTTP entrypoint (for `loop.create_server`)."""
    stats = state.metrics.entrypoint(entrypoint.name)
    peers = PeerCache(entrypoint)
    protocol = HttpProxy
    if entrypoint.limits_connections:
        # Chosen here, once: with the defaults a request pays nothing for these options.
        # Imported late: that module subclasses HttpProxy.
        from proxynow.edge.http1.limits import LimitedHttpProxy

        protocol = LimitedHttpProxy

    def factory() -> asyncio.Protocol:
        return protocol(state, entrypoint, stats, peers)

    return factory


class HttpProxy(ResponseSide, LocalAnswers, asyncio.Protocol):
    """One client connection on an HTTP entrypoint."""

    __slots__ = (
        "active",
        "advancing",
        "client_ip",
        "closed",
        "ctx",
        "deadline",
        "deadline_kind",
        "ep",
        "ep_conns",
        "ep_stats",
        "ex",
        "fatal",
        "fwd",
        "gate",
        "graph",
        "head_bytes",
        "in_head",
        "lenient",
        "line_part",
        "load",
        "loop",
        "parser",
        "path",
        "peer",
        "peers",
        "queue",
        "raw_path",
        "read_timeout",
        "shutting_down",
        "stash",
        "state",
        "table",
        "tls_bits",
        "transport",
        "tunnel",
        "writing_paused",
    )

    def __init__(
        self, state: WorkerState, ep: EntryPointRuntime, stats: EntryPointStats, peers: PeerCache
    ) -> None:
        self.state = state
        self.ep = ep
        self.ep_conns = stats
        self.ep_stats = stats.unrouted
        self.peers = peers
        self.loop = asyncio.get_running_loop()
        self.parser = httptools.HttpRequestParser(self)
        self.graph: RouterGraph | None = None
        self.table: RouteTable[HttpTarget] | None = None
        self.ex: Exchange | None = None
        self.active: Exchange | None = None
        self.queue: deque[Exchange] = deque()
        self.advancing = False
        self.in_head = False
        self.head_bytes = 0
        self.line_part = b""  # the start of a request line, until its end arrives
        self.lenient: Lenient | None = None  # a rewritten line being parsed
        self.deadline = INF
        self.deadline_kind = D_READ
        self.writing_paused = False
        self.shutting_down = False
        self.closed = False
        self.fatal = 0
        self.stash: list[bytes] | None = None
        self.tunnel: UpstreamConnection | None = None
        # The load (edge/balance/least.py) the active exchange counts in, until it ends (p2c and
        # leasttime servers only; a tunnel keeps it until the connection closes).
        self.load: Load | None = None
        self.client_ip: _IP | None = None
        timeout = ep.read_timeout or ep.idle_timeout
        self.read_timeout = timeout if timeout > 0 else INF
        # Clients repeat their target on a connection: the routing path is computed again
        # only when it changes.
        self.raw_path = b""
        self.path = "/"
        self.tls_bits = 0  # the connection's TLS part of a metrics row key

    # ------------------------------------------------------------------ connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.gate = ReadGate(self.transport)
        # No TCP_NODELAY here: uvloop (and asyncio) set it on every TCP transport.
        peer = transport.get_extra_info("peername")
        self.peer = self.peers.get(peer[0] if isinstance(peer, tuple) else "")
        self.client_ip, self.ctx, self.fwd = self.peer
        state = self.state
        state.connections.add(self)
        state.clocked.add(self)
        self.ep_conns.open_connections += 1
        if self.ep.tls:
            self._note_tls(transport)
        state.ensure_ticking(self.loop)
        self._set_read_deadline(self.loop.time())
        if state.draining:
            self.shutdown()

    def _note_tls(self, transport: asyncio.BaseTransport) -> None:
        """Look the connection's (TLS version, cipher) up once for its requests' metrics."""
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            cipher = ssl_object.cipher()
            version = ssl_object.version() or ""
            self.tls_bits = self.state.metrics.tls.bits(version, cipher[0] if cipher else "")

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        # The parser holds this protocol (its callbacks): dropping it breaks the only cycle,
        # so the connection is freed by reference counting, not by the cyclic GC.
        del self.parser
        state = self.state
        state.connections.discard(self)
        state.clocked.discard(self)
        self.ep_conns.open_connections -= 1
        if self.tunnel is not None:
            self.tunnel.close()
        if self.load is not None:  # cut mid-exchange, or a tunnel ended
            self.load.inflight -= 1
            self.load = None
        ex = self.active
        if ex is not None and ex.upstream is not None:
            ex.upstream.abort()  # mid-exchange: the connection's state is unknown
            ex.upstream = None

    def eof_received(self) -> bool:
        if self.tunnel is not None:
            if self.tunnel.transport is not None and self.tunnel.transport.can_write_eof():
                self.tunnel.transport.write_eof()
            return True
        if self.active is not None:
            self.shutting_down = True  # answer what we have, then close
            return True
        return False

    def pause_writing(self) -> None:
        self.writing_paused = True
        ex = self.active
        if ex is not None and ex.upstream is not None:
            ex.upstream.pause_reading()
        elif self.tunnel is not None:
            self.tunnel.pause_reading()

    def resume_writing(self) -> None:
        self.writing_paused = False
        ex = self.active
        if ex is not None and ex.upstream is not None:
            ex.upstream.resume_reading()
        elif self.tunnel is not None:
            self.tunnel.resume_reading()

    def shutdown(self) -> None:
        """Drain: finish the in-flight response, then close; close at once when idle."""
        self.shutting_down = True
        if self.active is None and self.tunnel is None:
            self.transport.close()
        elif self.active is not None and self.active.complete:
            self.gate.block(flow.SHUTDOWN)

    def abort(self) -> None:
        self.transport.abort()

    def on_deadline(self, now: float) -> None:
        """Called by the worker's tick once `deadline` has passed."""
        self.deadline = INF
        ex = self.active
        if self.deadline_kind == D_RESPONSE and ex is not None and ex.status == 0:
            self._error(ex, 504)
        else:
            self.transport.close()  # slowloris or idle keep-alive: cut without a word

    def _set_read_deadline(self, now: float) -> None:
        self.deadline = now + self.read_timeout
        self.deadline_kind = D_READ

    # ------------------------------------------------------------------ reading

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.write(data)
            return
        if self.stash is not None:
            self.stash.append(data)  # sent after the backend's 101
            self.gate.block(flow.UPSTREAM_PENDING)
            return
        at_line = self.ex is None  # the read starts with a request line (see `_lenient`)
        if at_line and (self.line_part or _LF not in data):
            data = self._hold(data)
            if not data:
                return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._client_upgrade(data[exc.args[0] :])
            return
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, ProxyError):
                self._reject(cause.status, cause)
            else:
                log.error("HTTP protocol failure", exc_info=cause)
                self._reject(500, exc)
            return
        except ProxyError as exc:
            self._reject(exc.status, exc)
            return
        except httptools.HttpParserError as exc:
            if not (at_line and self._lenient(data)):
                self._reject(400, exc)
            return
        if self.in_head:
            self.head_bytes += len(data)
            if self.head_bytes > self.ep.max_header_bytes:
                self._reject(431, HeaderTooLarge())

    def _hold(self, data: bytes) -> bytes:
        """A read at a request's start without a line end: keep it until the line is
        whole, so that `_lenient` sees every request line in one piece. The bytes to
        parse now, or b"" while holding."""
        line = self.line_part + data if self.line_part else data
        if _LF in line:
            self.line_part = b""
            return line
        if len(line) > self.ep.max_target_bytes + _LINE_SLACK:
            self.line_part = b""
            self._reject(414, UriTooLong())
            return b""
        if not self.line_part and self.active is None:
            self._set_read_deadline(self.loop.time())  # a slow line is a slow head
        self.line_part = line
        return b""

    def _lenient(self, data: bytes) -> bool:
        """llhttp refused a read that starts with a request line: parse it again with the
        line rewritten (edge/http1/request_line.py) when that is the line it refused."""
        if self.lenient is not None or _completes_a_request(data):
            return False  # a second refusal, or one past a request already under way
        lenient = lenient_line(data)
        if lenient is None:
            return False
        self.ex = None
        self.in_head = False
        self.parser = httptools.HttpRequestParser(self)
        self.lenient = lenient
        self.data_received(lenient.data)  # a second refusal is final: `lenient` is set
        return True

    def _reject(self, status: int, exc: Exception) -> None:
        """A request cannot be served: answer `status` (after any in-flight one), close."""
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s: rejecting request from %s: %s", self.ep.name, self.ctx.client_ip, exc)
        self.gate.block(flow.PIPELINE)
        self.stash = []  # swallow whatever else arrives
        active = self.active
        if active is not None and active is not self.ex:
            self.fatal = status
            return
        ex = self.ex
        if ex is not None and ex.status:
            self.transport.close()  # a response is already under way: only closing is left
            return
        self.transport.write(error_response(status, True))
        if ex is not None and ex.upstream is not None:
            ex.upstream.abort()
            ex.upstream = None
        if ex is not None:
            key = request_key(status, ex.method_b, ex.head.bits)
        else:
            key = request_key(status, b"", self.tls_bits)
        self.ep_stats.observe(key, 0.0, 0, 0)
        self.transport.close()

    # -- httptools callbacks

    def on_message_begin(self) -> None:
        now = self.loop.time()
        self.ex = Exchange(RequestHead(self.ctx.trusted, self.tls_bits), now, self.client_ip)
        self.in_head = True
        self.head_bytes = 0
        if self.active is None:
            self.deadline = now + self.read_timeout
            self.deadline_kind = D_READ
        # else a pipelined head behind a response in flight: that response's deadline
        # stands, and this head's read is clocked from when the response is done.

    def on_url(self, url: bytes) -> None:
        ex = self.ex
        assert ex is not None
        ex.target += url
        if len(ex.target) > self.ep.max_target_bytes:
            raise UriTooLong()

    def on_header(self, name: bytes, value: bytes) -> None:
        # RequestHead.add inlined: this runs for every request header.
        ex = self.ex
        head = ex.head  # type: ignore[union-attr]
        head.count += 1
        head.size += len(name) + len(value) + 4
        if ex.method_b:  # type: ignore[union-attr]
            self._trailer(head)  # after the head: a trailer field
            return
        kind = REQUEST_MEMO.seen.get(name)
        if kind is None:
            kind = REQUEST_MEMO.learn(name)
        if not kind:
            head.lines.extend((name, b": ", value, b"\r\n"))
        else:
            head.add_special(kind, name, value)

    def on_headers_complete(self) -> None:
        ex = self.ex
        assert ex is not None
        self.in_head = False
        if ex.head.count > self.ep.max_header_count or ex.head.size > self.ep.max_header_bytes:
            raise HeaderTooLarge()
        parser = self.parser
        ex.method_b = parser.get_method()
        ex.version = parser.get_http_version()
        ex.keep_alive = parser.should_keep_alive()
        validate(ex)
        if self.lenient is not None:
            self._unlenient(ex, self.lenient)
        if self.active is None:
            self.active = ex
            self._start(ex)
        else:
            self.queue.append(ex)
            self.gate.block(flow.PIPELINE)

    def on_body(self, body: bytes) -> None:
        self.in_head = False  # not a trailer after all (see on_chunk_header)
        ex = self.ex
        assert ex is not None
        ex.bytes_in += len(body)
        limit = self.ep.max_body_bytes
        if limit and ex.bytes_in > limit:
            raise PayloadTooLarge()
        if ex.chunked:
            body = b"%x\r\n%b\r\n" % (len(body), body)
        self._send_body(ex, body)

    def on_chunk_header(self) -> None:
        # The size line of a chunk: the last one (size 0) is followed by trailer fields,
        # which httptools gathers by concatenation, so until body bytes show this is not
        # the last chunk, what arrives is clocked against maxHeaderBytes like a head.
        self.in_head = True
        self.head_bytes = -_READ_MAX

    def _trailer(self, head: RequestHead) -> None:
        """A trailer field: counted against the head's limits, never forwarded (so that
        no trailer can add a header or change the framing of what went upstream)."""
        if head.count > self.ep.max_header_count or head.size > self.ep.max_header_bytes:
            raise HeaderTooLarge()

    def _unlenient(self, ex: Exchange, lenient: Lenient) -> None:
        """Put back what `_lenient` rewrote for llhttp: the method and target as sent."""
        self.lenient = None
        if lenient.method is not None:
            ex.method_b = lenient.method
        if lenient.target is not None and ex.target[:1] == b"/":
            ex.target = lenient.target

    def on_message_complete(self) -> None:
        self.in_head = False
        ex = self.ex
        assert ex is not None
        self.ex = None
        ex.complete = True
        if ex.chunked:
            self._send_body(ex, LAST_CHUNK)
        if ex is self.active:
            self._await_response(ex)

    def _send_body(self, ex: Exchange, data: bytes) -> None:
        conn = ex.upstream
        if conn is not None and ex.pending is None:
            conn.write(data)
            ex.body_sent = True
        elif ex.status == 0:
            if ex.pending is None:
                ex.pending = []
            ex.pending.append(data)
            self.gate.block(flow.UPSTREAM_PENDING)

    def _await_response(self, ex: Exchange) -> None:
        server = ex.server
        if server is not None and server.response_header_timeout > 0 and ex.status == 0:
            self.deadline = self.loop.time() + server.response_header_timeout
            self.deadline_kind = D_RESPONSE
        elif self.deadline_kind == D_READ:
            self.deadline = INF

    # ------------------------------------------------------------------ dispatch

    def _start(self, ex: Exchange) -> None:
        """Route the request whose head is complete and send it upstream."""
        graph = self.state.graph
        # A connection's first request, and the first after a graph swap, has its router
        # lookup timed (proxynow_routing_duration_seconds): the other requests pay nothing.
        fresh = graph is not self.graph
        if fresh:
            self.graph = graph
            self.table = (graph.https if self.ep.tls else graph.http).get(self.ep.name)
        raw_host = ex.head.host
        known = self.fwd.get(raw_host)
        if known is None:
            known = self.peer.learn(raw_host, self.peers)
        ex.host, ex.forwarded = known
        raw_path = ex.target
        if raw_path != self.raw_path:
            self.raw_path = raw_path
            path = raw_path.partition(b"?")[0]
            self.path = routing_path(path.decode("utf-8", "surrogateescape"))
        ex.path = self.path
        if self.state.http01 and self._http01(ex):
            return
        table = self.table
        if fresh:
            target = self._timed_match(ex, table)
        else:
            target = table.match(ex) if table is not None else None
        if target is None:
            self._error(ex, 404)
            return
        ex.stats = target.stats
        if target.chain is not None and self._request_phase(ex, target):
            return
        self._forward(ex, target)

    def _forward(self, ex: Exchange, target: HttpTarget) -> None:
        """Pick a server for the routed request and send it there (after the router's
        request hooks, when it has any: also their resume path, `_request_phase`)."""
        sticky = target.sticky
        server = target.pick() if sticky is None else sticky(ex)
        if server is None:
            self._error(ex, 503)
            return
        ex.server = server
        if server.load is not None:
            server.load.inflight += 1
            self.load = server.load
        if ex.expect_continue and ex.version == "1.1" and not ex.complete:
            ex.sent_continue = True
        conn = server.pool.acquire()
        if conn is not None:
            self._attach(ex, conn)
        else:
            self._dial(ex, server.pool)

    def _timed_match(self, ex: Exchange, table: RouteTable[HttpTarget] | None) -> HttpTarget | None:
        """The router lookup, timed for proxynow_routing_duration_seconds."""
        started = time.perf_counter()
        target = table.match(ex) if table is not None else None
        self.ep_conns.routed(time.perf_counter() - started)
        return target

    def _request_head(self, ex: Exchange, server: Server) -> bytes:
        head = ex.head
        target = server.path_prefix + ex.target if server.path_prefix else ex.target
        start = b"%b %b HTTP/1.1\r\n" % (ex.method_b, target)
        host = head.host if server.pass_host_header and head.hosts else server.host_header
        if ex.chunked:
            framing = CHUNKED
        elif head.lengths:
            framing = b"Content-Length: %b\r\n" % head.content_length
        else:
            framing = b""
        if head.forwarded or ex.upgrade:
            forwarded = forwarded_headers(head, self.ctx, ex.upgrade)
        else:
            forwarded = ex.forwarded
        return upstream_head(head, start, host, forwarded, framing)

    def _attach(self, ex: Exchange, conn: UpstreamConnection) -> None:
        ex.upstream = conn
        assert ex.server is not None
        data = self._request_head(ex, ex.server)
        if ex.pending is not None:
            data = b"".join((data, *ex.pending))
            ex.pending = None
            ex.body_sent = True
        conn.send(self, data, ex.method_b == b"HEAD")
        if self.writing_paused:
            conn.pause_reading()
        if ex.sent_continue:
            self.transport.write(_CONTINUE)
        if self.gate.reasons:
            self.gate.unblock(flow.UPSTREAM_PENDING)
        if ex.complete and ex.server.response_header_timeout > 0:
            self._await_response(ex)

    def _dial(self, ex: Exchange, pool: UpstreamPool) -> None:
        if not ex.complete:
            self.gate.block(flow.UPSTREAM_PENDING)

        def ready(result: UpstreamConnection | ProxyError) -> None:
            try:
                if isinstance(result, ProxyError):
                    if ex is self.active and not self.closed and ex.status == 0:
                        self._error(ex, result.status)
                    return
                if ex is self.active and not self.closed and ex.upstream is None:
                    self._attach(ex, result)
                else:
                    pool.release(result, self.loop.time())
            except Exception as exc:  # runs in the dial's task: nobody else would see it
                if isinstance(result, UpstreamConnection):
                    result.abort()
                self.upstream_failed_dial(exc)

        pool.connect(ready)

    def upstream_failed_dial(self, exc: BaseException) -> None:
        log.error("internal error after a dial; closing the connection", exc_info=exc)
        self.transport.close()

    # ------------------------------------------------------------------ completion

    def _client_upgrade(self, leftover: bytes) -> None:
        """The parser handed over after an Upgrade request: hold bytes until the 101."""
        self.stash = [leftover] if leftover else []
        ex = self.active
        if ex is None or not ex.upgrade:
            self._reject(400, BadRequest("unexpected upgrade"))

    def _observe(self, ex: Exchange, now: float) -> None:
        stats = ex.stats or self.ep_stats
        key = request_key(ex.status, ex.method_b, ex.head.bits)
        stats.observe(key, now - ex.start, ex.bytes_in, ex.bytes_out)

    def _finish(self, ex: Exchange, now: float) -> None:
        if self.load is not None:
            self.load.inflight -= 1
            self.load = None
        # request_key inlined: this runs for every request.
        (ex.stats or self.ep_stats).observe(
            ex.status | METHOD_BITS[ex.method_b] | ex.head.bits,
            now - ex.start,
            ex.bytes_in,
            ex.bytes_out,
        )
        self.active = None
        if not ex.keep or not ex.complete or self.fatal or self.shutting_down:
            if self.fatal:
                self.transport.write(error_response(self.fatal, True))
            self.transport.close()
            return
        if self.queue:
            self._advance()
        elif self.active is None:
            if self.in_head:  # a pipelined head, still incomplete, read from now on
                self._set_read_deadline(now)
                return
            timeout = self.ep.idle_timeout
            self.deadline = now + timeout if timeout > 0 else INF
            self.deadline_kind = D_READ

    def _advance(self) -> None:
        """Start queued (pipelined) requests in order; iterative, never recursive."""
        if self.advancing:
            return
        self.advancing = True
        try:
            while self.active is None and self.queue and not self.closed:
                ex = self.queue.popleft()
                self.active = ex
                if not self.queue:
                    self.gate.unblock(flow.PIPELINE)
                self._start(ex)
        finally:
            self.advancing = False


class _Completions:
    """A parser protocol that only counts complete requests (for `_completes_a_request`)."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def on_message_complete(self) -> None:
        self.count += 1


def _completes_a_request(data: bytes) -> bool:
    """Whether a request ends in `data` before what llhttp refused (then the refused line
    is not the first of the read, and no rewrite of that first line can help)."""
    probe = _Completions()
    with contextlib.suppress(httptools.HttpParserError):
        httptools.HttpRequestParser(probe).feed_data(data)
    return probe.count > 0
