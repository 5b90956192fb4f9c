"""`grpcWeb`: gRPC-Web requests from browsers as gRPC to the backend, and the answer back.

As Traefik's middleware (its fork of improbable-eng/grpc-web, `WrapHandler`, with CORS
for every path and `allowOrigins` as the origin check: `*` or an exact match):

- a POST whose Content-Type starts with `application/grpc-web` goes to the backend with
  `application/grpc` in its place (`application/grpc-web+proto` → `application/grpc+proto`);
  `application/grpc-web-text` bodies are base64, decoded as they arrive (`Base64Body`,
  sent on chunked, the decoded length being unknown). The backend must speak gRPC
  (`h2c://` or HTTPS with HTTP/2); the HTTP/2 upstream adds `te: trailers` for gRPC.
- the response: `application/grpc` in Content-Type becomes the request's gRPC-Web type,
  `Trailer` is dropped (hop-by-hop, as always), `Access-Control-Expose-Headers` lists the
  response's header names (Go's canonical form) and `grpc-status, grpc-message`; the
  body passes (text: each piece base64-encoded and padded on its own, as Traefik flushes
  each write), then a trailer
  frame (flag 0x80, a 4-byte length, the trailers as `name: value\\r\\n` lines, names in
  lower case, sorted) ends it. A trailers-only answer (the status in the head) gets an
  empty trailer frame, as Traefik 3.7 writes it.
- CORS (rs/cors with credentials, every request header allowed, max age 600 s): a
  gRPC-Web response gets `Vary: Origin` and, for an allowed Origin, that origin in
  Access-Control-Allow-Origin with Allow-Credentials; a preflight (OPTIONS with
  Access-Control-Request-Method and `x-grpc-web` among Access-Control-Request-Headers)
  is answered 200 here, never reaching the backend.

Any other request passes untouched; the step costs those two byte tests.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING

from proxynow.edge.core.flow import UPSTREAM_PENDING
from proxynow.edge.http.middlewares.base import BuildContext, Reply, Step
from proxynow.edge.http.middlewares.forward_auth import canonical

if TYPE_CHECKING:
    from collections.abc import Callable

    from proxynow.config.middlewares import Middleware
    from proxynow.edge.core.flow import ReadGate
    from proxynow.edge.http.exchange import Exchange
    from proxynow.edge.message.headers import ResponseHead
    from proxynow.edge.upstream.connection import UpstreamConnection

__all__ = ["Base64Body", "build", "trailer_frame", "unchunked"]

_WEB = b"application/grpc-web"
_TEXT = b"application/grpc-web-text"
_GRPC = b"application/grpc"
# rs/cors: the methods allowed by default, and what the wrapper sets.
_METHODS = frozenset((b"GET", b"POST", b"HEAD"))
_MAX_AGE = b"600"
_PREFLIGHT_VARY = (
    (b"Vary", b"Origin"),
    (b"Vary", b"Access-Control-Request-Method"),
    (b"Vary", b"Access-Control-Request-Headers"),
)
_STATUS_NAMES = b"grpc-status, grpc-message"
_LAST_CHUNK = b"0\r\n\r\n"


def build(middleware: Middleware, context: BuildContext) -> Step:
    """The `grpcWeb` builder (registry.py)."""
    options = middleware.grpc_web
    assert options is not None
    origins = frozenset(origin.encode("latin-1") for origin in options.allow_origins)
    any_origin = b"*" in origins
    # id(exchange) → (text format, the CORS headers of its answer), until its outcome.
    converted: dict[int, tuple[bool, tuple[tuple[bytes, bytes], ...]]] = {}

    def allowed(origin: bytes | None) -> bool:
        return bool(origin) and (any_origin or origin in origins)

    def request(exchange: Exchange) -> Reply | None:
        method = exchange.method_b
        head = exchange.head
        if method == b"POST":
            kind = head.get(b"content-type")
            if kind is None or not kind.startswith(_WEB):
                return None
            origin = head.get(b"origin")
            cors = _cors(origin) if origin is not None and allowed(origin) else ()
            converted[id(exchange)] = (_convert(exchange, kind), cors)
            return None
        if method == b"OPTIONS":
            asked = head.get(b"access-control-request-headers")
            if asked is not None and b"x-grpc-web" in asked.lower():
                return _preflight(exchange, asked, allowed)
        return None

    def response_head(exchange: Exchange, status: int, head: ResponseHead) -> None:
        found = converted.get(id(exchange))
        if found is None:
            return
        text, cors = found
        _web_head(head, _TEXT if text else _WEB, cors)
        exchange.transform = _encoder(exchange, text)

    def outcome(exchange: Exchange, now: float) -> None:
        converted.pop(id(exchange), None)
        sink = exchange.sink
        if sink is _DROP or isinstance(sink, Base64Body):
            exchange.sink = None

    return Step("grpcWeb", request=request, response_head=response_head, outcome=outcome)


def _cors(origin: bytes) -> tuple[tuple[bytes, bytes], ...]:
    return (
        (b"Access-Control-Allow-Origin", origin),
        (b"Access-Control-Allow-Credentials", b"true"),
    )


def _convert(exchange: Exchange, kind: bytes) -> bool:
    """Make the request a gRPC one; True for the text format (its body decoded here)."""
    head = exchange.head
    text = kind.startswith(_TEXT)
    head.set(b"Content-Type", kind.replace(_TEXT if text else _WEB, _GRPC, 1))
    held = exchange.pending  # read while an earlier step waited (forwardAuth)
    if text and (not exchange.complete or held):
        # The decoded body's length is unknown: it goes on chunked, as Traefik's does.
        framed = exchange.chunked
        head.lengths = 0
        head.content_length = b""
        exchange.chunked = True
        exchange.pending = None
        sink = exchange.sink = Base64Body(exchange, exchange.reader)
        for data in held or ():
            sink.add(unchunked(data) if framed else data)
        if exchange.complete:
            sink.done()
    return text


def unchunked(data: bytes) -> bytes:
    """The data of pieces a front end framed as chunks (whole chunks, `%x\\r\\n...\\r\\n`;
    the last chunk: nothing)."""
    out = b""
    while data:
        size, _, rest = data.partition(b"\r\n")
        length = int(size, 16)
        out, data = out + rest[:length], rest[length + 2 :]
        if not length:
            break
    return out


def _preflight(
    exchange: Exchange, asked: bytes, allowed: Callable[[bytes | None], bool]
) -> Reply | None:
    """rs/cors's answer to a preflight (None: not one, it goes on as it is)."""
    head = exchange.head
    method = head.get(b"access-control-request-method")
    if not method:
        return None
    origin = head.get(b"origin")
    method = method.upper()
    if not allowed(origin) or (method not in _METHODS and method != b"OPTIONS"):
        return Reply(200, _PREFLIGHT_VARY)
    assert origin is not None
    names = b", ".join(canonical(name.strip()) for name in asked.split(b",") if name.strip())
    headers = (
        *_PREFLIGHT_VARY,
        (b"Access-Control-Allow-Origin", origin),
        (b"Access-Control-Allow-Methods", method),
        (b"Access-Control-Allow-Headers", names),
        (b"Access-Control-Allow-Credentials", b"true"),
        (b"Access-Control-Max-Age", _MAX_AGE),
    )
    return Reply(200, headers)


def _web_head(head: ResponseHead, kind: bytes, cors: tuple[tuple[bytes, bytes], ...]) -> None:
    """The backend's gRPC head as a gRPC-Web one (see the module docstring)."""
    for value in head.get_all(b"content-type"):
        head.set(b"Content-Type", value.replace(_GRPC, kind, 1))
        break
    head.append(b"Vary", b"Origin")
    for name, value in cors:
        head.set(name, value)
    names: list[bytes] = []
    for name, _ in head.items():
        shown = canonical(name)
        if shown not in names and shown not in _FRAMING:
            names.append(shown)
    names.append(_STATUS_NAMES)
    head.set(b"Access-Control-Expose-Headers", b", ".join(names))


# What `ResponseHead.items` shows that Go keeps out of the header map it lists.
_FRAMING = frozenset((b"Content-Length", b"Transfer-Encoding", b"Connection", b"Upgrade"))


def trailer_frame(trailers: tuple[tuple[bytes, bytes], ...]) -> bytes:
    """The gRPC-Web trailer frame: 0x80, the block's length, the block (Go's
    `http.Header.Write` of the lower-cased names: sorted, a line per value)."""
    lines = sorted((name.lower(), value) for name, value in trailers)
    block = b"".join(b"%b: %b\r\n" % (name, _one_line(value)) for name, value in lines)
    return b"\x80" + len(block).to_bytes(4, "big") + block


def _one_line(value: bytes) -> bytes:
    """A value as Go writes it in a header block: CR and LF as spaces."""
    return value.replace(b"\r", b" ").replace(b"\n", b" ")


def _encoder(exchange: Exchange, text: bool) -> Callable[[bytes, bool], bytes]:
    """The response body transform (`Exchange.transform`): the pieces as they are (text:
    each base64-encoded), then the trailer frame of the backend's trailers at the end."""

    def binary(data: bytes, end: bool) -> bytes:
        if not end:
            return data
        return data + trailer_frame(_trailers(exchange))

    def encoded(data: bytes, end: bool) -> bytes:
        out = base64.b64encode(data) if data else b""
        if end:
            out += base64.b64encode(trailer_frame(_trailers(exchange)))
        return out

    return encoded if text else binary


def _trailers(exchange: Exchange) -> tuple[tuple[bytes, bytes], ...]:
    conn = exchange.upstream
    return conn.trailers if conn is not None else ()


class Base64Body:
    """A gRPC-Web text request body (base64) decoded as it arrives and sent on chunked:
    the exchange's `sink` (the HTTP/1 front end hands it each piece, the HTTP/2 one each
    DATA frame). At most three bytes of a quantum wait for the next piece; invalid base64
    ends the body there (`_refuse`)."""

    __slots__ = ("exchange", "gate", "paused", "rest")

    def __init__(self, exchange: Exchange, gate: ReadGate | None) -> None:
        self.exchange = exchange
        self.gate = gate  # HTTP/1: blocked while the head waits for a connection
        self.paused = False
        self.rest = b""

    def add(self, data: bytes) -> None:
        if self.exchange.sink is not self:
            return
        data = self.rest + data.replace(b"\r", b"").replace(b"\n", b"")
        cut = len(data) - len(data) % 4
        self.rest = data[cut:]
        if cut:
            self._decoded(data[:cut])

    def done(self) -> None:
        if self.exchange.sink is not self:
            return
        if self.rest:
            self._decoded(self.rest)  # a quantum cut short: refused
            if self.exchange.sink is not self:
                return
        self._send(_LAST_CHUNK)
        self.exchange.sink = _DROP  # the end is sent: nothing more goes to the backend

    def pump(self, conn: UpstreamConnection) -> None:
        """Nothing: what waited for the connection left with the head."""

    def close(self) -> None:
        if self.exchange.sink is self:
            self.exchange.sink = None

    def _decoded(self, data: bytes) -> None:
        try:
            decoded = binascii.a2b_base64(data, strict_mode=True)
        except binascii.Error:
            self._refuse()
            return
        if decoded:
            self._send(b"%x\r\n%b\r\n" % (len(decoded), decoded))

    def _refuse(self) -> None:
        """Invalid base64: the body ends where it starts (the backend answers what it got,
        a truncated message an error status); the rest of the client's is dropped."""
        self._send(_LAST_CHUNK)
        self.exchange.sink = _DROP

    def _send(self, data: bytes) -> None:
        exchange = self.exchange
        conn = exchange.upstream
        if conn is not None and exchange.pending is None:
            conn.write(data)
            exchange.body_sent = True
            return
        if exchange.pending is None:
            exchange.pending = []
        exchange.pending.append(data)
        if self.gate is not None:
            self.gate.block(UPSTREAM_PENDING)


class _Dropped:
    """The sink of a text body whose end was sent: what the client still sends is
    dropped (it is read off, as any body after an early end)."""

    paused = False

    def add(self, data: bytes) -> None:
        """Dropped."""

    def done(self) -> None:
        """Nothing more to send."""

    def pump(self, conn: UpstreamConnection) -> None:
        """Nothing to send."""

    def close(self) -> None:
        """Nothing held."""


_DROP = _Dropped()
