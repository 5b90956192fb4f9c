"""The client side of the HTTP/1.1 proxy: an asyncio.Protocol driven by httptools callbacks.

Per connection one `HttpProxy` parses requests, validates them strictly (the smuggling
vectors httptools lets through are checked here), and answers one `Exchange` at a time;
pipelined requests wait in order with reading paused. Routing, the upstream connection and
the accounting are version-neutral (edge/proxy/dispatch.py, against the `Downstream`
protocol `HttpProxy` implements); what is HTTP/1 is here and in edge/http1/response.py
(framing, the wire of responses) and edge/http1/local.py (answers without a backend).
Bodies stream both ways with backpressure (`ReadGate` on the client, pause_reading on the
upstream). After a 101 both sockets become a raw tunnel.

The connection is in one phase at a time (`IDLE` ... `CLOSED` below), changed only by
`_enter`, which also arms the connection's one deadline (enforced by the worker's tick):
what is read, what a deadline means and what follows an exchange depend on the phase, not
on flags. `LimitedHttpProxy` (edge/http1/limits.py) adds its limits by overriding `_enter`.

Hot-path habits (../shared/DESIGN.md): no task or coroutine per request, status lines precomputed,
one `transport.write` per response head, metrics are integer increments on the matched
target's stats, `loop.time()` read when a request starts and when it ends, deadlines
enforced by the worker's tick instead of timers, phases plain ints (an `IntEnum` compares
through the generic path). Errors are `ProxyError`s, answered via `errors.error_response`
only; a parse error is logged at debug level, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

import httptools
from mypy_extensions import mypyc_attr

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
from proxynow.edge.core.metrics import EntryPointStats, request_key
from proxynow.edge.http.exchange import (
    F_CHUNK,
    F_CHUNK_TRANSFORMED,
    F_NONE,
    F_PASS,
    F_PASS_TRANSFORMED,
    SNIFFED,
    EntryPointRuntime,
    Exchange,
    entrypoint_runtime,
    validate,
)
from proxynow.edge.http.middlewares.content_type import SNIFF
from proxynow.edge.http.middlewares.sniff import detect
from proxynow.edge.http.peers import PeerCache
from proxynow.edge.http1.local import error_answer, reply_answer, text_answer
from proxynow.edge.http1.request_line import Lenient, lenient_line
from proxynow.edge.http1.response import (
    CHUNKED,
    CLOSE,
    INF,
    KEEP_ALIVE,
    LAST_CHUNK,
    STATUS_LINES,
    interim_head,
    last_chunk,
    status_line,
    switching_head,
)
from proxynow.edge.message.headers import REQUEST_MEMO, RequestHead, ResponseHead
from proxynow.edge.proxy.dispatch import (
    abandon,
    complete,
    finish,
    hand_off,
    lost,
    replace,
    response_head,
    route,
    upgraded,
)
from proxynow.edge.upstream.connection import UpstreamConnection

if TYPE_CHECKING:
    from proxynow.edge.graph.build import HttpTarget, RouterGraph
    from proxynow.edge.graph.state import WorkerState
    from proxynow.edge.http.middlewares import Reply
    from proxynow.rules import RouteTable

__all__ = [
    "AWAITING",
    "BODY",
    "CLOSED",
    "CLOSING",
    "HEAD",
    "IDLE",
    "INF",
    "PHASES",
    "RESPONDING",
    "TRANSITIONS",
    "TUNNEL",
    "UPGRADING",
    "EntryPointRuntime",
    "Exchange",
    "HttpProxy",
    "IllegalTransition",
    "entrypoint_runtime",
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
# At a chunk-size line the head-size budget grows (for trailers, see `on_chunk_header`) by
# the rest of the read that held the line: one socket read (uvloop's is 256 KiB).
_READ_MAX = 256 << 10
# A response body read longer than this leaves by writelines (a vectored write) instead of
# being joined to its head or chunk framing: a copy of the read saved. Shorter, one write.
_JOIN_MAX = 16 << 10
# `head_room` when no head is being read (else the bytes it may still take, plus one: a
# small int, tested for truth, is cheaper than a sentinel compared).
_NO_HEAD = 0
# Bound once: `STATUS_LINES.get(...)` in a method builds a method object per call.
_status_lines = STATUS_LINES.get
# The first line of the HTTP/2 connection preface (RFC 9113 §3.4).
_PREFACE_LINE = b"PRI * HTTP/2.0\r\n"

# The phases of a client connection. Plain ints: the cheapest to compare on the hot path.
IDLE = 0  # kept alive between requests, nothing read: the idle deadline (idleTimeout)
HEAD = 1  # a request head is read, nothing in flight: the read deadline (readTimeout)
BODY = 2  # a request is in flight, its body still read: the head's read deadline stands
AWAITING = 3  # the request is whole, no response head yet: responseHeaderTimeout, a 504
RESPONDING = 4  # the response is relayed
UPGRADING = 5  # an Upgrade request is in flight: what the client sends is held until a 101
TUNNEL = 6  # after a 101: bytes pass raw both ways, no deadline
CLOSING = 7  # the connection ends once what is in flight is answered; what is read is dropped
CLOSED = 8  # the transport is gone
PHASES: tuple[str, ...] = ("idle", "head", "body", "awaiting", "responding", "upgrading")
PHASES += ("tunnel", "closing", "closed")

# Phase → {phase asked for: phase entered}. A phase missing is a transition that cannot
# happen (`IllegalTransition`). CLOSING absorbs the steps of the exchange it still answers,
# and an Upgrade request answered without a 101 leaves nothing to read on the connection.
TRANSITIONS: dict[int, dict[int, int]] = {
    IDLE: {HEAD: HEAD, BODY: BODY, AWAITING: AWAITING, CLOSING: CLOSING},
    HEAD: {HEAD: HEAD, BODY: BODY, AWAITING: AWAITING, CLOSING: CLOSING},
    BODY: {p: p for p in (AWAITING, RESPONDING, IDLE, HEAD, CLOSING)},
    AWAITING: {p: p for p in (AWAITING, RESPONDING, UPGRADING, IDLE, HEAD, CLOSING)},
    RESPONDING: {p: p for p in (RESPONDING, IDLE, HEAD, CLOSING)},
    UPGRADING: {UPGRADING: UPGRADING, TUNNEL: TUNNEL, RESPONDING: CLOSING, CLOSING: CLOSING},
    TUNNEL: {CLOSING: CLOSING},
    CLOSING: {AWAITING: CLOSING, RESPONDING: CLOSING, CLOSING: CLOSING},
    CLOSED: {CLOSING: CLOSED},  # closing what is closed already is nothing
}
for _table in TRANSITIONS.values():
    _table[CLOSED] = CLOSED  # the transport can go in any phase
# The same as tuples (phase → asked → entered, -1: illegal) for `_enter`.
_NEXT = tuple(tuple(TRANSITIONS[old].get(p, -1) for p in range(CLOSED + 1)) for old in TRANSITIONS)


@mypyc_attr(native_class=False)  # compiled (docs/compiled.md): mypyc subclasses no RuntimeError
class IllegalTransition(RuntimeError):
    """A phase change the connection cannot make (a bug in the front end)."""

    def __init__(self, old: int, new: int) -> None:
        super().__init__(f"no transition from {PHASES[old]} to {PHASES[new]}")
        self.old = old
        self.new = new


@mypyc_attr(allow_interpreted_subclasses=True)  # LimitedHttpProxy overrides `_enter`
class HttpProxy(asyncio.Protocol):
    """One client connection on an HTTP entrypoint (the `Downstream` of edge/proxy/)."""

    __slots__ = (
        "access_log",
        "access_peer",
        "active",
        "advancing",
        "client_cert",
        "client_ip",
        "deadline",
        "entrypoint",
        "entrypoint_stats",
        "forward_context",
        "gate",
        "graph",
        "h2c",
        "head_room",
        "held",
        "idle_timeout",
        "lenient",
        "line_part",
        "loop",
        "parser",
        "path",
        "peer",
        "peer_hosts",
        "peers",
        "phase",
        "queue",
        "raw_path",
        "read_timeout",
        "reading",
        "refusal",
        "state",
        "table",
        "tls_bits",
        "transport",
        "tunnel",
        "unrouted",
        "writing_paused",
    )
    __deletable__ = ("parser",)  # for mypyc: `connection_lost` deletes it

    def __init__(
        self,
        state: WorkerState,
        entrypoint: EntryPointRuntime,
        stats: EntryPointStats,
        peers: PeerCache,
    ) -> None:
        self.state = state
        self.entrypoint = entrypoint
        # Read by dispatch where an exchange ends: None costs a request one test.
        self.access_log = state.access_log if entrypoint.access_logs else None
        self.access_peer: object = None  # the access log's pieces of this connection
        self.entrypoint_stats = stats
        self.unrouted = stats.unrouted
        self.peers = peers
        self.loop = asyncio.get_running_loop()
        self.parser = httptools.HttpRequestParser(self)
        self.phase = IDLE
        self.deadline = INF
        # The route cache of edge/proxy/dispatch.py: clients repeat their target on a
        # connection, so the routing path is computed again only when it changes.
        self.graph: RouterGraph | None = None
        self.table: RouteTable[HttpTarget] | None = None
        self.raw_path = b""
        self.path = "/"
        self.reading: Exchange | None = None  # the exchange whose request is being read
        self.active: Exchange | None = None  # the exchange being answered
        self.queue: deque[Exchange] = deque()  # pipelined, read and waiting their turn
        self.advancing = False  # `_advance` is running (it is never re-entered)
        self.head_room = _NO_HEAD  # bytes a head may still take + 1, while one is read
        self.line_part = b""  # the start of a request line, until its end arrives
        self.lenient: Lenient | None = None  # a rewritten line being parsed
        self.writing_paused = False
        # Owned by phases: the client's bytes held while UPGRADING, the backend of a
        # TUNNEL, the answer owed to a refused pipelined request when CLOSING.
        self.held: list[bytes] = []
        self.tunnel: UpstreamConnection | None = None
        self.refusal = b""
        self.client_ip: _IP | None = None
        timeout = entrypoint.read_timeout or entrypoint.idle_timeout
        self.read_timeout = timeout if timeout > 0 else INF
        self.idle_timeout = entrypoint.idle_timeout if entrypoint.idle_timeout > 0 else INF
        self.tls_bits = 0  # the connection's TLS part of a metrics row key
        self.client_cert = b""  # the client's TLS certificate (DER), b"": none
        # The HTTP/2 front end's factory, for prior-knowledge h2c (set by the factory).
        self.h2c: Callable[[], asyncio.Protocol] | None = None

    @property
    def body_gate(self) -> ReadGate:
        """The read gate, for a step that reads a body whole before it is sent."""
        return self.gate

    # ------------------------------------------------------------------ phases

    def _enter(self, phase: int, now: float) -> None:
        """Enter `phase` (see TRANSITIONS) and arm the deadline it has: the one place both
        change. HEAD, BODY and IDLE arm theirs from `now`; AWAITING reads the clock only if
        it has a timeout; RESPONDING ends the request's read deadline once it is read.

        A request is dispatched when BODY or AWAITING is entered from IDLE or HEAD, before
        it is routed: AWAITING has no server yet, no deadline then, and `attached` arms it.
        A head read whole in one read never enters HEAD (see `_head_pending`)."""
        entered = _NEXT[self.phase][phase]
        # Ordered by how often: AWAITING, RESPONDING and IDLE are every request's.
        if entered == AWAITING:
            server = self.active.server  # type: ignore[union-attr]
            if server is not None and server.response_header_timeout > 0:
                self.deadline = self.loop.time() + server.response_header_timeout
            else:
                self.deadline = INF
        elif entered == RESPONDING:
            if self.active.complete:  # type: ignore[union-attr]
                self.deadline = INF  # else the request's read deadline stands
        elif entered == IDLE:
            self.deadline = now + self.idle_timeout
        elif entered == HEAD or entered == BODY:  # noqa: SIM109 (a tuple is slower)
            self.deadline = now + self.read_timeout  # readTimeout covers the whole request
        elif entered == CLOSING:
            ex = self.active
            if ex is None or ex.status:  # else a response head is awaited: its 504 stands
                self.deadline = INF
        elif entered == UPGRADING:
            server = self.active.server  # type: ignore[union-attr]
            timeout = server.response_header_timeout if server is not None else 0.0
            self.deadline = self.loop.time() + timeout if timeout > 0 else INF
        elif entered < 0:
            raise IllegalTransition(self.phase, phase)
        else:  # TUNNEL, CLOSED
            self.deadline = INF
        self.phase = entered

    def on_deadline(self, now: float) -> None:
        """Called by the worker's tick once `deadline` has passed."""
        self.deadline = INF
        phase = self.phase
        ex = self.active
        if ex is not None and (
            phase in (AWAITING, UPGRADING) or (phase == CLOSING and ex.complete and not ex.status)
        ):
            self.error(ex, 504)
        else:  # slowloris or idle keep-alive: cut without a word
            self._enter(CLOSING, now)
            self.transport.close()

    # ------------------------------------------------------------------ connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.gate = ReadGate(self.transport)
        # No TCP_NODELAY here: uvloop (and asyncio) set it on every TCP transport.
        peer = transport.get_extra_info("peername")
        self.peer = self.peers.get(peer[0] if isinstance(peer, tuple) else "")
        self.client_ip, self.forward_context, self.peer_hosts = self.peer
        state = self.state
        state.connections.add(self)
        state.clocked.add(self)
        self.entrypoint_stats.open_connections += 1
        if self.entrypoint.tls:
            self._note_tls(transport)
        state.ensure_ticking(self.loop)
        self._enter(HEAD, self.loop.time())  # the first request is read from now
        if state.draining:
            self.shutdown()

    def _note_tls(self, transport: asyncio.BaseTransport) -> None:
        """Look the connection's (TLS version, cipher) up once for its requests' metrics."""
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            cipher = ssl_object.cipher()
            version = ssl_object.version() or ""
            self.tls_bits = self.state.metrics.tls.bits(version, cipher[0] if cipher else "")
            # For passTLSClientCert: asked of the handshake once, never per request.
            self.client_cert = ssl_object.getpeercert(True) or b""

    def connection_lost(self, exc: Exception | None) -> None:
        if self.phase == TUNNEL and self.tunnel is not None:
            self.tunnel.close()
        self._enter(CLOSED, 0.0)
        # The parser holds this protocol (its callbacks): dropping it breaks the only cycle,
        # so the connection is freed by reference counting, not by the cyclic GC.
        del self.parser
        state = self.state
        state.connections.discard(self)
        state.clocked.discard(self)
        self.entrypoint_stats.open_connections -= 1
        if self.active is not None:  # cut mid-exchange, or a tunnel ended
            abandon(self.active, self.loop.time(), self)

    def eof_received(self) -> bool:
        if self.phase == TUNNEL:
            tunnel = self.tunnel.transport if self.tunnel is not None else None
            if tunnel is not None and tunnel.can_write_eof():
                tunnel.write_eof()
            return True
        if self.active is not None:
            _last(self.active)  # answer what we have, then close
            return True
        return False

    def pause_writing(self) -> None:
        self.writing_paused = True
        ex = self.active
        if ex is not None and ex.upstream is not None:
            ex.upstream.pause_reading()
        elif self.phase == TUNNEL and self.tunnel is not None:
            self.tunnel.pause_reading()

    def resume_writing(self) -> None:
        self.writing_paused = False
        ex = self.active
        if ex is not None and ex.upstream is not None:
            ex.upstream.resume_reading()
        elif self.phase == TUNNEL and self.tunnel is not None:
            self.tunnel.resume_reading()

    def shutdown(self) -> None:
        """Drain: finish the in-flight response, then close; close at once when idle."""
        phase = self.phase
        if phase <= HEAD:
            self._enter(CLOSING, self.loop.time())
            self.transport.close()
        elif phase < TUNNEL:
            ex = self.active
            assert ex is not None  # BODY to UPGRADING: an exchange is in flight
            _last(ex)
            if ex.complete:
                self.gate.block(flow.SHUTDOWN)
        # TUNNEL: the worker ends it when the grace time is over; CLOSING: under way

    def abort(self) -> None:
        self.transport.abort()

    # ------------------------------------------------------------------ reading

    def data_received(self, data: bytes) -> None:
        if self.phase >= UPGRADING:
            self._received_aside(data)
            return
        at_line = self.reading is None  # the read starts with a request line (`_lenient`)
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
            # llhttp stops at "PRI * HTTP/2.0": only the error path pays for the h2c test.
            if at_line and data.startswith(_PREFACE_LINE) and self._to_http2(data):
                return
            if not (at_line and self._lenient(data)):
                self._reject(400, exc)
            return
        if self.head_room:
            self._head_pending(len(data))

    def _to_http2(self, data: bytes) -> bool:
        """Prior-knowledge h2c (RFC 9113 §3.3), as Traefik serves it: a connection whose
        first bytes are the HTTP/2 preface goes to the HTTP/2 front end. Only before any
        request was dispatched (`graph`, the route cache, is set by the first)."""
        if self.h2c is None or self.graph is not None or self.active is not None:
            return False
        protocol = self.h2c()
        state = self.state
        state.connections.discard(self)
        state.clocked.discard(self)
        self.entrypoint_stats.open_connections -= 1
        self._enter(CLOSED, 0.0)
        self.reading = None
        del self.parser  # it holds this protocol: no cycle left for the GC
        self.transport.set_protocol(protocol)
        protocol.connection_made(self.transport)
        protocol.data_received(data)
        return True

    def _head_pending(self, size: int) -> None:
        """A read ended inside a head (or trailers): count it against maxHeaderBytes, and
        clock the head's read from its first byte, unless a response is in flight (a
        pipelined head is clocked from when that response is done, see `ended`)."""
        self.head_room -= size
        if self.head_room <= 0:
            self.head_room = _NO_HEAD
            self._reject(431, HeaderTooLarge())
        elif self.phase <= HEAD and self.reading is not None:
            self._enter(HEAD, self.reading.start)

    def _received_aside(self, data: bytes) -> None:
        """What the client sends when no request is parsed: the tunnel's, the upgrade's
        (sent after the backend's 101), or nothing anyone reads (CLOSING)."""
        phase = self.phase
        if phase == TUNNEL:
            assert self.tunnel is not None
            self.tunnel.write(data)
        elif phase == UPGRADING:
            self.held.append(data)
            self.gate.block(flow.UPSTREAM_PENDING)

    def _hold(self, data: bytes) -> bytes:
        """A read at a request's start without a line end: keep it until the line is
        whole, so that `_lenient` sees every request line in one piece. The bytes to
        parse now, or b"" while holding."""
        line = self.line_part + data if self.line_part else data
        if _LF in line:
            self.line_part = b""
            return line
        if len(line) > self.entrypoint.max_target_bytes + _LINE_SLACK:
            self.line_part = b""
            self._reject(414, UriTooLong())
            return b""
        if not self.line_part and self.phase <= HEAD:
            self._enter(HEAD, self.loop.time())  # a slow line is a slow head
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
        self.reading = None
        self.head_room = _NO_HEAD
        self.parser = httptools.HttpRequestParser(self)
        self.lenient = lenient
        self.data_received(lenient.data)  # a second refusal is final: `lenient` is set
        return True

    def _reject(self, status: int, exc: Exception) -> None:
        """A request cannot be served: answer `status` (after any in-flight one), close."""
        if self.phase >= TUNNEL:
            return  # closing already: nothing more is answered
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s: rejecting request from %s: %s",
                self.entrypoint.name,
                self.forward_context.client_ip,
                exc,
            )
        self.gate.block(flow.PIPELINE)
        now = self.loop.time()
        active = self.active
        if active is not None and active is not self.reading:
            self.refusal = error_response(status, True)  # written after the active one
            self._enter(CLOSING, now)
            return
        ex = self.reading
        self._enter(CLOSING, now)
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
        self.unrouted.observe(key, 0.0, 0, 0)
        self.transport.close()

    # -- httptools callbacks

    def on_message_begin(self) -> None:
        now = self.loop.time()
        self.reading = Exchange(
            RequestHead(self.forward_context.trusted, self.tls_bits), now, self.client_ip
        )
        self.head_room = self.entrypoint.max_header_bytes + 1

    def on_url(self, url: bytes) -> None:
        ex = self.reading
        assert ex is not None
        ex.target += url
        if len(ex.target) > self.entrypoint.max_target_bytes:
            raise UriTooLong()

    def on_header(self, name: bytes, value: bytes) -> None:
        # RequestHead.add inlined: this runs for every request header.
        ex = self.reading
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
        ex = self.reading
        assert ex is not None
        self.head_room = _NO_HEAD
        entrypoint = self.entrypoint
        if (
            ex.head.count > entrypoint.max_header_count
            or ex.head.size > entrypoint.max_header_bytes
        ):
            raise HeaderTooLarge()
        parser = self.parser
        ex.method_b = parser.get_method()
        ex.version = parser.get_http_version()
        ex.keep_alive = parser.should_keep_alive()
        validate(ex)
        if self.lenient is not None:
            self._unlenient(ex, self.lenient)
        phase = self.phase
        if phase <= HEAD:
            self.active = ex
            self._enter(AWAITING if ex.complete else BODY, ex.start)
            route(self, ex)
        elif phase != CLOSING:
            self.queue.append(ex)
            self.gate.block(flow.PIPELINE)
        # CLOSING: an exchange just ended the connection; nothing more is answered

    def on_body(self, body: bytes) -> None:
        self.head_room = _NO_HEAD  # not a trailer after all (see on_chunk_header)
        ex = self.reading
        assert ex is not None
        ex.bytes_in += len(body)
        limit = self.entrypoint.max_body_bytes
        if limit and ex.bytes_in > limit:
            raise PayloadTooLarge()
        sink = ex.sink
        if sink is not None:  # read whole before it is sent (buffering)
            sink.add(body)
            return
        if ex.chunked:
            body = b"%x\r\n%b\r\n" % (len(body), body)
        self._send_body(ex, body)

    def on_chunk_header(self) -> None:
        # The size line of a chunk: the last one (size 0) is followed by trailer fields,
        # which httptools gathers by concatenation, so until body bytes show this is not
        # the last chunk, what arrives is clocked against maxHeaderBytes like a head.
        self.head_room = self.entrypoint.max_header_bytes + _READ_MAX + 1

    def _trailer(self, head: RequestHead) -> None:
        """A trailer field: counted against the head's limits, never forwarded (so that
        no trailer can add a header or change the framing of what went upstream)."""
        entrypoint = self.entrypoint
        if head.count > entrypoint.max_header_count or head.size > entrypoint.max_header_bytes:
            raise HeaderTooLarge()

    def _unlenient(self, ex: Exchange, lenient: Lenient) -> None:
        """Put back what `_lenient` rewrote for llhttp: the method and target as sent."""
        self.lenient = None
        if lenient.method is not None:
            ex.method_b = lenient.method
        if lenient.target is not None and ex.target[:1] == b"/":
            ex.target = lenient.target

    def on_message_complete(self) -> None:
        self.head_room = _NO_HEAD
        ex = self.reading
        assert ex is not None
        self.reading = None
        ex.complete = True
        if ex.chunked and ex.sink is None:
            self._send_body(ex, LAST_CHUNK)
        if ex is self.active:
            phase = self.phase
            if phase == BODY:
                self._enter(AWAITING, 0.0)
                if ex.sink is not None:  # read whole (buffering): the request goes on now
                    ex.sink.done()
            elif phase == RESPONDING:
                self._enter(RESPONDING, 0.0)  # answered early: the read deadline is over

    def _send_body(self, ex: Exchange, data: bytes) -> None:
        conn = ex.upstream
        if conn is not None and ex.pending is None:
            conn.write(data)
            ex.body_sent = True
            if ex.mirror is not None:  # a mirroring service's mirrors get it too
                ex.mirror.add(data)
            if ex.replay is not None:  # kept to be sent again (retry)
                ex.replay.add(data)
        elif ex.status == 0:
            if ex.pending is None:
                ex.pending = []
            ex.pending.append(data)
            self.gate.block(flow.UPSTREAM_PENDING)

    def _client_upgrade(self, leftover: bytes) -> None:
        """The parser handed over after an Upgrade request: hold bytes until the 101."""
        if self.phase == CLOSING:
            return  # answered already (without a backend), and closing
        ex = self.active
        if ex is None or not ex.upgrade or self.phase != AWAITING:
            self._reject(400, BadRequest("unexpected upgrade"))
            return
        self.held = [leftover] if leftover else []
        self._enter(UPGRADING, 0.0)

    # ------------------------------------------------------------------ Downstream

    def error(self, exchange: Exchange, status: int) -> None:
        """Answer `exchange` with an error status (before any response byte was sent)."""
        data = error_answer(exchange, status)
        if exchange.upstream is not None:
            exchange.upstream.abort()
            exchange.upstream = None
        self.transport.write(data)
        finish(self, exchange, self.loop.time())

    def reply(self, exchange: Exchange, reply: Reply) -> None:
        self.transport.write(reply_answer(exchange, reply))
        finish(self, exchange, self.loop.time())

    def answer(self, exchange: Exchange, status: int, body: bytes) -> None:
        self.transport.write(text_answer(exchange, status, body))
        finish(self, exchange, self.loop.time())

    def attached(self, exchange: Exchange, conn: UpstreamConnection) -> None:
        if self.writing_paused:
            conn.pause_reading()
        if exchange.sent_continue:
            self.transport.write(_CONTINUE)
        if self.gate.reasons:
            self.gate.unblock(flow.UPSTREAM_PENDING)
            if exchange.sink is not None:  # a buffered body, from its file (buffering)
                exchange.sink.pump(conn)
        if exchange.server.response_header_timeout > 0:  # type: ignore[union-attr]
            phase = self.phase
            if phase == AWAITING or phase == UPGRADING:  # noqa: SIM109 (awaited from now)
                self._enter(phase, 0.0)

    def wants(self, exchange: Exchange) -> bool:
        return exchange is self.active and self.phase != CLOSED

    def failed(self, exc: BaseException) -> None:
        log.error("internal error after a dial; closing the connection", exc_info=exc)
        if self.phase < CLOSING:
            self._enter(CLOSING, self.loop.time())
        self.transport.close()

    def ended(self, exchange: Exchange, now: float) -> None:
        """The exchange in flight is over: close, start the next one, or wait for it."""
        self.active = None
        if not exchange.keep or not exchange.complete or self.phase == CLOSING:
            if self.refusal:
                self.transport.write(self.refusal)
            self._enter(CLOSING, now)
            self.transport.close()
            return
        if self.queue:
            self._enter(IDLE, now)
            self._advance()
        elif self.head_room:  # a pipelined head, still incomplete, read from now on
            self._enter(HEAD, now)
        else:
            self._enter(IDLE, now)

    def _advance(self) -> None:
        """Start queued (pipelined) requests in order; iterative, never recursive."""
        if self.advancing:
            return
        self.advancing = True
        try:
            while self.active is None and self.queue and self.phase <= HEAD:
                ex = self.queue.popleft()
                self.active = ex
                if not self.queue:
                    self.gate.unblock(flow.PIPELINE)
                self._enter(AWAITING if ex.complete else BODY, self.loop.time())
                route(self, ex)
        finally:
            self.advancing = False

    # ------------------------------------------------------------------ upstream (Owner)

    def upstream_head(self, conn: UpstreamConnection, status: int, head: ResponseHead) -> None:
        ex = self.active
        assert ex is not None
        if status < 200:
            if status == 101 or (status == 100 and ex.sent_continue) or ex.version != "1.1":
                return
            self.transport.write(interim_head(status, head))
            return
        ex.status = status
        load = ex.load
        if load is not None:  # leasttime's time to first byte, from the request's start
            load.first_byte(self.loop.time() - ex.start)
        transformed = sniffed = False
        if ex.chain is not None:
            replaced = response_head(ex, status, head)
            if replaced is not None:  # errors: the backend's response is not relayed
                replace(self, ex, conn, replaced)
                return
            transform = ex.transform
            if transform is not None:  # compress: the length changes; contentType: not
                sniffed = transform is SNIFF
                transformed = not sniffed
        # Re-framed for the client (the framing chosen once, kept in `ex.framing`).
        keep = ex.keep_alive and not ex.upgrade
        line = _status_lines(status)
        # Until now `response_head` holds the lines the proxy adds (a sticky Set-Cookie).
        parts = [line or status_line(status), ex.response_head, *head.kept_lines()]
        if ex.method_b == b"HEAD" or status == 204 or status == 304:
            ex.framing = F_NONE
            if head.content_length:
                parts += (b"Content-Length: ", head.content_length, b"\r\n")
        elif transformed:
            if ex.version == "1.1":
                ex.framing = F_CHUNK_TRANSFORMED
                parts.append(CHUNKED)
            else:
                ex.framing = F_PASS_TRANSFORMED
                keep = False
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
        if sniffed and ex.framing != F_NONE:
            ex.framing += SNIFFED  # Content-Type is added with the first body bytes
        # Held until the first body bytes (usually in the same read) so that a small
        # response leaves in one write.
        ex.response_head = b"".join(parts)
        self._enter(RESPONDING, 0.0)  # RESPONDING reads no clock

    def upstream_body(self, data: bytes) -> None:
        ex = self.active
        assert ex is not None
        framing = ex.framing
        if framing > F_CHUNK:
            if framing > F_PASS_TRANSFORMED:
                self._sniffed(ex, data)
                self.upstream_body(data)
            else:
                self._transformed(ex, data, False)
            return
        size = len(data)
        ex.bytes_out += size
        head = ex.response_head
        if size > _JOIN_MAX:  # one vectored write: a long read is not copied to be framed
            if framing == F_CHUNK:
                self.transport.writelines((b"%b%x\r\n" % (head, size), data, b"\r\n"))
            elif head:
                self.transport.writelines((head, data))
            else:
                self.transport.write(data)
        elif framing == F_CHUNK:
            self.transport.write(b"%b%x\r\n%b\r\n" % (head, size, data))
        else:
            self.transport.write(head + data if head else data)
        ex.response_head = b""

    def upstream_done(self, conn: UpstreamConnection, reusable: bool) -> None:
        ex = self.active
        assert ex is not None
        if ex.framing == F_CHUNK:
            trailers = conn.trailers  # an HTTP/2 backend's (gRPC status), else empty
            self.transport.write(
                ex.response_head + (last_chunk(trailers) if trailers else LAST_CHUNK)
            )
        elif ex.framing > F_CHUNK:
            if ex.framing > F_PASS_TRANSFORMED:  # no body: nothing to sniff, as in Go
                ex.framing -= SNIFFED
                self.upstream_done(conn, reusable)
                return
            self._transformed(ex, b"", True)
        elif ex.response_head:
            self.transport.write(ex.response_head)
        complete(self, ex, conn, reusable)

    def _sniffed(self, ex: Exchange, data: bytes) -> None:
        """The first body bytes of a response contentType types: its Content-Type line
        goes into the head held until now, and the framing back to the backend's."""
        ex.framing -= SNIFFED
        if data:
            line = b"Content-Type: %b\r\n\r\n" % detect(data)
            ex.response_head = ex.response_head[:-2] + line

    def _transformed(self, ex: Exchange, data: bytes, end: bool) -> None:
        """A piece of a body a response-head hook transforms (compress), as it goes out."""
        assert ex.transform is not None
        out = ex.transform(data, end)
        ex.bytes_out += len(out)
        if ex.framing == F_CHUNK_TRANSFORMED:
            chunk = b"%x\r\n%b\r\n" % (len(out), out) if out else b""
            self.transport.write(ex.response_head + chunk + (LAST_CHUNK if end else b""))
        elif ex.response_head or out:
            self.transport.write(ex.response_head + out)
        ex.response_head = b""

    def upstream_lost(self, conn: UpstreamConnection) -> None:
        ex = self.active
        if ex is None or ex.upstream is not conn:
            return
        if ex.status == 0:
            lost(self, ex, conn)
        elif conn.head.content_length or conn.head.te or ex.framing == F_NONE:
            ex.upstream = None
            ex.keep = False  # truncated response: the client must see the connection end
            finish(self, ex, self.loop.time())
        else:
            self.upstream_done(conn, False)  # close-delimited body: EOF is its end

    def upstream_upgraded(self, conn: UpstreamConnection, leftover: bytes) -> None:
        ex = self.active
        assert ex is not None
        if not upgraded(self, ex, conn):
            return
        self.transport.write(switching_head(ex, conn.head, leftover))
        hand_off(self, ex, conn, self.transport)
        self.tunnel = conn
        self._enter(TUNNEL, 0.0)
        for chunk in self.held:
            conn.write(chunk)
        self.held = []
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
        if self.phase < CLOSING:
            self._enter(CLOSING, self.loop.time())
        self.transport.close()

    def upstream_pause(self) -> None:
        self.gate.block(flow.UPSTREAM_BUSY)
        ex = self.active
        if ex is not None and ex.sink is not None:
            ex.sink.paused = True

    def upstream_resume(self) -> None:
        self.gate.unblock(flow.UPSTREAM_BUSY)
        ex = self.active
        if ex is not None and ex.sink is not None and ex.upstream is not None:
            ex.sink.paused = False
            ex.sink.pump(ex.upstream)


def _last(ex: Exchange) -> None:
    """Make `ex` the connection's last exchange: its response says `Connection: close`
    if its head is not out yet, and the connection closes after it either way."""
    ex.keep_alive = False
    ex.keep = False


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
