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
nothing here runs for a router without these middlewares.
"""

from __future__ import annotations

import re
from binascii import a2b_qp
from typing import TYPE_CHECKING, Final
from urllib.parse import unquote_to_bytes

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
    "plain",
    "server_error",
    "set_target",
    "unescape",
]

# The scans below run in C (`re` on fixed patterns, `translate`, binascii):
# a 64 KiB path costs a few milliseconds, not a Python loop over its bytes.
_UNRESERVED = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
# Bytes Go leaves unescaped in a path (shouldEscape, encodePath).
_PATH_KEEP_BYTES: Final = _UNRESERVED + b"$&+,/:;=@"
# What `escape` replaces (str.translate expands each byte in C).
_ESCAPES = {byte: f"%{byte:02X}" for byte in range(256) if byte not in _PATH_KEEP_BYTES}
# Bytes `validEncoded` accepts in a RawPath.
_RAW_OK = _PATH_KEEP_BYTES + b"!'()*[]%"
# The escapes normalisation changes: lower-case hex, or an unreserved byte (0-9, A-Z,
# a-z, - . _ ~); Go's own escaping produces neither, so its output costs one scan.
_ESCAPE = re.compile(
    rb"%(?:[0-9A-Fa-f][a-f]|[a-f][0-9A-F]|3[0-9]|4[1-9A-F]|5[0-9A]|6[1-9A-F]|7[0-9A]"
    rb"|2[DE]|5F|7E)"
)
# Printable ASCII: the bytes of a request target, which quoted-printable decoding (C)
# turns into the same bytes as percent-decoding once `%` reads `=`.
_PRINTABLE = bytes(range(0x21, 0x7F))
# What `normalized` would clean: a double slash or a dot segment's start.
_UNCLEAN: Final = re.compile(rb"//|/\.")
_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
# Each escape → its normal form (RFC 3986 §6.2.2): unreserved decoded, others uppercased.
_NORMAL = {
    b"%" + bytes((a, b)): (
        bytes((int(bytes((a, b)), 16),))
        if int(bytes((a, b)), 16) in _UNRESERVED
        else b"%" + bytes((a, b)).upper()
    )
    for a in b"0123456789abcdefABCDEF"
    for b in b"0123456789abcdefABCDEF"
}


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


def normalized(raw_path: bytes) -> bytes:
    """The path as Traefik 3.7's entrypoint hands it on: unreserved percent-encodings
    decoded, the others uppercased, dot segments and double slashes removed."""
    if b"%" in raw_path:
        raw_path = _ESCAPE.sub(_normal_escape, raw_path)
    if b"//" in raw_path or b"/." in raw_path:
        raw_path = clean_path(raw_path.decode("latin-1")).encode("latin-1")
    return raw_path


def from_target(target: bytes) -> GoPath | None:
    """The request target's path and query as Traefik's middlewares see them: parsed as
    Go parses it, then normalised, the normal form becoming RawPath (so `X-Replaced-Path`
    shows `/a%20b`, not `/a b`); None when the path holds an invalid percent-encoding (Go's
    server answers such a request 400)."""
    raw, sep, query = target.partition(b"?")
    if plain(raw):
        return GoPath(raw, raw, query if sep else None)
    path = unescape(raw)
    if path is None:
        return None
    raw = normalized(GoPath(path, raw, None).escaped())
    path = unescape(raw)
    assert path is not None  # an escaping Go produced, normalised
    return GoPath(path, raw, query if sep else None)


def plain(raw: bytes) -> bool:
    """Whether `raw` is its own decoding, escaping and normal form: no escape, only bytes
    Go leaves as they are, no dot segment or double slash (nearly every request)."""
    # One search, not `in`: `bytes in bytes` raises and clears a TypeError inside (CPython
    # 3.11, see message/headers.py `_checked`).
    return not raw.translate(None, _PATH_KEEP_BYTES) and _UNCLEAN.search(raw) is None


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
    if _BAD_ESCAPE.search(raw) is not None:
        return None
    if raw.translate(None, _PRINTABLE):
        return unquote_to_bytes(raw)  # a configured path with spaces or controls: rare
    return a2b_qp(raw.replace(b"=", b"=3D").replace(b"%", b"="))


def escape(path: bytes) -> bytes:
    """Go's `escape(s, encodePath)`, hex in upper case."""
    if not path.translate(None, _PATH_KEEP_BYTES):
        return path
    return path.decode("latin-1").translate(_ESCAPES).encode("ascii")


def _normal_escape(match: re.Match[bytes]) -> bytes:
    return _NORMAL[match.group()]


def _valid_encoded(raw: bytes) -> bool:
    return not raw.translate(None, _RAW_OK)


# What Go's server answers for a path it cannot parse.
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
