"""`redirectRegex`: a redirection to `replacement` when `regex` matches the request's URL.

As Traefik: the URL is `scheme://Host<request URI>` (https on a TLS entrypoint, the Host
header as sent, port included, the path as the entrypoint normalised it); the pattern is a
Go regexp (RE2, rules/goreplace.py) and the new URL Go's ReplaceAllString of it. A URL
that does not change goes on to the service. GET gets 302 (301 when `permanent`), every
other method 307 (308), HEAD included; the body is the status text. The new URL is bounded
(gourl.py `LIMIT`); one past it, or one Go's url.Parse refuses (a control byte), answers 500.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proxynow.edge.http.middlewares.base import BuildContext, Reply, Step
from proxynow.edge.http.middlewares.gourl import BAD_PATH, LIMIT, from_target, server_error
from proxynow.rules.goreplace import compile_capturing

if TYPE_CHECKING:
    from proxynow.config.middlewares import Middleware
    from proxynow.edge.http.exchange import Exchange

__all__ = ["build"]

_TEXT = {301: b"Moved Permanently", 302: b"Found", 307: b"Temporary Redirect"}
_TEXT[308] = b"Permanent Redirect"
# Bytes url.Parse refuses in a URL (control characters), and what a header cannot hold.
_CONTROL = bytes(range(0x20)) + b"\x7f"


def build(middleware: Middleware, context: BuildContext) -> Step:
    """The `redirectRegex` builder (registry.py); the pattern was validated with the
    configuration (config/middlewares.py)."""
    options = middleware.redirect_regex
    assert options is not None
    pattern = compile_capturing(options.regex)
    replacement = options.replacement.encode("utf-8")
    scheme = b"https://" if context.secure else b"http://"
    get, other = (301, 308) if options.permanent else (302, 307)

    def request(exchange: Exchange) -> Reply | None:
        go = from_target(exchange.target)
        if go is None:
            return BAD_PATH
        old = b"".join((scheme, exchange.head.host, go.request_uri()))
        if pattern.search(old) is None:
            return None
        new = pattern.replace_all(old, replacement, LIMIT)
        if new is None:
            return server_error("rewritten URL too long")
        if new == old:
            return None
        if new.translate(None, _CONTROL) != new:
            return server_error("net/url: invalid control character in URL")
        status = get if exchange.method_b == b"GET" else other
        return Reply(status, ((b"Location", new),), _TEXT[status])

    return Step("redirectRegex", request=request)
