"""`errors`: a custom error page in place of a backend's error response.

When the backend's status is one of `status` (single codes and ranges such as "500-599"),
the backend's response is discarded (its body is read off the connection, which is then
reused: edge/upstream/drain.py) and the client gets the page of `service` fetched at `query`
(`{status}`: the status sent to the client, `{originalStatus}`: the backend's, `{url}`: the
request's URL, query-escaped), with the backend's status or the one `statusRewrites` maps
it to ("418" or "500-503" → a code), and the page's headers and body. The page is requested
with the client's method-independent GET, the client's headers and its Host (the service's
own Host when it does not pass it), through the subrequest client
(edge/upstream/subrequest.py): no task per request. A page that cannot be had gives the
status with its reason phrase as a text body, as Traefik answers then.

Only responses from the backend are replaced: an answer of another middleware is not (as
a response-head hook, this step sees backend heads only).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import TYPE_CHECKING
from urllib.parse import quote_plus

from proxynow.edge.http.middlewares.base import BuildContext, Defer, Reply, Resume, Step
from proxynow.edge.message.headers import ResponseHead
from proxynow.edge.upstream.subrequest import Fetched, FetchError, fetch

if TYPE_CHECKING:
    from proxynow.config.middlewares import Middleware
    from proxynow.edge.http.exchange import Exchange
    from proxynow.edge.upstream.server import Pick

__all__ = ["PAGE_LIMIT", "PAGE_TIMEOUT", "build", "parse_ranges"]

log = logging.getLogger(__name__)

PAGE_LIMIT = 1024 * 1024  # an error page is held whole before it is sent: bounded
PAGE_TIMEOUT = 30.0
_HOP = frozenset(
    (
        b"connection",
        b"keep-alive",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-connection",
        b"content-length",
    )
)
_SKIPPED_REQUEST = frozenset((b"host", b"content-length", b"transfer-encoding", b"expect"))

Ranges = tuple[tuple[int, int], ...]


def parse_ranges(items: list[str], router: str = "") -> Ranges:
    """["500-599", "404"] → ((500, 599), (404, 404)); an entry that is no code is logged."""
    ranges: list[tuple[int, int]] = []
    for item in items:
        for part in item.split(","):
            low, _, high = part.strip().partition("-")
            try:
                pair = (int(low), int(high or low))
            except ValueError:
                log.warning("router %s: errors middleware: status %r is not a code", router, part)
                continue
            ranges.append(pair)
    return tuple(ranges)


def _within(ranges: Ranges, status: int) -> bool:
    return any(low <= status <= high for low, high in ranges)


class _Errors:
    """The compiled options; `response_head` is the step's hook."""

    def __init__(self, ranges: Ranges, rewrites: list[tuple[Ranges, int]], query: str, pick: Pick):
        self.ranges = ranges
        self.rewrites = rewrites
        self.query = query or "/"
        self.pick = pick
        self.timeout = PAGE_TIMEOUT

    def response_head(self, exchange: Exchange, status: int, head: ResponseHead) -> Defer | None:
        if not _within(self.ranges, status):
            return None
        code = self._rewritten(status)
        server = self.pick()
        if server is None:
            return Defer(lambda resume: resume(_plain(code)))
        target = server.path_prefix + self._query(exchange, code, status)
        host = exchange.head.host if server.pass_host_header else server.host_header
        data = _page_request(exchange, target, host)

        def start(resume: Resume) -> None:
            def done(result: Fetched | FetchError) -> None:
                resume(_page(code, result))

            fetch(server.pool, data, False, PAGE_LIMIT, self.timeout, done)

        return Defer(start)

    def _rewritten(self, status: int) -> int:
        for ranges, code in self.rewrites:
            if _within(ranges, status):
                return code
        return status

    def _query(self, exchange: Exchange, code: int, original: int) -> bytes:
        url = quote_plus(exchange.target.decode("latin-1"), safe="")
        query = self.query.replace("{status}", str(code))
        query = query.replace("{originalStatus}", str(original)).replace("{url}", url)
        return query.encode("latin-1", "replace")


def _page_request(exchange: Exchange, target: bytes, host: bytes) -> bytes:
    parts = [b"GET ", target, b" HTTP/1.1\r\nHost: ", host, b"\r\n"]
    for name, value in exchange.head.items():
        if name.lower() not in _SKIPPED_REQUEST and name.lower() not in _HOP:
            parts += (name, b": ", value, b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def _page(code: int, result: Fetched | FetchError) -> Reply:
    if isinstance(result, FetchError):
        if log.isEnabledFor(logging.DEBUG):
            log.debug("errors middleware: no error page (%s: %s)", result.kind, result.detail)
        return _plain(code)
    headers = tuple(pair for pair in result.headers if pair[0].lower() not in _HOP)
    return Reply(code, headers, result.body)


def _plain(code: int) -> Reply:
    try:
        text = HTTPStatus(code).phrase
    except ValueError:
        text = ""
    body = text.encode("ascii") + b"\n"
    headers = (
        (b"Content-Type", b"text/plain; charset=utf-8"),
        (b"X-Content-Type-Options", b"nosniff"),
    )
    return Reply(code, headers, body)


def _service(context: BuildContext, name: str) -> Pick | None:
    """The pick of `name`, qualified with the router's provider when it is not (the
    aggregator does not qualify a middleware's service)."""
    lookup: Callable[[str], Pick | None] | None = context.service
    if lookup is None or not name:
        return None
    if "@" not in name and "@" in context.router:
        pick = lookup(f"{name}@{context.router.rsplit('@', 1)[1]}")
        if pick is not None:
            return pick
    return lookup(name)


def build(middleware: Middleware, context: BuildContext) -> Step:
    """The `errors` builder (registry.py)."""
    options = middleware.errors
    assert options is not None
    pick = _service(context, options.service)
    ranges = parse_ranges(options.status, context.router)
    if pick is None or not ranges:
        log.error(
            "router %s: errors middleware: service %r cannot serve", context.router, options.service
        )
        return Step("errors")
    rewrites = [
        (parse_ranges([key], context.router), code) for key, code in options.status_rewrites.items()
    ]
    step = _Errors(ranges, rewrites, options.query, pick)
    return Step("errors", response_head=step.response_head)
