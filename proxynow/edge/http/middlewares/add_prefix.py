"""`addPrefix`: `prefix` prepended to the path before it goes upstream.

As Traefik: the prefix is added to the decoded path and, when the request has one, to its
escaped form (Go's URL.Path and RawPath), so `/a%2Fb` with prefix `/pre` reaches the
backend as `/pre/a%2Fb`; a path left without a leading slash gets one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proxynow.edge.http.middlewares.base import BuildContext, Reply, Step
from proxynow.edge.http.middlewares.gourl import BAD_PATH, from_target, leading_slash, set_target

if TYPE_CHECKING:
    from proxynow.config.middlewares import Middleware
    from proxynow.edge.http.exchange import Exchange

__all__ = ["build"]


def build(middleware: Middleware, context: BuildContext) -> Step:
    """The `addPrefix` builder (registry.py)."""
    options = middleware.add_prefix
    assert options is not None
    prefix = options.prefix.encode("utf-8")

    def request(exchange: Exchange) -> Reply | None:
        go = from_target(exchange.target)
        if go is None:
            return BAD_PATH
        go.path = leading_slash(prefix + go.path)
        if go.raw:
            go.raw = leading_slash(prefix + go.raw)
        set_target(exchange, go)
        return None

    return Step("addPrefix", request=request)
