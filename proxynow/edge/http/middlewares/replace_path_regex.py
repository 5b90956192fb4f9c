"""`replacePathRegex`: the escaped path rewritten by `regex` and `replacement` (Go's
ReplaceAllString: `$1`, `${name}`), the one replaced going in `X-Replaced-Path`.

As Traefik: the pattern runs on the escaped path (RawPath, or Go's escaping of the path),
the result is the new escaped path and is decoded for the path; one that does not decode
answers 500. Patterns and replacement are trimmed of spaces. The result is bounded
(gourl.py `LIMIT`): a replacement that grows past it answers 500 too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proxynow.edge.http.middlewares.base import BuildContext, Reply, Step
from proxynow.edge.http.middlewares.gourl import (
    BAD_PATH,
    LIMIT,
    GoPath,
    add_header,
    from_target,
    server_error,
    set_target,
    unescape,
)
from proxynow.edge.http.middlewares.replace_path import REPLACED_PATH, invalid_escape
from proxynow.rules.goreplace import compile_capturing

if TYPE_CHECKING:
    from proxynow.config.middlewares import Middleware
    from proxynow.edge.http.exchange import Exchange

__all__ = ["build"]


def build(middleware: Middleware, context: BuildContext) -> Step:
    """The `replacePathRegex` builder (registry.py); the pattern was validated with the
    configuration (config/middlewares.py)."""
    options = middleware.replace_path_regex
    assert options is not None
    pattern = compile_capturing(options.regex.strip())
    replacement = options.replacement.strip().encode("utf-8")

    def request(exchange: Exchange) -> Reply | None:
        go = from_target(exchange.target)
        if go is None:
            return BAD_PATH
        current = go.raw or go.escaped()
        if pattern.search(current) is None:
            return None
        refused = add_header(exchange, REPLACED_PATH, current)
        if refused is not None:
            return refused
        raw = pattern.replace_all(current, replacement, LIMIT)
        if raw is None:
            return server_error("rewritten path too long")
        path = unescape(raw)
        if path is None:
            return invalid_escape(raw)
        set_target(exchange, GoPath(path, raw, go.query))
        return None

    return Step("replacePathRegex", request=request)
