"""A request path as Go's net/url holds it, for the middlewares that rewrite it.

Traefik's path middlewares work on `URL.Path` (decoded) and `URL.RawPath` (the escaped
form, kept only when it differs from Go's own escaping of Path), then set the request URI
to `URL.RequestURI()`, which is what its proxy sends upstream. `GoPath` reproduces those
two fields and Go's escaping rules (net/url `shouldEscape`, `validEncoded`, `EscapedPath`),
so that the backend gets the bytes Traefik sends: `/strip%2Fa` stripped of `/strip` goes
upstream as `/a`, because `/%2Fa` no longer encodes Path.

Before the middlewares, Traefik 3.7's entrypoint normalises the path (RFC 3986 §6.2.2:
percent-encodings of unreserved characters decoded, the others uppercased; dot segments
and repeated slashes removed): `from_target` starts from that form. Everything is bytes;
nothing here allocates unless a middleware rewrites the path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proxynow.edge.http.middlewares.base import Reply
from proxynow.edge.message.headers import HeaderError
from proxynow.rules import routing_path
from proxynow.rules.request import clean_path

if TYPE_CHECKING:
    from proxynow.edge.http.exchange import Exchange

__all__ = [
    "BAD_PATH",
    "LIMIT",
    "GoPath",
    "add_header",
    "escape",
    "from_target",
    "leading_slash",
    "normalized",
    "server_error",
    "set_target",
    "unescape",
]

_HEX = b"0123456789ABCDEF"
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# Bytes Go leaves unescaped in a path (shouldEscape, encodePath).
_PATH_KEEP = _UNRESERVED | frozenset(b"$&+,/:;=@")
# Bytes `validEncoded` accepts unescaped in a RawPath (besides `_PATH_KEEP` and `%`).
_RAW_EXTRA = frozenset(b"!'()*[]%")
_ESCAPES = {b: b"%%%c%c" % (_HEX[b >> 4], _HEX[b & 15]) for b in range(256)}


class GoPath:
    """`URL.Path`, `URL.RawPath` and the query of a request, as Go holds them."""

    __slots__ = ("path", "query", "raw")

    def __init__(self, path: bytes, raw: bytes, query: bytes | None) -> None:
        self.path = path  # decoded
        self.raw = raw  # b"": Go's escaping of `path` is the wire form
        self.query = query  # None: no `?` in the target

    def escaped(self) -> bytes:
        """Go's `URL.EscapedPath`."""
        raw = self.raw
        if raw and _valid_encoded(raw) and unescape(raw) == self.path:
            return raw
        if self.path == b"*":
            return b"*"
        return escape(self.path)

    def request_uri(self) -> bytes:
        """Go's `URL.RequestURI`: what goes upstream."""
        uri = self.escaped() or b"/"
        return uri if self.query is None else uri + b"?" + self.query

    def set_raw(self, raw: bytes) -> bool:
        """Go's `url.setPath`: `raw` becomes the path; False when it is not a valid
        escaping (then nothing changes)."""
        path = unescape(raw)
        if path is None:
            return False
        self.path = path
        self.raw = b"" if escape(path) == raw else raw
        return True


def normalized(raw_path: bytes) -> bytes:
    """The path as Traefik 3.7's entrypoint hands it on: unreserved percent-encodings
    decoded, the others uppercased, dot segments and double slashes removed."""
    if b"%" in raw_path:
        out = bytearray()
        i, n = 0, len(raw_path)
        while i < n:
            byte = raw_path[i]
            pair = raw_path[i + 1 : i + 3]
            if byte != 0x25 or not _hex_pair(pair):
                out.append(byte)
                i += 1
                continue
            value = int(pair, 16)
            out += bytes((value,)) if value in _UNRESERVED else b"%" + pair.upper()
            i += 3
        raw_path = bytes(out)
    if b"//" in raw_path or b"/." in raw_path:
        raw_path = clean_path(raw_path.decode("latin-1")).encode("latin-1")
    return raw_path


def from_target(target: bytes) -> GoPath | None:
    """The request target's path and query as Traefik's middlewares see them: parsed as
    Go parses it, then normalised, the normal form becoming RawPath (so `X-Replaced-Path`
    shows `/a%20b`, not `/a b`); None when the path holds an invalid percent-encoding (Go's
    server answers such a request 400)."""
    raw, sep, query = target.partition(b"?")
    path = unescape(raw)
    if path is None:
        return None
    raw = normalized(GoPath(path, raw, None).escaped())
    path = unescape(raw)
    assert path is not None  # an escaping Go produced, normalised
    return GoPath(path, raw, query if sep else None)


def set_target(exchange: Exchange, go: GoPath) -> None:
    """Send `go` upstream as the request target, and route later steps by it."""
    target = go.request_uri()
    exchange.target = target
    path = target.partition(b"?")[0]
    exchange.path = routing_path(path.decode("utf-8", "surrogateescape"))


def unescape(raw: bytes) -> bytes | None:
    """Go's `unescape(s, encodePath)`: None on a `%` not followed by two hex digits."""
    if b"%" not in raw:
        return raw
    out = bytearray()
    i, n = 0, len(raw)
    while i < n:
        byte = raw[i]
        if byte != 0x25:
            out.append(byte)
            i += 1
            continue
        pair = raw[i + 1 : i + 3]
        if not _hex_pair(pair):
            return None
        out.append(int(pair, 16))
        i += 3
    return bytes(out)


def escape(path: bytes) -> bytes:
    """Go's `escape(s, encodePath)`, hex in upper case."""
    if all(byte in _PATH_KEEP for byte in path):
        return path
    return b"".join(bytes((byte,)) if byte in _PATH_KEEP else _ESCAPES[byte] for byte in path)


def _hex_pair(pair: bytes) -> bool:
    return len(pair) == 2 and pair[0] in _HEX_DIGITS and pair[1] in _HEX_DIGITS


def _valid_encoded(raw: bytes) -> bool:
    return all(byte in _PATH_KEEP or byte in _RAW_EXTRA for byte in raw)


# What Go's server answers for a path it cannot parse, and Traefik's http.Error for a
# rewritten path that does not unescape (or one grown past `LIMIT`).
BAD_PATH = Reply(400, ((b"Content-Type", b"text/plain; charset=utf-8"),), b"400 Bad Request")
# A rewritten path or URL is bounded (a template can repeat a group, an empty match fires
# at every byte): the entrypoint's default limit on a request target.
LIMIT = 64 << 10
_ERROR_HEADERS = (
    (b"Content-Type", b"text/plain; charset=utf-8"),
    (b"X-Content-Type-Options", b"nosniff"),
)


_UNSENDABLE = Reply(500, (), b"Internal Server Error")


def server_error(message: str) -> Reply:
    """Go's http.Error with a 500 (body: the message and a newline)."""
    return Reply(500, _ERROR_HEADERS, message.encode("utf-8", "replace") + b"\n")


def leading_slash(path: bytes) -> bytes:
    """Traefik's ensureLeadingSlash."""
    return path if not path or path[0] == 0x2F else b"/" + path


def add_header(exchange: Exchange, name: bytes, value: bytes) -> Reply | None:
    """Add a request header; a value that no header may hold (a decoded path can carry
    CR or LF) is refused as Go's transport refuses it: Traefik's proxy answers 500."""
    try:
        exchange.head.append(name, value)
    except HeaderError:
        return _UNSENDABLE
    return None
