"""The plain-text answers of the access-control middlewares, as Traefik writes them: the
status text as the body and no Content-Type (Traefik's response writer does not sniff one
there: tests/e2e/differential/test_middlewares_access.py compares)."""

from __future__ import annotations

import http

from proxynow.edge.http.middlewares.base import Reply

__all__ = ["status_text", "text_reply"]


def status_text(status: int) -> str:
    """The reason phrase of `status`; `ValueError` for a code HTTP does not define."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        raise ValueError(f"invalid HTTP status code {status}") from None


def text_reply(status: int, *headers: tuple[bytes, bytes]) -> Reply:
    """`status` with its reason phrase as a text body (built once, at graph build)."""
    return Reply(status, headers, status_text(status).encode("ascii"))
