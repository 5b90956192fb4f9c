"""The client side of the HTTP/1.1 proxy: an asyncio.Protocol driven by httptools callbacks.

Per connection one `HttpProxy` parses requests, validates them strictly (the smuggling
vectors httptools lets through are checked here), routes each with the graph it read when
its head completed, and drives one `Exchange` at a time against a pooled upstream
connection; pipelined requests wait in order with reading paused. Bodies stream both ways
with backpressure (`ReadGate` on the client, pause_reading on the upstream). Responses are
re-framed for the client (chunked for HTTP/1.1 when the length is unknown, close-delimited
for HTTP/1.0). After a 101 both sockets become a raw tunnel.

Hot-path habits (DESIGN.md): no task or coroutine per request, status lines precomputed,
one `transport.write` per response head, metrics are integer increments on the matched
target's stats, `loop.time()` read when a request starts and when it ends, deadlines
enforced by the worker's tick instead of timers. Errors are `ProxyError`s, answered via
`errors.error_response` only; a parse error is logged at debug level, once.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, cast

import httptools

from proxynow.config.static import EntryPoint
from proxynow.edge import flow
from proxynow.edge.errors import (
    BadRequest,
    HeaderTooLarge,
    PayloadTooLarge,
    ProxyError,
    UriTooLong,
    error_response,
)
from proxynow.edge.flow import ReadGate
from proxynow.edge.headers import ForwardContext, RequestHead, ResponseHead, upstream_head
from proxynow.edge.metrics import TargetStats, method_index
from proxynow.edge.pool import UpstreamPool
from proxynow.edge.upstream import UpstreamConnection
from proxynow.rules import canonical_host, parse_query, routing_path

if TYPE_CHECKING:
    from proxynow.edge.graph import HttpTarget, RouterGraph, Server
    from proxynow.edge.state import WorkerState
    from proxynow.rules import RouteTable

__all__ = [
    "EntryPointRuntime",
    "Exchange",
    "HttpProxy",
    "entrypoint_runtime",
    "http_protocol_factory",
]

log = logging.getLogger(__name__)

INF = float("inf")
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_IP = ipaddress.IPv4Address | ipaddress.IPv6Address

STATUS_LINES: dict[int, bytes] = {
    s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode("ascii") for s in HTTPStatus
}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_CHUNKED = b"Transfer-Encoding: chunked\r\n"
_CLOSE = b"Connection: close\r\n"
_KEEP_ALIVE = b"Connection: keep-alive\r\n"
_LAST_CHUNK = b"0\r\n\r\n"
# Request-target bytes that never appear in a valid target (RFC 9112 §3.2): controls,
# space, DEL and '#' (a fragment is never sent). Deleting the valid ones leaves the bad.
_TARGET_OK = bytes(b for b in range(256) if 0x20 < b < 0x7F and b != 0x23)

# Response framing towards the client.
F_NONE = 0  # no body (HEAD, 1xx, 204, 304)
F_PASS = 1  # bytes as they come (Content-Length, or close-delimited to an HTTP/1.0 client)
F_CHUNK = 2  # re-chunked (unknown length, HTTP/1.1 client)

# What the connection deadline means when it passes.
D_READ = 0  # reading a request or idle between requests: close
D_RESPONSE = 1  # waiting for the backend's response head: 504

_IDEMPOTENT = frozenset((b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"))


@dataclass(frozen=True, slots=True)
class EntryPointRuntime:
    """What the HTTP protocol needs from an entrypoint's static configuration."""

    name: str
    trusted_ips: tuple[_Network, ...] = ()
    insecure: bool = False
    tls: bool = False
    read_timeout: float = 60.0
    write_timeout: float = 0.0
    idle_timeout: float = 180.0
    max_header_bytes: int = 1 << 20
    max_header_count: int = 256
    max_target_bytes: int = 64 << 10
    max_body_bytes: int = 0  # 0: no limit
    server_name: bytes = socket.gethostname().encode("ascii", "replace")

    def trusts(self, ip: _IP | None) -> bool:
        """Whether forwarded headers from `ip` are kept (forwardedHeaders)."""
        if self.insecure:
            return True
        return ip is not None and any(ip in net for net in self.trusted_ips)


def entrypoint_runtime(name: str, entrypoint: EntryPoint, tls: bool = False) -> EntryPointRuntime:
    """Freeze the parts of a static entrypoint the HTTP protocol reads."""
    forwarded = entrypoint.forwarded_headers
    timeouts = entrypoint.transport.responding_timeouts
    networks = tuple(ipaddress.ip_network(ip, strict=False) for ip in forwarded.trusted_ips)
    return EntryPointRuntime(
        name=name,
        trusted_ips=networks,
        insecure=forwarded.insecure,
        tls=tls or entrypoint.http.tls is not None,
        read_timeout=timeouts.read_timeout,
        write_timeout=timeouts.write_timeout,
        idle_timeout=timeouts.idle_timeout,
        max_header_bytes=entrypoint.http.max_header_bytes,
    )


def http_protocol_factory(
    state: WorkerState, entrypoint: EntryPointRuntime
) -> Callable[[], asyncio.Protocol]:
    """The protocol factory for one HTTP entrypoint (for `loop.create_server`)."""
    stats = state.metrics.entrypoint(entrypoint.name)

    def factory() -> asyncio.Protocol:
        return HttpProxy(state, entrypoint, stats.unrouted)

    return factory


class Exchange:
    """One request and its response; also the `RequestView` the router matches against."""

    __slots__ = (
        "body_sent",
        "bytes_in",
        "bytes_out",
        "chunked",
        "client_ip",
        "complete",
        "expect_continue",
        "framing",
        "head",
        "host",
        "keep",
        "keep_alive",
        "method_b",
        "path",
        "pending",
        "response_head",
        "retried",
        "sent_continue",
        "server",
        "start",
        "stats",
        "status",
        "target",
        "upgrade",
        "upstream",
        "version",
    )

    def __init__(self, head: RequestHead, start: float, client_ip: _IP | None) -> None:
        self.head = head
        self.start = start
        self.client_ip = client_ip
        self.target = b""
        self.method_b = b""
        self.version = "1.1"
        self.keep_alive = True
        self.keep = False
        self.complete = False
        self.chunked = False
        self.upgrade = False
        self.expect_continue = False
        self.sent_continue = False
        self.retried = False
        self.body_sent = False
        self.pending: list[bytes] | None = None
        self.response_head = b""
        self.upstream: UpstreamConnection | None = None
        self.server: Server | None = None
        self.stats: TargetStats | None = None
        self.status = 0
        self.framing = F_NONE
        self.bytes_in = 0
        self.bytes_out = 0
        self.host = ""
        self.path = ""

    # -- RequestView (host, path and client_ip are plain attributes)

    @property
    def method(self) -> str:
        return self.method_b.decode("ascii")

    def header_values(self, lower_name: str) -> Sequence[str]:
        name = lower_name.encode("latin-1")
        if name == b"host":
            return [self.head.host.decode("latin-1")] if self.head.hosts else []
        lines = self.head.lines
        return [
            lines[i + 2].decode("latin-1")
            for i in range(0, len(lines), 4)
            if lines[i].lower() == name
        ]

    def query_values(self, name: str) -> Sequence[str] | None:
        _, sep, query = self.target.partition(b"?")
        if not sep:
            return None
        return parse_query(query.decode("latin-1")).get(name)


class HttpProxy(asyncio.Protocol):
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
        "ep_stats",
        "ex",
        "fatal",
        "gate",
        "graph",
        "head_bytes",
        "in_head",
        "loop",
        "parser",
        "queue",
        "shutting_down",
        "stash",
        "state",
        "table",
        "transport",
        "tunnel",
        "writing_paused",
    )

    def __init__(self, state: WorkerState, ep: EntryPointRuntime, unrouted: TargetStats) -> None:
        self.state = state
        self.ep = ep
        self.ep_stats = unrouted
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
        self.deadline = INF
        self.deadline_kind = D_READ
        self.writing_paused = False
        self.shutting_down = False
        self.closed = False
        self.fatal = 0
        self.stash: list[bytes] | None = None
        self.tunnel: UpstreamConnection | None = None
        self.client_ip: _IP | None = None

    # ------------------------------------------------------------------ connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.gate = ReadGate(self.transport)
        _nodelay(self.transport)
        peer = transport.get_extra_info("peername")
        host = peer[0] if isinstance(peer, tuple) else ""
        try:
            self.client_ip = ipaddress.ip_address(host.partition("%")[0])
        except ValueError:
            self.client_ip = None
        ep = self.ep
        self.ctx = ForwardContext(
            host.encode("ascii"), ep.trusts(self.client_ip), ep.tls, ep.server_name
        )
        state = self.state
        state.connections.add(self)
        state.clocked.add(self)
        state.metrics.entrypoint(ep.name).open_connections += 1
        state.ensure_ticking(self.loop)
        self._set_read_deadline(self.loop.time())
        if state.draining:
            self.shutdown()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        state = self.state
        state.connections.discard(self)
        state.clocked.discard(self)
        state.metrics.entrypoint(self.ep.name).open_connections -= 1
        if self.tunnel is not None:
            self.tunnel.close()
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
        timeout = self.ep.read_timeout or self.ep.idle_timeout
        self.deadline = now + timeout if timeout > 0 else INF
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
            self._reject(400, exc)
            return
        if self.in_head:
            self.head_bytes += len(data)
            if self.head_bytes > self.ep.max_header_bytes:
                self._reject(431, HeaderTooLarge())

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
        self.ep_stats.observe(method_index(ex.method_b) if ex else 9, status, 0.0, 0, 0)
        self.transport.close()

    # -- httptools callbacks

    def on_message_begin(self) -> None:
        now = self.loop.time()
        self.ex = Exchange(RequestHead(self.ctx.trusted), now, self.client_ip)
        self.in_head = True
        self.head_bytes = 0
        self._set_read_deadline(now)

    def on_url(self, url: bytes) -> None:
        ex = self.ex
        assert ex is not None
        ex.target += url
        if len(ex.target) > self.ep.max_target_bytes:
            raise UriTooLong()

    def on_header(self, name: bytes, value: bytes) -> None:
        head = self.ex.head  # type: ignore[union-attr]
        head.add(name, value)
        if head.count > self.ep.max_header_count or head.size > self.ep.max_header_bytes:
            raise HeaderTooLarge()

    def on_headers_complete(self) -> None:
        ex = self.ex
        assert ex is not None
        self.in_head = False
        parser = self.parser
        ex.method_b = parser.get_method()
        ex.version = parser.get_http_version()
        ex.keep_alive = parser.should_keep_alive()
        _validate(ex)
        if self.active is None:
            self.active = ex
            self._start(ex)
        else:
            self.queue.append(ex)
            self.gate.block(flow.PIPELINE)

    def on_body(self, body: bytes) -> None:
        ex = self.ex
        assert ex is not None
        ex.bytes_in += len(body)
        limit = self.ep.max_body_bytes
        if limit and ex.bytes_in > limit:
            raise PayloadTooLarge()
        if ex.chunked:
            body = b"%x\r\n%b\r\n" % (len(body), body)
        self._send_body(ex, body)

    def on_message_complete(self) -> None:
        ex = self.ex
        assert ex is not None
        self.ex = None
        ex.complete = True
        if ex.chunked:
            self._send_body(ex, _LAST_CHUNK)
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
        if graph is not self.graph:
            self.graph = graph
            self.table = graph.http.get(self.ep.name)
        head = ex.head
        ex.host = canonical_host(head.host.decode("latin-1")) if head.hosts else ""
        path = ex.target.partition(b"?")[0]
        ex.path = routing_path(path.decode("utf-8", "surrogateescape"))
        table = self.table
        target = table.match(ex) if table is not None else None
        if target is None:
            self._error(ex, 404)
            return
        ex.stats = target.stats
        server = target.pick()
        if server is None:
            self._error(ex, 503)
            return
        ex.server = server
        if ex.expect_continue and ex.version == "1.1" and not ex.complete:
            ex.sent_continue = True
        conn = server.pool.acquire()
        if conn is not None:
            self._attach(ex, conn)
        else:
            self._dial(ex, server.pool)

    def _request_head(self, ex: Exchange, server: Server) -> bytes:
        head = ex.head
        target = server.path_prefix + ex.target if server.path_prefix else ex.target
        start = b"%b %b HTTP/1.1\r\n" % (ex.method_b, target)
        host = head.host if server.pass_host_header and head.hosts else server.host_header
        if ex.chunked:
            framing = _CHUNKED
        elif head.lengths:
            framing = b"Content-Length: %b\r\n" % head.content_length
        else:
            framing = b""
        return upstream_head(head, start, host, self.ctx, framing, ex.upgrade)

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
        self.gate.unblock(flow.UPSTREAM_PENDING)
        if ex.complete:
            self._await_response(ex)

    def _dial(self, ex: Exchange, pool: UpstreamPool) -> None:
        if not ex.complete:
            self.gate.block(flow.UPSTREAM_PENDING)

        def ready(result: UpstreamConnection | ProxyError) -> None:
            if isinstance(result, ProxyError):
                if ex is self.active and not self.closed and ex.status == 0:
                    self._error(ex, result.status)
                return
            if ex is self.active and not self.closed and ex.upstream is None:
                self._attach(ex, result)
            else:
                pool.release(result, self.loop.time())

        pool.connect(ready)

    # ------------------------------------------------------------------ upstream events

    def upstream_head(self, conn: UpstreamConnection, status: int, head: ResponseHead) -> None:
        ex = self.active
        assert ex is not None
        if status < 200:
            if status == 101 or (status == 100 and ex.sent_continue) or ex.version != "1.1":
                return
            self.transport.write(b"".join((_status_line(status), *head.kept_lines(), b"\r\n")))
            return
        ex.status = status
        keep = ex.keep_alive and not self.shutting_down and not ex.upgrade
        parts = [_status_line(status), *head.kept_lines()]
        if ex.method_b == b"HEAD" or status == 204 or status == 304:
            ex.framing = F_NONE
            if head.content_length:
                parts += (b"Content-Length: ", head.content_length, b"\r\n")
        elif head.content_length and not head.te:
            ex.framing = F_PASS
            parts += (b"Content-Length: ", head.content_length, b"\r\n")
        elif ex.version == "1.1":
            ex.framing = F_CHUNK
            parts.append(_CHUNKED)
        else:
            ex.framing = F_PASS  # HTTP/1.0: the end of the body is the end of the connection
            keep = False
        if not keep:
            parts.append(_CLOSE)
        elif ex.version == "1.0":
            parts.append(_KEEP_ALIVE)
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
            self.transport.write(ex.response_head + _LAST_CHUNK)
        elif ex.response_head:
            self.transport.write(ex.response_head)
        now = self.loop.time()
        ex.upstream = None
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
            if _retryable(ex, conn):
                ex.retried = True
                assert ex.stats is not None and ex.server is not None
                ex.stats.retries += 1
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
                    _status_line(101),
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
        for chunk in self.stash or ():
            conn.write(chunk)
        self.stash = None
        self.active = None
        self.deadline = INF
        self._observe(ex, self.loop.time())
        self.gate.unblock(flow.UPSTREAM_PENDING | flow.PIPELINE)

    def upstream_pause(self) -> None:
        self.gate.block(flow.UPSTREAM_BUSY)

    def upstream_resume(self) -> None:
        self.gate.unblock(flow.UPSTREAM_BUSY)

    # ------------------------------------------------------------------ completion

    def _client_upgrade(self, leftover: bytes) -> None:
        """The parser handed over after an Upgrade request: hold bytes until the 101."""
        self.stash = [leftover] if leftover else []
        ex = self.active
        if ex is None or not ex.upgrade:
            self._reject(400, BadRequest("unexpected upgrade"))

    def _error(self, ex: Exchange, status: int) -> None:
        """Answer `ex` with an error status (before any response byte was sent)."""
        close = not (ex.keep_alive and ex.complete) or self.shutting_down or ex.upgrade
        ex.status = status
        ex.keep = not close
        if ex.upstream is not None:
            ex.upstream.abort()
            ex.upstream = None
        self.transport.write(error_response(status, close))
        self._finish(ex, self.loop.time())

    def _observe(self, ex: Exchange, now: float) -> None:
        stats = ex.stats or self.ep_stats
        stats.observe(
            method_index(ex.method_b), ex.status, now - ex.start, ex.bytes_in, ex.bytes_out
        )

    def _finish(self, ex: Exchange, now: float) -> None:
        self._observe(ex, now)
        self.active = None
        if not ex.keep or not ex.complete or self.fatal or self.shutting_down:
            if self.fatal:
                self.transport.write(error_response(self.fatal, True))
            self.transport.close()
            return
        if self.queue:
            self._advance()
        elif self.active is None:
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


def _nodelay(transport: asyncio.Transport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _status_line(status: int) -> bytes:
    line = STATUS_LINES.get(status)
    return line if line is not None else b"HTTP/1.1 %d \r\n" % status


def _retryable(ex: Exchange, conn: UpstreamConnection) -> bool:
    """A reused connection that died before any response byte: try once more on a new one
    when nothing of the body went out (or the method is idempotent and had no body)."""
    if ex.retried or not conn.reused or conn.got_bytes or ex.body_sent:
        return False
    return ex.method_b in _IDEMPOTENT or not (ex.head.lengths or ex.chunked)


def _validate(ex: Exchange) -> None:
    """Reject what httptools lets through and a proxy must not forward (RFC 9112 §6.3)."""
    head = ex.head
    if head.lengths < 0:
        raise BadRequest("differing Content-Length values")
    if head.te:
        if head.lengths:
            raise BadRequest("Content-Length with Transfer-Encoding")
        if ex.version != "1.1" or head.te.strip().lower() != b"chunked":
            raise BadRequest("unsupported Transfer-Encoding")
        ex.chunked = True
    elif not head.lengths or head.content_length == b"0":
        ex.complete = True  # no body: the request is whole once its head is
    if head.hosts > 1 or (head.hosts == 0 and ex.version == "1.1"):
        raise BadRequest("exactly one Host header is required")
    if head.expect:
        ex.expect_continue = head.expect.lower() == b"100-continue"
    if head.upgrade:
        ex.upgrade = head.wants_upgrade()
    _validate_target(ex)


def _validate_target(ex: Exchange) -> None:
    target = ex.target
    if not target or target.translate(None, _TARGET_OK):
        raise BadRequest("invalid request target")
    if target[0] == 0x2F:  # origin-form, the usual case
        return
    if target == b"*" and ex.method_b == b"OPTIONS":
        return
    lower = target[:8].lower()
    if lower.startswith((b"http://", b"https://")):
        rest = target[target.index(b"//") + 2 :]
        cut = min((i for i in (rest.find(b"/"), rest.find(b"?")) if i >= 0), default=len(rest))
        authority, path = rest[:cut], rest[cut:]
        if b"@" in authority or authority.lower() != ex.head.host.lower():
            raise BadRequest("absolute-form target disagrees with Host")
        ex.target = path if path.startswith(b"/") else b"/" + path
        return
    raise BadRequest("unsupported request-target form")
