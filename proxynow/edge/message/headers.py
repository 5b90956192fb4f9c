"""Pure header rewriting for the HTTP/1.1 proxy: hop-by-hop removal and X-Forwarded-*.

`RequestHead` accumulates a client request's headers as the parser delivers them: ordinary
headers go straight into the outgoing byte list, the few that matter (Host, framing,
Connection, Upgrade, Expect, the X-Forwarded family) are set aside. `upstream_head` then
builds the request head sent to the backend in one join, with the X-Forwarded-* block
from `forwarded_headers` (which the protocol memoises per peer and Host). `ResponseHead`
does the same for a backend's response. No sockets, clocks or awaits here (the pure core
of the data plane).

Both heads also offer the header API middlewares and other front ends use (`get`, `get_all`,
`set`, `append`, `remove`, `items`; names in any case, values as bytes), so that nothing
outside this module reads the wire list (`lines`: name, b": ", value, CRLF per header). The
API reads and writes the same fields the parser fills, so a mutation shows in the bytes sent
on: Host is `host`, the forwarded headers the proxy manages are their fields (and mark the
head `forwarded`, so that the per-peer X-Forwarded-* block is rebuilt for it), framing and
hop-by-hop headers can be read but not changed (the proxy decides them: `HeaderError`).
`add` stays the parser's intake (it applies the entrypoint's rules: forwarded headers from an
untrusted client are dropped), hence `append` for a middleware's addition. A request nobody
touches pays nothing for the API.

Forwarded headers follow Traefik's entrypoint behaviour (pkg/middlewares/forwardedheaders):
from an untrusted peer every managed X-Forwarded-* / X-Real-Ip header is dropped; then
X-Forwarded-For gets the peer appended, Proto / Host / Port / X-Real-Ip are set when
absent, X-Forwarded-Server is always our hostname. Hop-by-hop headers (RFC 9110 §7.6.1)
and those named in Connection are removed; Upgrade survives when the client asked for it.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Final

from mypy_extensions import mypyc_attr

from proxynow.edge.core.metrics import P_GRPC, P_GRPC_WEB, P_SSE, P_WEBSOCKET, PROTOCOL_MASK

__all__ = [
    "REQUEST_MEMO",
    "RESPONSE_MEMO",
    "ForwardContext",
    "HeaderError",
    "KindMemo",
    "RequestHead",
    "ResponseHead",
    "filter_connection_named",
    "forwarded_headers",
    "line_header",
    "upstream_head",
]

# Kinds of request header worth a look; anything absent is copied through untouched.
K_HOST = 1
K_LENGTH = 2
K_TE = 3
K_CONNECTION = 4
K_UPGRADE = 5
K_EXPECT = 6
K_HOP = 7
K_XFF = 8
K_XF_PROTO = 9
K_XF_HOST = 10
K_XF_PORT = 11
K_XF_OTHER = 12
K_REAL_IP = 13
K_XF_SERVER = 14

_MANAGED = {
    b"x-forwarded-for": K_XFF,
    b"x-forwarded-proto": K_XF_PROTO,
    b"x-forwarded-host": K_XF_HOST,
    b"x-forwarded-port": K_XF_PORT,
    b"x-forwarded-server": K_XF_SERVER,
    b"x-real-ip": K_REAL_IP,
    b"x-forwarded-scheme": K_XF_OTHER,
    b"x-forwarded-uri": K_XF_OTHER,
    b"x-forwarded-method": K_XF_OTHER,
    b"x-forwarded-prefix": K_XF_OTHER,
    b"x-forwarded-tls-client-cert": K_XF_OTHER,
    b"x-forwarded-tls-client-cert-info": K_XF_OTHER,
    b"x-scheme": K_XF_OTHER,
}
_HOP = (b"keep-alive", b"proxy-connection", b"proxy-authenticate", b"proxy-authorization")
_HOP_ALL = (*_HOP, b"te", b"trailer")

REQUEST_KINDS: dict[bytes, int] = {
    b"host": K_HOST,
    b"content-length": K_LENGTH,
    b"transfer-encoding": K_TE,
    b"connection": K_CONNECTION,
    b"upgrade": K_UPGRADE,
    b"expect": K_EXPECT,
    **dict.fromkeys(_HOP_ALL, K_HOP),
    **_MANAGED,
}
# A name that is a managed one once `_` is read as `-` (X_Forwarded-For, X-Real_Ip): CGI,
# WSGI, PHP and Rack fold both into HTTP_X_FORWARDED_FOR, so from an untrusted client it
# would pose as ours. Dropped from such clients as Traefik drops them; from a trusted one
# it passes as an ordinary header (it never joins the real X-Forwarded-For).
K_XF_FOLDED = 15
_FOLDED = {name: K_XF_FOLDED for name in _MANAGED}
# Headers that only tell the metrics' `protocol` label (Traefik's middlewares/metrics:
# Accept listing text/event-stream is SSE, a Content-Type of application/grpc[-web] gRPC).
# They pass through like any other header.
K_ACCEPT = 16
K_CONTENT_TYPE = 17
REQUEST_KINDS[b"accept"] = K_ACCEPT
REQUEST_KINDS[b"content-type"] = K_CONTENT_TYPE

# Response headers that never travel back to the client as they came.
R_LENGTH = 1
R_TE = 2
R_CONNECTION = 3
R_UPGRADE = 4
R_HOP = 5
RESPONSE_KINDS: dict[bytes, int] = {
    b"content-length": R_LENGTH,
    b"transfer-encoding": R_TE,
    b"connection": R_CONNECTION,
    b"upgrade": R_UPGRADE,
    **dict.fromkeys(_HOP_ALL, R_HOP),
}


class KindMemo:
    """Header name as sent (any case) → its kind in `table` (0: copied through).

    A memo of a pure function, so that the spellings clients and backends actually send
    cost one dict lookup and no `lower()` per header; bounded, names are client-chosen.
    """

    __slots__ = ("folded", "seen", "table")

    LIMIT = 4096

    def __init__(self, table: dict[bytes, int], folded: dict[bytes, int] | None = None) -> None:
        self.table = table
        self.folded = folded or {}  # looked up with `_` read as `-`
        self.seen: dict[bytes, int] = {}

    def learn(self, name: bytes) -> int:
        """The kind of a name not seen yet (the hot path reads `seen` itself)."""
        lower = name.lower()
        kind = self.table.get(lower, 0)
        if not kind and b"_" in lower:
            kind = self.folded.get(lower.replace(b"_", b"-"), 0)
        if len(self.seen) < self.LIMIT:
            self.seen[name] = kind
        return kind


REQUEST_MEMO = KindMemo(REQUEST_KINDS, _FOLDED)
RESPONSE_MEMO = KindMemo(RESPONSE_KINDS)

# Connection options that are not header names (RFC 9110 §7.6.1).
_CONNECTION_OPTIONS = frozenset((b"close", b"keep-alive", b"upgrade", b""))
_MANAGED_NAMES = frozenset(_MANAGED)


# ---------------------------------------------------------------- the header API's pieces


class HeaderError(ValueError):
    """A header the API refuses to write: an invalid name or value, or one the proxy owns."""


# RFC 9110 §5.6.2 token characters (a field name); a value holds no CR, LF or NUL (§5.5),
# so that no write through the API can add a line or end the head.
_TCHAR: Final = frozenset(
    b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)


# Names and short values that passed `_checked`: middlewares write the same few names, and
# mostly values of their configuration, on every request; a set test is much cheaper than
# the scans. Bounded (both can come from a request: a header copied by forwardAuth), and
# values longer than `_GOOD_VALUE_MAX` are never kept (the memory stays under 4096 * 128 bytes).
_GOOD_NAMES: Final[set[bytes]] = set()
_GOOD_VALUES: Final[set[bytes]] = set()
_GOOD_NAMES_LIMIT: Final = 4096
_GOOD_VALUE_MAX: Final = 128


def _checked(name: bytes, value: bytes) -> None:
    if name not in _GOOD_NAMES:
        if not name or not _TCHAR.issuperset(name):
            raise HeaderError(f"invalid header name {name!r}")
        if len(_GOOD_NAMES) < _GOOD_NAMES_LIMIT:
            _GOOD_NAMES.add(name)
    if value in _GOOD_VALUES:
        return
    # `find`, not `in`: CPython 3.11's `bytes in bytes` first tries the needle as an int and
    # formats the TypeError it clears (about 2,000 instructions each).
    if value.find(b"\r") >= 0 or value.find(b"\n") >= 0 or value.find(b"\x00") >= 0:
        raise HeaderError(f"invalid value for header {name!r}")
    if len(value) <= _GOOD_VALUE_MAX and len(_GOOD_VALUES) < _GOOD_NAMES_LIMIT:
        _GOOD_VALUES.add(value)


def _line_values(lines: list[bytes], lower: bytes) -> list[bytes]:
    """The values of the header lines named `lower` (the one walk of the wire list)."""
    size = len(lower)  # compared first: a native test, where `lower()` is a call
    return [
        lines[i + 2]
        for i in range(0, len(lines), 4)
        if len(lines[i]) == size and lines[i].lower() == lower
    ]


def _line_value(lines: list[bytes], lower: bytes) -> bytes | None:
    """The first value of the lines named `lower`: `get`, which stops at the first."""
    size = len(lower)
    for i in range(0, len(lines), 4):
        name = lines[i]
        if len(name) == size and name.lower() == lower:
            return lines[i + 2]
    return None


def _line_pairs(lines: list[bytes]) -> list[tuple[bytes, bytes]]:
    return [(lines[i], lines[i + 2]) for i in range(0, len(lines), 4)]


def _remove_lines(lines: list[bytes], lower: bytes) -> None:
    """Drop the lines named `lower`, in place (the head's list is its own)."""
    kept: list[bytes] = []
    for i in range(0, len(lines), 4):
        if lines[i].lower() != lower:
            kept += lines[i : i + 4]
    lines[:] = kept


def _set_line(lines: list[bytes], name: bytes, value: bytes) -> None:
    """One line `name: value` in place of every line of that name: at the first one's
    position (so the order others see stays), else at the end."""
    lower = name.lower()
    size = len(lower)  # compared first: a native test, where `lower()` is a call
    for i in range(0, len(lines), 4):
        line = lines[i]
        if len(line) == size and line.lower() == lower:
            _remove_lines(lines, lower)
            lines[i:i] = (name, b": ", value, b"\r\n")
            return
    lines += (name, b": ", value, b"\r\n")


def line_header(name: bytes, value: bytes, response: bool = False) -> bool:
    """Whether the `*_line` methods of a request head (a response's: `response`) may read
    and write `name: value`: both valid, and a header kept as a line only (no field of the
    head to keep in step)."""
    try:
        _checked(name, value)
    except HeaderError:
        return False
    if response:
        return not _response_kind(name)
    kind = _request_kind(name)
    return kind in _LINE_KINDS and kind not in _FIELD_KINDS


def _owned(name: bytes) -> HeaderError:
    return HeaderError(f"{name.decode('latin-1')} is managed by the proxy and cannot be changed")


# Request header kinds whose values live only in `lines` (through the API as through the
# parser); K_XF_OTHER from a client also marks the head `forwarded` (the parser does).
_LINE_KINDS: Final = frozenset((0, K_ACCEPT, K_CONTENT_TYPE, K_XF_FOLDED, K_XF_OTHER))
# Managed forwarded headers kept in `lines` and in a field `forwarded_headers` reads.
_FIELD_KINDS: Final = {K_XF_PROTO: "xf_proto", K_XF_HOST: "xf_host", K_XF_PORT: "xf_port"}
_FIELD_KINDS[K_REAL_IP] = "real_ip"
# Names shown by `items()` for what the parser keeps in fields (Content-Length aside).
_SHOWN_REQUEST = (
    (b"Transfer-Encoding", K_TE),
    (b"Connection", K_CONNECTION),
    (b"Upgrade", K_UPGRADE),
    (b"Expect", K_EXPECT),
)
_SHOWN_RESPONSE = (
    (b"Content-Length", R_LENGTH),
    (b"Transfer-Encoding", R_TE),
    (b"Connection", R_CONNECTION),
    (b"Upgrade", R_UPGRADE),
)


def _request_kind(name: bytes) -> int:
    kind = REQUEST_MEMO.seen.get(name)
    return REQUEST_MEMO.learn(name) if kind is None else kind


def _response_kind(name: bytes) -> int:
    kind = RESPONSE_MEMO.seen.get(name)
    return RESPONSE_MEMO.learn(name) if kind is None else kind


@mypyc_attr(native_class=False)  # mypyc compiles no slots dataclass (docs/compiled.md)
@dataclass(frozen=True, slots=True)
class ForwardContext:
    """What a client connection contributes to forwarded headers (built once per connection)."""

    client_ip: bytes
    trusted: bool
    tls: bool
    server_name: bytes = socket.gethostname().encode("ascii", "replace")


class RequestHead:
    """A client request's headers, sorted into pass-through lines and the ones we act on."""

    __slots__ = (
        "bits",
        "connection",
        "content_length",
        "count",
        "expect",
        "forwarded",
        "host",
        "hosts",
        "lengths",
        "lines",
        "real_ip",
        "size",
        "te",
        "trusted",
        "upgrade",
        "xf_host",
        "xf_port",
        "xf_proto",
        "xff",
    )

    def __init__(self, trusted: bool, bits: int = 0) -> None:
        self.trusted = trusted
        # The request's labels in a metrics row key (edge/core/metrics.py): the connection's TLS
        # id, then the protocol the headers tell.
        self.bits = bits
        self.lines: list[bytes] = []
        self.count = 0
        self.size = 0
        self.hosts = 0
        self.host = b""
        self.lengths = 0
        self.content_length = b""
        self.te = b""
        self.connection = b""
        self.upgrade = b""
        self.expect = b""
        self.xff: list[bytes] = []
        self.xf_proto = b""
        self.xf_host = b""
        self.xf_port = b""
        self.real_ip = b""
        self.forwarded = False  # a trusted client sent X-Forwarded-* / X-Real-Ip

    def copy(self) -> RequestHead:
        """A shallow copy (the lists shared), for a mirror's request. Written out: a class
        compiled by mypyc has no `__slots__` or `__reduce__` that `copy.copy` could use."""
        other = RequestHead(self.trusted, self.bits)
        other.lines, other.count, other.size = self.lines, self.count, self.size
        other.hosts, other.host = self.hosts, self.host
        other.lengths, other.content_length = self.lengths, self.content_length
        other.te, other.connection = self.te, self.connection
        other.upgrade, other.expect = self.upgrade, self.expect
        other.xff, other.xf_proto, other.xf_host = self.xff, self.xf_proto, self.xf_host
        other.xf_port, other.real_ip = self.xf_port, self.real_ip
        other.forwarded = self.forwarded
        return other

    def add(self, name: bytes, value: bytes) -> None:
        """Take one header as the parser delivers it."""
        self.count += 1
        self.size += len(name) + len(value) + 4
        kind = REQUEST_MEMO.seen.get(name)
        if kind is None:
            kind = REQUEST_MEMO.learn(name)
        if not kind:
            self.lines += (name, b": ", value, b"\r\n")
        else:
            self.add_special(kind, name, value)

    def add_special(self, kind: int, name: bytes, value: bytes) -> None:
        """Take a header `REQUEST_KINDS` knows (called directly by the protocol's fast path)."""
        if kind <= K_HOP:
            self._add_framing(kind, value)
        elif kind >= K_ACCEPT:
            self._add_hint(kind, name, value)
        elif self.trusted:
            self._add_forwarded(kind, name, value)

    def _add_hint(self, kind: int, name: bytes, value: bytes) -> None:
        self.lines += (name, b": ", value, b"\r\n")
        if kind == K_ACCEPT:
            if _event_stream(value):
                self.bits = self.bits & ~PROTOCOL_MASK | P_SSE
        elif not self.bits & PROTOCOL_MASK and value.startswith(b"application/grpc"):
            grpc_web = value.startswith(b"application/grpc-web")
            self.bits |= P_GRPC_WEB if grpc_web else P_GRPC

    def note_websocket(self) -> None:
        """An upgrade to websocket: the protocol label that wins over the others."""
        tokens = [token.strip().lower() for token in self.upgrade.split(b",")]
        if b"websocket" in tokens:
            self.bits = self.bits & ~PROTOCOL_MASK | P_WEBSOCKET

    def _add_framing(self, kind: int, value: bytes) -> None:
        if kind == K_HOST:
            self.hosts += 1
            self.host = value
        elif kind == K_LENGTH:
            if self.lengths and value != self.content_length:
                self.lengths = -1  # differing duplicates: ambiguous, rejected by the caller
            elif self.lengths >= 0:
                self.lengths += 1
                self.content_length = value
        elif kind == K_TE:
            self.te = value if not self.te else self.te + b", " + value
        elif kind == K_CONNECTION:
            self.connection = value if not self.connection else self.connection + b"," + value
        elif kind == K_UPGRADE:
            self.upgrade = value
        elif kind == K_EXPECT:
            self.expect = value

    def _add_forwarded(self, kind: int, name: bytes, value: bytes) -> None:
        if kind == K_XF_FOLDED:
            self.lines += (name, b": ", value, b"\r\n")
            return
        self.forwarded = True
        if kind == K_XFF:
            self.xff.append(value)
            return
        if kind == K_XF_SERVER:
            return  # always replaced by ours
        if kind == K_XF_PROTO:
            self.xf_proto = value
        elif kind == K_XF_HOST:
            self.xf_host = value
        elif kind == K_XF_PORT:
            self.xf_port = value
        elif kind == K_REAL_IP:
            self.real_ip = value
        self.lines += (name, b": ", value, b"\r\n")

    def connection_tokens(self) -> list[bytes]:
        """The lowercased options listed in Connection."""
        return [token.strip().lower() for token in self.connection.split(b",")]

    def wants_upgrade(self) -> bool:
        return bool(self.upgrade) and b"upgrade" in self.connection_tokens()

    # -- the header API (see the module docstring); `count` and `size` stay the client's

    def get(self, name: bytes) -> bytes | None:
        """The first value of header `name` (any case), or None."""
        kind = _request_kind(name)
        if kind in _LINE_KINDS or kind in _FIELD_KINDS:
            return _line_value(self.lines, name.lower())
        values = self.get_all(name)
        return values[0] if values else None

    def get_all(self, name: bytes) -> list[bytes]:
        """Every value of header `name`, in order: as it will be forwarded (a forwarded
        header an untrusted client sent was dropped; X-Forwarded-For lists the values
        before the peer's address, which is appended when the head is sent)."""
        kind = _request_kind(name)
        if kind in _LINE_KINDS or kind in _FIELD_KINDS:
            return _line_values(self.lines, name.lower())
        if kind == K_HOST:
            return [self.host] if self.hosts else []
        if kind == K_XFF:
            return list(self.xff)
        if kind == K_LENGTH:
            return [self.content_length] if self.lengths > 0 else []
        value = self._framing(kind)
        return [value] if value else []

    def set(self, name: bytes, value: bytes) -> None:
        """Replace every value of `name` by `value` (added when absent)."""
        _checked(name, value)
        kind = _request_kind(name)
        if kind in _LINE_KINDS or kind in _FIELD_KINDS:
            _set_line(self.lines, name, value)
            self._wrote(kind, value)
        elif kind == K_HOST:
            self.host, self.hosts = value, 1
        elif kind == K_XFF:
            self.xff = [value]
            self.forwarded = True
        else:
            raise _owned(name)

    def append(self, name: bytes, value: bytes) -> None:
        """Add one more value of `name` after the others (`add` is the parser's intake)."""
        _checked(name, value)
        kind = _request_kind(name)
        if kind in _LINE_KINDS or kind in _FIELD_KINDS:
            self.lines += (name, b": ", value, b"\r\n")
            self._wrote(kind, value)
        elif kind == K_HOST and not self.hosts:
            self.host, self.hosts = value, 1
        elif kind == K_HOST:
            raise HeaderError("a request has one Host header: use set")
        elif kind == K_XFF:
            self.xff.append(value)
            self.forwarded = True
        else:
            raise _owned(name)

    def get_line(self, lower: bytes) -> bytes | None:
        """`get` of a header kept as a line only (`line_header`), named in lower case."""
        return _line_value(self.lines, lower)

    def set_line(self, name: bytes, value: bytes) -> None:
        """`set` of a header checked when the graph was built (`line_header`)."""
        _set_line(self.lines, name, value)

    def append_line(self, name: bytes, value: bytes) -> None:
        """`append` of a header checked when the graph was built (`line_header`): the
        checks and the kind lookup are not made again on every request."""
        self.lines += (name, b": ", value, b"\r\n")

    def remove(self, name: bytes) -> None:
        """Drop every value of `name`. A managed forwarded header removed gets the proxy's
        own value when the head is sent, as one the client never sent would."""
        kind = _request_kind(name)
        if kind in _LINE_KINDS or kind in _FIELD_KINDS:
            _remove_lines(self.lines, name.lower())
            self._wrote(kind, b"")
        elif kind == K_HOST:
            self.host, self.hosts = b"", 0
        elif kind == K_XFF:
            self.xff = []
            self.forwarded = True
        else:
            raise _owned(name)

    def items(self) -> list[tuple[bytes, bytes]]:
        """Every (name, value) pair `get_all` answers for: Host, the kept lines in order,
        the client's X-Forwarded-For values, then framing and upgrade headers."""
        pairs = [(b"Host", self.host)] if self.hosts else []
        pairs += _line_pairs(self.lines)
        pairs += [(b"X-Forwarded-For", value) for value in self.xff]
        if self.lengths > 0:
            pairs.append((b"Content-Length", self.content_length))
        for shown, kind in _SHOWN_REQUEST:
            value = self._framing(kind)
            if value:
                pairs.append((shown, value))
        return pairs

    def _framing(self, kind: int) -> bytes:
        if kind == K_TE:
            return self.te
        if kind == K_CONNECTION:
            return self.connection
        if kind == K_UPGRADE:
            return self.upgrade
        if kind == K_EXPECT:
            return self.expect
        return b""  # hop-by-hop and X-Forwarded-Server: never forwarded as they came

    def _wrote(self, kind: int, value: bytes) -> None:
        """Keep the fields `forwarded_headers` reads in step with a line written."""
        field = _FIELD_KINDS.get(kind)
        if field is not None:
            setattr(self, field, value)  # the last value, as the parser keeps it
            # The per-peer memo of the forwarded block no longer fits this head. The other
            # X-Forwarded-* (X-Forwarded-Prefix from stripPrefix...) are not in that block.
            self.forwarded = True


# Accept values as sent → whether they list text/event-stream: clients repeat theirs, so a
# request pays one lookup; bounded, the values are client-chosen.
_EVENT_STREAM: dict[bytes, bool] = {}
_EVENT_STREAM_LIMIT = 1024


def _event_stream(accept: bytes) -> bool:
    known = _EVENT_STREAM.get(accept)
    if known is None:
        items = accept.lower().split(b",")
        known = any(item.strip() == b"text/event-stream" for item in items)
        if len(_EVENT_STREAM) >= _EVENT_STREAM_LIMIT:
            _EVENT_STREAM.clear()
        _EVENT_STREAM[accept] = known
    return known


def filter_connection_named(lines: list[bytes], tokens: list[bytes]) -> list[bytes]:
    """Drop the lines of headers named in Connection (rare, so done in a second pass).

    Traefik never lets Connection remove the X-Forwarded headers it manages.
    """
    names = {t for t in tokens if t not in _CONNECTION_OPTIONS and t not in _MANAGED_NAMES}
    if not names:
        return lines
    kept: list[bytes] = []
    for i in range(0, len(lines), 4):
        if lines[i].lower() not in names:
            kept += lines[i : i + 4]
    return kept


def _forwarded_port(head: RequestHead, proto: bytes) -> bytes:
    host = head.host
    colon = host.rfind(b":")
    if colon > host.rfind(b"]"):
        port = host[colon + 1 :]
        if port:
            return port
    return b"443" if proto in (b"https", b"wss") else b"80"


def upstream_head(
    head: RequestHead, start_line: bytes, host: bytes, forwarded: bytes, framing: bytes
) -> bytes:
    """The request head sent to the backend: start line, kept headers, the block from
    `forwarded_headers`, framing."""
    lines = head.lines
    if head.connection:
        lines = filter_connection_named(lines, head.connection_tokens())
    return b"".join((start_line, b"Host: ", host, b"\r\n", *lines, forwarded, framing, b"\r\n"))


def forwarded_headers(head: RequestHead, ctx: ForwardContext, upgrade: bool) -> bytes:
    """X-Forwarded-*, X-Real-Ip (and the Upgrade pair) for the backend.

    Without `head.forwarded` and `upgrade` the result depends only on `ctx` and
    `head.host`, so a connection may reuse it for its next request with the same Host.
    """
    xff = b", ".join([*head.xff, ctx.client_ip]) if head.xff else ctx.client_ip
    proto = head.xf_proto
    parts = [b"X-Forwarded-For: ", xff, b"\r\n"]
    if not proto:
        if upgrade and head.upgrade.lower() == b"websocket":
            proto = b"wss" if ctx.tls else b"ws"
        else:
            proto = b"https" if ctx.tls else b"http"
        parts += (b"X-Forwarded-Proto: ", proto, b"\r\n")
    if not head.xf_host and head.host:
        parts += (b"X-Forwarded-Host: ", head.host, b"\r\n")
    if not head.xf_port:
        parts += (b"X-Forwarded-Port: ", _forwarded_port(head, proto), b"\r\n")
    parts += (b"X-Forwarded-Server: ", ctx.server_name, b"\r\n")
    if not head.real_ip:
        parts += (b"X-Real-Ip: ", ctx.client_ip, b"\r\n")
    if upgrade:
        parts += (b"Connection: Upgrade\r\nUpgrade: ", head.upgrade, b"\r\n")
    return b"".join(parts)


class ResponseHead:
    """A backend response's headers: kept lines plus what decides framing and reuse."""

    __slots__ = ("connection", "content_length", "lines", "te", "upgrade")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the previous response (the object is reused per connection)."""
        self.lines: list[bytes] = []
        self.content_length = b""
        self.te = b""
        self.connection = b""
        self.upgrade = b""

    def add(self, name: bytes, value: bytes) -> None:
        kind = RESPONSE_MEMO.seen.get(name)
        if kind is None:
            kind = RESPONSE_MEMO.learn(name)
        if not kind:
            self.lines += (name, b": ", value, b"\r\n")
        elif kind == R_LENGTH:
            # Forwarded as a plain number (`005` -> `5`), as Go writes it.
            self.content_length = value if value[:1] != b"0" or value == b"0" else _digits(value)
        elif kind == R_TE:
            self.te = value
        elif kind == R_CONNECTION:
            # Only options that name other headers need a second pass (kept_lines).
            if value.lower() not in _CONNECTION_OPTIONS:
                self.connection = value if not self.connection else self.connection + b"," + value
        elif kind == R_UPGRADE:
            self.upgrade = value

    # -- the header API (see the module docstring): framing and hop-by-hop are read-only

    def get(self, name: bytes) -> bytes | None:
        """The first value of header `name` (any case), or None."""
        kind = _response_kind(name)
        if not kind:
            return _line_value(self.lines, name.lower())
        return self._framing(kind) or None

    def get_all(self, name: bytes) -> list[bytes]:
        """Every value of header `name`, in order (Connection: the options naming other
        headers only, the ones that make a second pass necessary)."""
        kind = _response_kind(name)
        if not kind:
            return _line_values(self.lines, name.lower())
        value = self._framing(kind)
        return [value] if value else []

    def set(self, name: bytes, value: bytes) -> None:
        """Replace every value of `name` by `value` (added when absent)."""
        _checked(name, value)
        if _response_kind(name):
            raise _owned(name)
        _set_line(self.lines, name, value)

    def append(self, name: bytes, value: bytes) -> None:
        """Add one more value of `name` after the others (`add` is the parser's intake)."""
        _checked(name, value)
        if _response_kind(name):
            raise _owned(name)
        self.lines += (name, b": ", value, b"\r\n")

    def append_line(self, name: bytes, value: bytes) -> None:
        """`append` of a header checked when the graph was built (`line_header(...,
        response=True)`): the checks are not made again on every response."""
        self.lines += (name, b": ", value, b"\r\n")

    def remove(self, name: bytes) -> None:
        """Drop every value of `name`."""
        if _response_kind(name):
            raise _owned(name)
        _remove_lines(self.lines, name.lower())

    def items(self) -> list[tuple[bytes, bytes]]:
        """Every (name, value) pair `get_all` answers for: the kept lines in order, then
        framing and upgrade headers."""
        pairs = _line_pairs(self.lines)
        for shown, kind in _SHOWN_RESPONSE:
            value = self._framing(kind)
            if value:
                pairs.append((shown, value))
        return pairs

    def _framing(self, kind: int) -> bytes:
        if kind == R_LENGTH:
            return self.content_length
        if kind == R_TE:
            return self.te
        if kind == R_CONNECTION:
            return self.connection
        if kind == R_UPGRADE:
            return self.upgrade
        return b""  # hop-by-hop: never forwarded

    def kept_lines(self) -> list[bytes]:
        if not self.connection:
            return self.lines
        tokens = [t.strip().lower() for t in self.connection.split(b",")]
        return filter_connection_named(self.lines, tokens)


def _digits(value: bytes) -> bytes:
    """A Content-Length value without leading zeros (llhttp has checked the digits)."""
    return b"%d" % int(value) if value.isdigit() else value
