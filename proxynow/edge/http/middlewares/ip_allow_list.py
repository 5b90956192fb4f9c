"""`ipAllowList` (and its deprecated alias `ipWhiteList`): only clients whose address is in
`sourceRange` reach the service; the others get `rejectStatusCode` (default 403) with its
status text. The address is the one `ipStrategy` chooses (source.py); one that cannot be
chosen or parsed is refused, as in Traefik (traefik pkg/middlewares/ipallowlist/).

An allowed request costs the strategy's lookup and one set test or bisect, no allocation
beyond the address text when a strategy reads X-Forwarded-For; by the peer's address (no
strategy), an identity test: each address's answer is remembered.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from proxynow.edge.core.ipcheck import IPChecker, canonical
from proxynow.edge.http.middlewares.base import BuildContext, Reply, RequestHook, Step
from proxynow.edge.http.middlewares.replies import text_reply
from proxynow.edge.http.middlewares.source import ip_strategy, peer

if TYPE_CHECKING:
    from proxynow.config.middlewares import Middleware
    from proxynow.edge.http.exchange import Exchange

__all__ = ["build"]

_IP = ipaddress.IPv4Address | ipaddress.IPv6Address


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
        return Step("ipAllowList", request=_by_peer(checker, refusal), rewrites=frozenset())

    def request(exchange: Exchange) -> Reply | None:
        allowed = checker.contains_text(extract(exchange))
        return None if allowed else refusal

    return Step("ipAllowList", request=request, rewrites=frozenset())


def _by_peer(checker: IPChecker, refusal: Reply) -> RequestHook:
    """The common case: the peer's address, already parsed by the connection."""
    return _PeerVerdicts(checker, refusal).request


class _PeerVerdicts:
    """Each peer address's answer, remembered: the address object is the connection's
    (shared by the connections of one peer, edge/http/peers.py), so a keep-alive request
    pays an identity test, not the address's hashing and comparisons (Python methods)."""

    __slots__ = ("checker", "last", "last_allowed", "refusal", "seen")

    # Addresses remembered per step (each router has its own): then start over. Small: the
    # identity test serves a keep-alive connection, this the connections taking turns.
    LIMIT = 256

    def __init__(self, checker: IPChecker, refusal: Reply) -> None:
        self.checker = checker
        self.refusal = refusal
        self.last: object = None
        self.last_allowed = False
        # id(address) → (address, allowed): the address held, so that its id is not reused.
        self.seen: dict[int, tuple[object, bool]] = {}

    def request(self, exchange: Exchange) -> Reply | None:
        ip = exchange.client_ip
        if ip is None:
            return self.refusal
        if ip is not self.last:
            self._learn(ip)
        return None if self.last_allowed else self.refusal

    def _learn(self, ip: _IP) -> None:
        known = self.seen.get(id(ip))
        if known is not None and known[0] is ip:
            allowed = known[1]
        else:
            allowed = self.checker.contains(canonical(ip))
            if len(self.seen) >= self.LIMIT:
                self.seen.clear()
            self.seen[id(ip)] = (ip, allowed)
        self.last, self.last_allowed = ip, allowed
