"""`stripPrefix`: the first of `prefixes` the path starts with is removed, and named in
`X-Forwarded-Prefix`.

As Traefik v3: the decoded path is tested and cut, its escaped form cut by the same bytes
when it has one (so `/api%2Fx` stripped of `/api` goes upstream as `/x`: `/%2Fx` no longer
encodes the path, and Go re-escapes it); a leading slash is kept. `forceSlash` is read and
ignored, as in Traefik v3, where it has no effect any more.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from proxynow.edge.http.middlewares.base import BuildContext, Reply, Step
from proxynow.edge.http.middlewares.gourl import (
    BAD_PATH,
    add_header,
    from_target,
    leading_slash,
    plain,
    set_target,
)
from proxynow.rules import routing_path

if TYPE_CHECKING:
    from proxynow.config.middlewares import Middleware
    from proxynow.edge.http.exchange import Exchange

__all__ = ["FORWARDED_PREFIX", "build"]

FORWARDED_PREFIX: Final = b"X-Forwarded-Prefix"


def build(middleware: Middleware, context: BuildContext) -> Step:
    """The `stripPrefix` builder (registry.py)."""
    options = middleware.strip_prefix
    assert options is not None
    prefixes = tuple(prefix.encode("utf-8") for prefix in options.prefixes)
    if not prefixes:
        return Step("stripPrefix")

    # A request whose path is plain (gourl.plain: its own decoding and escaping, the
    # common case) is cut by bytes with no GoPath: the same result, a third of the calls.
    sendable = all(_sendable(prefix) for prefix in prefixes)

    def request(exchange: Exchange) -> Reply | None:
        target = exchange.target
        raw, sep, query = target.partition(b"?")
        if sendable and plain(raw):
            for prefix in prefixes:
                if raw.startswith(prefix):
                    path = leading_slash(raw[len(prefix) :]) or b"/"  # Go's RequestURI
                    exchange.head.append(FORWARDED_PREFIX, prefix)
                    exchange.target = path + sep + query
                    exchange.path = routing_path(path.decode("utf-8", "surrogateescape"))
                    return None
            return None
        go = from_target(target)
        if go is None:
            return BAD_PATH
        for prefix in prefixes:
            if go.path.startswith(prefix):
                go.path = leading_slash(go.path[len(prefix) :])
                if go.raw:
                    go.raw = leading_slash(go.raw.removeprefix(prefix))
                refused = add_header(exchange, FORWARDED_PREFIX, prefix)
                if refused is None:
                    set_target(exchange, go)
                return refused
        return None

    return Step("stripPrefix", request=request)


def _sendable(prefix: bytes) -> bool:
    """Whether `prefix` can be an X-Forwarded-Prefix value as it is (no CR, LF or NUL)."""
    return not (b"\r" in prefix or b"\n" in prefix or b"\x00" in prefix)
