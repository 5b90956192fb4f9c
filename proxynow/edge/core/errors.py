"""The data plane's error vocabulary and the one place errors become responses.

A `ProxyError` carries the HTTP status it maps to (the h11 habit of an error status hint).
Protocol code raises or returns these; `error_response` turns a status into the bytes sent
to the client. Bodies are short and plain, never a traceback. Every response built here is
precomputed at import, so answering an error costs a dict lookup.
"""

from __future__ import annotations

from http import HTTPStatus

__all__ = [
    "BadGateway",
    "BadRequest",
    "GatewayTimeout",
    "HeaderTooLarge",
    "NotFound",
    "PayloadTooLarge",
    "ProxyError",
    "UriTooLong",
    "error_response",
]


class ProxyError(Exception):
    """A request failed; `status` is the HTTP status the client is answered with."""

    status = 500

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason or HTTPStatus(self.status).phrase)
        self.reason = reason


class BadRequest(ProxyError):
    """Malformed or ambiguous request (smuggling vectors included); the connection closes."""

    status = 400


class NotFound(ProxyError):
    """No router matched the request."""

    status = 404


class PayloadTooLarge(ProxyError):
    """The request body exceeds the configured limit."""

    status = 413


class UriTooLong(ProxyError):
    """The request target exceeds the configured limit."""

    status = 414


class HeaderTooLarge(ProxyError):
    """The request head exceeds maxHeaderBytes or the header count limit."""

    status = 431


class BadGateway(ProxyError):
    """The backend refused, reset or spoke nonsense."""

    status = 502


class GatewayTimeout(ProxyError):
    """The backend did not connect or answer in time."""

    status = 504


def _build(status: int, close: bool) -> bytes:
    phrase = HTTPStatus(status).phrase
    body = f"{status} {phrase}\n".encode("ascii")
    head = [
        f"HTTP/1.1 {status} {phrase}",
        "Content-Type: text/plain; charset=utf-8",
        "X-Content-Type-Options: nosniff",
        f"Content-Length: {len(body)}",
    ]
    if close:
        head.append("Connection: close")
    return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + body


_STATUSES = (400, 404, 408, 413, 414, 431, 500, 502, 503, 504)
_RESPONSES: dict[tuple[int, bool], bytes] = {
    (status, close): _build(status, close) for status in _STATUSES for close in (False, True)
}


def error_response(status: int, close: bool) -> bytes:
    """The complete response (head and body) for an error status."""
    response = _RESPONSES.get((status, close))
    if response is None:
        response = _build(status, close)
    return response
