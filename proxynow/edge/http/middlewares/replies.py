"""The plain-text answers of the access-control middlewares, as Go's net/http writes them:
the status text as the body, `text/plain; charset=utf-8` (what Go sniffs for it)."""

from __future__ import annotations

import http

from proxynow.edge.http.middlewares.base import Reply

__all__ = ["TEXT_PLAIN", "status_text", "text_reply"]

TEXT_PLAIN = (b"Content-Type", b"text/plain; charset=utf-8")


def status_text(status: int) -> str:
    """The reason phrase of `status`; `ValueError` for a code HTTP does not define."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        raise ValueError(f"invalid HTTP status code {status}") from None


def text_reply(status: int, *headers: tuple[bytes, bytes]) -> Reply:
    """`status` with its reason phrase as a text body (built once, at graph build)."""
    return Reply(status, (TEXT_PLAIN, *headers), status_text(status).encode("ascii"))
