"""Answers the HTTP/1.1 front end writes itself, without a backend: a middleware's reply (a
redirect), a text answer (an ACME HTTP-01 token), an error status.

Pure functions over an `Exchange`: each returns the bytes to write and decides whether the
connection ends after them (`closes`, which sets `ex.keep`): it does unless the request was
read to its end, did not ask for an upgrade, and the exchange is not the connection's last
(`keep_alive` is cleared when the connection drains, on the client's EOF, and by the
keep-alive limits of edge/http1/limits.py); then the answer says `Connection: close`.
`HttpProxy` (edge/http1/protocol.py) writes them and ends the exchange.
"""

from __future__ import annotations

from proxynow.edge.core.errors import error_response
from proxynow.edge.http.exchange import Exchange
from proxynow.edge.http.middlewares import Reply
from proxynow.edge.http1.response import CLOSE, status_line

__all__ = ["closes", "error_answer", "reply_answer", "text_answer"]


def closes(ex: Exchange) -> bool:
    """Whether the connection ends after a local answer to `ex` (`ex.keep` is set to match)."""
    close = not (ex.keep_alive and ex.complete) or ex.upgrade
    ex.keep = not close
    return close


def reply_answer(ex: Exchange, reply: Reply) -> bytes:
    """A middleware's reply as sent: status, its headers, the framing, then the body (none
    for HEAD); sets `ex.status` and `ex.bytes_out`."""
    ex.status = reply.status
    parts = [status_line(reply.status)]
    for name, value in reply.headers:
        parts += (name, b": ", value, b"\r\n")
    parts.append(b"Content-Length: %d\r\n" % len(reply.body))
    if closes(ex):
        parts.append(CLOSE)
    parts.append(b"\r\n")
    if reply.body and ex.method_b != b"HEAD":
        parts.append(reply.body)
        ex.bytes_out = len(reply.body)
    return b"".join(parts)


def text_answer(ex: Exchange, status: int, body: bytes) -> bytes:
    """A text/plain answer with `body`; sets `ex.status` and `ex.bytes_out`."""
    ex.status = status
    ex.bytes_out = len(body)
    head = b"%sContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n%s\r\n" % (
        status_line(status),
        len(body),
        CLOSE if closes(ex) else b"",
    )
    return head + body


def error_answer(ex: Exchange, status: int) -> bytes:
    """An error status for `ex` (before any response byte was sent); sets `ex.status` and
    `ex.bytes_out` (the body's size, as the other answers do: the access log reads it)."""
    ex.status = status
    response = error_response(status, closes(ex))
    ex.bytes_out = len(response) - response.index(b"\r\n\r\n") - 4
    return response
