"""`ipAllowList` (and its deprecated alias `ipWhiteList`): only clients whose address is in
`sourceRange` reach the service; the others get `rejectStatusCode` (default 403) with its
status text. The address is the one `ipStrategy` chooses (source.py); one that cannot be
chosen or parsed is refused, as in Traefik (traefik pkg/middlewares/ipallowlist/).

An allowed request costs the strategy's lookup and one set test or bisect, no allocation
beyond the address text when a strategy reads X-Forwarded-For.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proxynow.edge.core.ipcheck import IPChecker, canonical
from proxynow.edge.http.middlewares.base import BuildContext, Reply, RequestHook, Step
from proxynow.edge.http.middlewares.replies import text_reply
from proxynow.edge.http.middlewares.source import ip_strategy, peer

if TYPE_CHECKING:
    from proxynow.config.middlewares import Middleware
    from proxynow.edge.http.exchange import Exchange

__all__ = ["build"]


def build(middleware: Middleware, context: BuildContext) -> Step:
    """The `ipAllowList` builder (registry.py); `ValueError` for a bad option."""
    options = middleware.ip_allow_list
    assert options is not None
    if not options.source_range:
        raise ValueError("sourceRange is empty")
    checker = IPChecker(options.source_range)
    refusal = text_reply(options.reject_status_code or 403)
    extract = ip_strategy(options.ip_strategy)
    if extract is peer:
        return Step("ipAllowList", request=_by_peer(checker, refusal))

    def request(exchange: Exchange) -> Reply | None:
        allowed = checker.contains_text(extract(exchange))
        return None if allowed else refusal

    return Step("ipAllowList", request=request)


def _by_peer(checker: IPChecker, refusal: Reply) -> RequestHook:
    """The common case: the peer's address, already parsed by the connection."""
    contains = checker.contains

    def request(exchange: Exchange) -> Reply | None:
        ip = exchange.client_ip
        return None if ip is not None and contains(canonical(ip)) else refusal

    return request
