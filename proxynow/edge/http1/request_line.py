"""Request lines llhttp refuses and Traefik serves: extension methods and raw non-ASCII.

llhttp knows a fixed list of methods and refuses bytes >= 0x80 in a request target; Go's
server (so Traefik) forwards any RFC 9110 token as a method and percent-encodes such bytes.
Strictness buys nothing there, so the HTTP/1 front end (edge/http1/protocol.py), once llhttp has
refused the first request line of a read, asks `lenient_line` for a line llhttp takes: the
method replaced by a stand-in and the target's non-ASCII bytes percent-encoded. What is put
back on the exchange afterwards is what Traefik forwards (checked against Traefik 3.7):
the method as sent, the path percent-encoded, the query as sent. Everything else about
the line (controls, spaces, the version) stays llhttp's to judge. Pure: bytes in, bytes out.
"""

from __future__ import annotations

import string
from typing import NamedTuple

__all__ = ["KNOWN_METHODS", "STAND_IN", "Lenient", "lenient_line", "percent_encode_high"]

# RFC 9110 §5.6.2 tchar: what a method token may hold.
_TCHAR = (string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~").encode("ascii")
# The methods llhttp parses in HTTP mode (tests/integration/edge/http1/test_http_hardening.py
# checks the list against the installed httptools).
KNOWN_METHODS = frozenset(
    b"DELETE GET HEAD POST PUT CONNECT OPTIONS TRACE COPY LOCK MKCOL MOVE PROPFIND "
    b"PROPPATCH SEARCH UNLOCK BIND REBIND UNBIND ACL REPORT MKACTIVITY CHECKOUT MERGE "
    b"M-SEARCH NOTIFY SUBSCRIBE UNSUBSCRIBE PATCH PURGE MKCALENDAR LINK UNLINK SOURCE "
    b"QUERY".split()
)
# What llhttp parses in place of an extension method: framing then follows the headers
# alone, as RFC 9112 §6 wants for any method.
STAND_IN = b"POST"
_HIGH = bytes(range(0x80, 0x100))
MAX_METHOD = 64  # longer than any method in use; a longer token is not worth a parse


class Lenient(NamedTuple):
    """A read whose first request line was rewritten for llhttp."""

    data: bytes
    method: bytes | None  # the method as sent, when a stand-in replaced it
    target: bytes | None  # the target to forward, when the one parsed was encoded for llhttp


def lenient_line(data: bytes) -> Lenient | None:
    """`data` (a read that starts with a request line) rewritten so that llhttp parses
    its first line, or None when nothing here would make that line acceptable."""
    end = data.find(b"\n")
    if end < 0:
        return None
    line = data[:end]
    parts = line.split(b" ")
    if len(parts) != 3:
        return None
    method, target, version = parts
    sent: bytes | None = None
    forward: bytes | None = None
    if method not in KNOWN_METHODS:
        if not method or len(method) > MAX_METHOD or method.translate(None, _TCHAR):
            return None
        sent, method = method, STAND_IN
    if len(target.translate(None, _HIGH)) != len(target):
        path, mark, query = target.partition(b"?")
        forward = percent_encode_high(path) + mark + query
        target = percent_encode_high(target)
    if sent is None and forward is None:
        return None
    return Lenient(b" ".join((method, target, version)) + data[end:], sent, forward)


def percent_encode_high(target: bytes) -> bytes:
    """Bytes >= 0x80 as %XX (uppercase hex, as Go's URL.EscapedPath writes them)."""
    return b"".join(b"%%%02X" % byte if byte >= 0x80 else bytes((byte,)) for byte in target)
