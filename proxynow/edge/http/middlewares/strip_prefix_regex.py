"""`stripPrefixRegex`: the leftmost match of the first of `regex` that matches a prefix of
the path is removed, and named in `X-Forwarded-Prefix`.

As Traefik: each pattern (a Go regexp, run on RE2: rules/goreplace.py) is searched in the
decoded path; its match must be a non-empty prefix of it. The escaped path, when the request
has one, loses as many bytes as the match has (Traefik cuts RawPath by the decoded length),
after which Go re-escapes a RawPath that no longer encodes the path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proxynow.edge.http.middlewares.base import BuildContext, Reply, Step
from proxynow.edge.http.middlewares.gourl import (
    BAD_PATH,
    add_header,
    from_target,
    leading_slash,
    set_target,
)
from proxynow.edge.http.middlewares.strip_prefix import FORWARDED_PREFIX
from proxynow.rules.goreplace import compile_capturing

if TYPE_CHECKING:
    from proxynow.config.middlewares import Middleware
    from proxynow.edge.http.exchange import Exchange

__all__ = ["build"]


def build(middleware: Middleware, context: BuildContext) -> Step:
    """The `stripPrefixRegex` builder (registry.py); the patterns were validated with
    the configuration (config/middlewares.py)."""
    options = middleware.strip_prefix_regex
    assert options is not None
    patterns = tuple(compile_capturing(pattern.strip()) for pattern in options.regex)
    if not patterns:
        return Step("stripPrefixRegex")

    def request(exchange: Exchange) -> Reply | None:
        go = from_target(exchange.target)
        if go is None:
            return BAD_PATH
        for pattern in patterns:
            prefix = pattern.find(go.path)
            if not prefix or not go.path.startswith(prefix):
                continue
            refused = add_header(exchange, FORWARDED_PREFIX, prefix)
            if refused is not None:
                return refused
            go.path = leading_slash(go.path[len(prefix) :])
            if go.raw:
                go.raw = leading_slash(go.raw[len(prefix) :])
            set_target(exchange, go)
            return None
        return None

    return Step("stripPrefixRegex", request=request)
