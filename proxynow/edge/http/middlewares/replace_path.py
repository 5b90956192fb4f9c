"""`replacePath`: the path replaced by `path`; the one replaced goes in `X-Replaced-Path`.

As Traefik: `path` is taken as the escaped form (Go's RawPath) and decoded for the path,
so `/a%2Fb` reaches the backend as written; a `path` with an invalid percent-encoding
answers 500 with Go's error text. The query is kept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proxynow.edge.http.middlewares.base import BuildContext, Reply, Step
from proxynow.edge.http.middlewares.gourl import (
    BAD_PATH,
    GoPath,
    add_header,
    from_target,
    server_error,
    set_target,
    unescape,
)

if TYPE_CHECKING:
    from proxynow.config.middlewares import Middleware
    from proxynow.edge.http.exchange import Exchange

__all__ = ["REPLACED_PATH", "build", "invalid_escape"]

REPLACED_PATH = b"X-Replaced-Path"


def invalid_escape(raw: bytes) -> Reply:
    """Traefik's 500 for a new path that does not unescape (Go's url.EscapeError text)."""
    at = raw.find(b"%")
    while at >= 0 and unescape(raw[at : at + 3]) is not None:
        at = raw.find(b"%", at + 3)
    bad = raw[at : at + 3].decode("utf-8", "replace")
    return server_error(f'invalid URL escape "{bad}"')


def build(middleware: Middleware, context: BuildContext) -> Step:
    """The `replacePath` builder (registry.py)."""
    options = middleware.replace_path
    assert options is not None
    raw = options.path.encode("utf-8")
    path = unescape(raw)

    def request(exchange: Exchange) -> Reply | None:
        go = from_target(exchange.target)
        if go is None:
            return BAD_PATH
        refused = add_header(exchange, REPLACED_PATH, go.raw or go.path)
        if refused is not None:
            return refused
        if path is None:
            return invalid_escape(raw)
        set_target(exchange, GoPath(path, raw, go.query))
        return None

    return Step("replacePath", request=request)
