"""The HTTP/1.1 wire of responses to the client: status lines, framing, the 101.

The precomputed status lines and header lines the front end writes, and pure functions for
the heads of the rarer responses: `interim_head` and `switching_head` are the 1xx and the
101 as relayed. A final response is re-framed by `HttpProxy.upstream_head` (edge/http1/protocol.py),
inline because it runs for every request.
"""

from __future__ import annotations

from http import HTTPStatus

from proxynow.edge.http.exchange import Exchange
from proxynow.edge.message.headers import ResponseHead

__all__ = [
    "CHUNKED",
    "CLOSE",
    "INF",
    "KEEP_ALIVE",
    "LAST_CHUNK",
    "STATUS_LINES",
    "interim_head",
    "last_chunk",
    "status_line",
    "switching_head",
]

INF = float("inf")
STATUS_LINES: dict[int, bytes] = {
    s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode("ascii") for s in HTTPStatus
}
CHUNKED = b"Transfer-Encoding: chunked\r\n"
CLOSE = b"Connection: close\r\n"
KEEP_ALIVE = b"Connection: keep-alive\r\n"
LAST_CHUNK = b"0\r\n\r\n"


def last_chunk(trailers: tuple[tuple[bytes, bytes], ...]) -> bytes:
    """The last chunk with an HTTP/2 backend's trailers (gRPC's status) in its trailer
    section, as Go's server writes them to an HTTP/1.1 client (RFC 9112 §7.1.2)."""
    if not trailers:
        return LAST_CHUNK
    return b"0\r\n%b\r\n" % b"".join(b"%b: %b\r\n" % field for field in trailers)


def interim_head(status: int, head: ResponseHead) -> bytes:
    """A 1xx response relayed as it came (the proxy adds nothing to it)."""
    return b"".join((status_line(status), *head.kept_lines(), b"\r\n"))


def switching_head(ex: Exchange, head: ResponseHead, leftover: bytes) -> bytes:
    """The backend's 101 for the client, followed by the first bytes of the new protocol."""
    return b"".join(
        (
            status_line(101),
            ex.response_head,
            *head.kept_lines(),
            b"Connection: Upgrade\r\nUpgrade: ",
            head.upgrade,
            b"\r\n\r\n",
            leftover,
        )
    )


def status_line(status: int) -> bytes:
    """The precomputed status line, or one built for a status Python does not name."""
    line = STATUS_LINES.get(status)
    return line if line is not None else b"HTTP/1.1 %d \r\n" % status
