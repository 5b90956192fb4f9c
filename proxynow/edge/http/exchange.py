"""One request/response exchange on a client connection, and the checks a request passes.

`Exchange` carries a request from its head to the end of its response; it is also the
`RequestView` the router matches against (host and path are plain attributes, set once),
and the `StickyRequest` a sticky pick reads its cookie from (edge/balance/sticky.py).
`validate` rejects what llhttp lets through and a proxy must not forward (RFC 9112 §6.3,
§3.2); `retryable` says whether a request may be re-sent on a fresh upstream connection.
`EntryPointRuntime` is the frozen part of an entrypoint's static configuration the HTTP
protocol reads. Pure: no sockets, clocks or awaits.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from mypy_extensions import mypyc_attr

from proxynow.config.static import EntryPoint
from proxynow.edge.balance.sticky import cookie_value
from proxynow.edge.core.errors import BadRequest
from proxynow.edge.core.metrics import TargetStats
from proxynow.edge.message.headers import RequestHead, ResponseHead
from proxynow.rules import parse_query

if TYPE_CHECKING:
    from proxynow.edge.balance.least import Load
    from proxynow.edge.core.flow import ReadGate
    from proxynow.edge.http.mirror_copy import MirrorCopy
    from proxynow.edge.http.replay import Replay
    from proxynow.edge.upstream.connection import UpstreamConnection
    from proxynow.edge.upstream.server import Server

__all__ = [
    "F_CHUNK",
    "F_CHUNK_SNIFF",
    "F_CHUNK_TRANSFORMED",
    "F_NONE",
    "F_PASS",
    "F_PASS_SNIFF",
    "F_PASS_TRANSFORMED",
    "SNIFFED",
    "BodySink",
    "EntryPointRuntime",
    "Exchange",
    "RouterHooks",
    "entrypoint_runtime",
    "retryable",
    "valid_host",
    "validate",
]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_IP = ipaddress.IPv4Address | ipaddress.IPv6Address

# Request-target bytes that never appear in a valid target (RFC 9112 §3.2): controls,
# space, DEL and '#' (a fragment is never sent). Deleting the valid ones leaves the bad.
_TARGET_OK = bytes(b for b in range(256) if 0x20 < b < 0x7F and b != 0x23)
# Host bytes Go's HTTP server accepts (httpguts.ValidHostHeader, so Traefik's): the
# characters of reg-name, IPv4, bracketed IPv6 and a port. Space, '@', '/', '\\', controls
# and raw non-ASCII are refused with a 400; a comma is accepted, as Traefik accepts it.
_HOST_OK = bytes(
    b
    for b in range(256)
    if chr(b).isascii() and (chr(b).isalnum() or chr(b) in "!$%&'()*+,-.:;=[]_~")
)
# Hosts that passed: clients repeat theirs, so a request pays one set lookup (whose hash
# the route lookup then reuses). Bounded: the values are chosen by clients.
_VALID_HOSTS: set[bytes] = set()
_VALID_HOSTS_LIMIT = 4096

# Response framing towards the client.
F_NONE = 0  # no body (HEAD, 1xx, 204, 304)
F_PASS = 1  # bytes as they come (Content-Length, or close-delimited to an HTTP/1.0 client)
F_CHUNK = 2  # re-chunked (unknown length, HTTP/1.1 client)
# A body a response-head hook transforms (`Exchange.transform`: compress), re-framed:
F_CHUNK_TRANSFORMED = 3  # chunked, to an HTTP/1.1 client
F_PASS_TRANSFORMED = 4  # close-delimited, to an HTTP/1.0 client
# A body whose Content-Type is sniffed from its first bytes (contentType), framed as F_PASS
# or F_CHUNK once the header is added: the offset of those from their plain framing.
SNIFFED = 4
F_PASS_SNIFF = F_PASS + SNIFFED
F_CHUNK_SNIFF = F_CHUNK + SNIFFED

_IDEMPOTENT = frozenset((b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"))


@mypyc_attr(native_class=False)  # mypyc compiles no slots dataclass (docs/compiled.md)
@dataclass(frozen=True, slots=True)
class EntryPointRuntime:
    """What the HTTP protocol needs from an entrypoint's static configuration."""

    name: str
    trusted_ips: tuple[_Network, ...] = ()
    insecure: bool = False
    tls: bool = False
    read_timeout: float = 60.0
    write_timeout: float = 0.0  # 0: none
    idle_timeout: float = 180.0
    keep_alive_max_requests: int = 0  # 0: unlimited
    keep_alive_max_time: float = 0.0  # 0: unlimited
    max_header_bytes: int = 1 << 20
    max_header_count: int = 256
    max_target_bytes: int = 64 << 10
    max_body_bytes: int = 0  # 0: no limit
    max_concurrent_streams: int = 250  # HTTP/2 (entryPoints.<n>.http2.maxConcurrentStreams)
    server_name: bytes = socket.gethostname().encode("ascii", "replace")
    access_logs: bool = True  # observability.accessLogs

    def trusts(self, ip: _IP | None) -> bool:
        """Whether forwarded headers from `ip` are kept (forwardedHeaders)."""
        if self.insecure:
            return True
        return ip is not None and any(ip in net for net in self.trusted_ips)

    @property
    def limits_connections(self) -> bool:
        """Whether writeTimeout or a keep-alive limit applies (read once per entrypoint)."""
        return bool(self.write_timeout or self.keep_alive_max_requests or self.keep_alive_max_time)


def entrypoint_runtime(name: str, entrypoint: EntryPoint, tls: bool = False) -> EntryPointRuntime:
    """Freeze the parts of a static entrypoint the HTTP protocol reads."""
    forwarded = entrypoint.forwarded_headers
    transport = entrypoint.transport
    timeouts = transport.responding_timeouts
    networks = tuple(ipaddress.ip_network(ip, strict=False) for ip in forwarded.trusted_ips)
    return EntryPointRuntime(
        name=name,
        trusted_ips=networks,
        insecure=forwarded.insecure,
        tls=tls or entrypoint.http.tls is not None,
        read_timeout=timeouts.read_timeout,
        write_timeout=timeouts.write_timeout,
        idle_timeout=timeouts.idle_timeout,
        keep_alive_max_requests=transport.keep_alive_max_requests,
        keep_alive_max_time=transport.keep_alive_max_time,
        max_header_bytes=entrypoint.http.max_header_bytes,
        max_header_count=entrypoint.http.max_header_count,
        max_target_bytes=entrypoint.http.max_target_bytes,
        max_concurrent_streams=entrypoint.http2.max_concurrent_streams,
        access_logs=entrypoint.observability.access_logs,
    )


class RouterHooks(Protocol):
    """The phases of a router's middleware chain that run after routing, as an exchange
    holds them (edge/http/middlewares/base.py `Chain`; a Protocol, so that this module
    does not import the middlewares, which read exchanges)."""

    @property
    def response_head(self) -> tuple[Callable[[Exchange, int, ResponseHead], object], ...]: ...
    @property
    def response_body(self) -> tuple[Callable[[Exchange, bytes, bool], bytes], ...]: ...
    @property
    def outcome(self) -> tuple[Callable[[Exchange, float], None], ...]: ...
    @property
    def failure(self) -> tuple[Callable[[Exchange, int, Callable[[], None]], bool], ...]: ...


class BodySink(Protocol):
    """What reads a request body whole before it goes upstream, as the HTTP/1 front end
    feeds it (edge/http/middlewares/body_buffer.py `RequestBuffer`)."""

    paused: bool

    def add(self, data: bytes) -> None: ...  # a piece, de-chunked
    def done(self) -> None: ...  # the body is whole
    def pump(self, conn: UpstreamConnection) -> None: ...  # send more, `conn` takes it
    def close(self) -> None: ...


@mypyc_attr(allow_interpreted_subclasses=True)  # the HTTP/2 Stream subclasses it
class Exchange:
    """One request and its response; also the `RequestView` the router matches against."""

    __slots__ = (
        "body_sent",
        "bytes_in",
        "bytes_out",
        "chain",
        "chunked",
        "client_cert",
        "client_ip",
        "complete",
        "expect_continue",
        "forwarded",
        "framing",
        "head",
        "host",
        "keep",
        "keep_alive",
        "load",
        "method_b",
        "mirror",
        "path",
        "pending",
        "reader",
        "replay",
        "response_head",
        "retried",
        "routed",
        "sent_continue",
        "server",
        "sink",
        "start",
        "stats",
        "status",
        "target",
        "transform",
        "upgrade",
        "upstream",
        "version",
    )

    # What a response-head hook turns the body into (compress), or None: as it is. Set (to
    # None) by dispatch only for a routed exchange with a middleware chain, the only kind
    # whose hooks set or read it: a request without middlewares pays no store for it.
    transform: Callable[[bytes, bool], bytes] | None
    # The client connection's read gate (HTTP/1; None: HTTP/2), for a step that reads the
    # body before it is sent (buffering): set by dispatch, like `routed`, with a chain only.
    reader: ReadGate | None
    # The router's target (edge/graph/build.py `HttpTarget`), to send the request again
    # (retry on a status): set by dispatch, like `transform`, only with a middleware chain.
    routed: object
    # The connection's TLS client certificate (DER, b"": none), for passTLSClientCert: set
    # by dispatch for routers with middlewares only, before their request hooks, so that
    # no other request pays for it (not set in __init__, on the hot path).
    client_cert: bytes

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
        # The body kept to send it again (the retry middleware's), or None: not kept.
        self.replay: Replay | None = None
        # What takes the request body instead of a backend until it is whole (buffering).
        self.sink: BodySink | None = None
        self.response_head = b""
        self.upstream: UpstreamConnection | None = None
        self.server: Server | None = None
        # The load (edge/balance/least.py) the exchange counts in from the pick to its end (p2c and
        # leasttime servers only; a tunnel keeps it until the connection closes).
        self.load: Load | None = None
        self.stats: TargetStats | None = None
        # The copy kept for a mirroring service's mirrors (edge/proxy/mirror.py), or None.
        self.mirror: MirrorCopy | None = None
        # The router's middleware chain, for the phases after routing; None: it has none.
        self.chain: RouterHooks | None = None
        self.status = 0
        self.framing = F_NONE
        self.bytes_in = 0
        self.bytes_out = 0
        self.host = ""
        self.forwarded = b""  # the peer's memoised X-Forwarded-* block for this Host
        self.path = ""

    # -- RequestView (host, path and client_ip are plain attributes)

    @property
    def method(self) -> str:
        return self.method_b.decode("ascii")

    def header_values(self, lower_name: str) -> Sequence[str]:
        values = self.head.get_all(lower_name.encode("latin-1"))
        return [value.decode("latin-1") for value in values]

    # -- StickyRequest (edge/balance/sticky.py): what a sticky pick reads and writes

    def cookie(self, name: bytes) -> bytes | None:
        """The value of cookie `name` in the request's Cookie headers, or None."""
        return cookie_value(self.head.get_all(b"cookie"), name)

    def add_response_line(self, line: bytes) -> None:
        """Add a whole header line (CRLF included) to the client's response head: until
        the backend's head arrives, `response_head` holds the lines the proxy adds."""
        self.response_head += line

    def query_values(self, name: str) -> Sequence[str] | None:
        _, sep, query = self.target.partition(b"?")
        if not sep:
            return None
        return parse_query(query.decode("latin-1")).get(name)


def retryable(ex: Exchange, conn: UpstreamConnection) -> bool:
    """A reused connection that died before any response byte: try once more on a new one
    when nothing of the body went out, or all of it is kept (`replay`: retry, buffering),
    and the method is idempotent or had no body, or the backend said it did not process
    the request (`unprocessed`: an HTTP/2 stream refused, as Go's transport retries it)."""
    if ex.retried or not conn.reused or conn.got_bytes:
        return False
    if ex.body_sent and not (ex.complete and ex.replay is not None and ex.replay.body is not None):
        return False
    return conn.unprocessed or ex.method_b in _IDEMPOTENT or not (ex.head.lengths or ex.chunked)


def validate(ex: Exchange) -> None:
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
    elif head.content_length[0] == 0x30:  # leading zeros (llhttp checked the digits)
        head.content_length = b"%d" % int(head.content_length)
        ex.complete = head.content_length == b"0"
    if head.hosts > 1 or (head.hosts == 0 and ex.version == "1.1"):
        raise BadRequest("exactly one Host header is required")
    if head.host not in _VALID_HOSTS:
        _validate_host(head.host)
    if head.expect:
        ex.expect_continue = head.expect.lower() == b"100-continue"
    if head.upgrade:
        ex.upgrade = head.wants_upgrade()
        if ex.upgrade:
            head.note_websocket()
    _validate_target(ex)


def valid_host(host: bytes) -> bool:
    """Whether a Host value holds only bytes a host can (an empty Host is valid, RFC 9112
    §3.2); the same test as Go's server, so the same 400s as Traefik's."""
    return not host.translate(None, _HOST_OK)


def _validate_host(host: bytes) -> None:
    if not valid_host(host):
        raise BadRequest("malformed Host header")
    if len(_VALID_HOSTS) >= _VALID_HOSTS_LIMIT:
        _VALID_HOSTS.clear()
    _VALID_HOSTS.add(host)


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
