"""Which client a request comes from: `ipStrategy` and `sourceCriterion`, as Traefik reads them.

`ip_strategy(options)` turns an `ipStrategy` into a function of the exchange giving the
client's address as text ("" when none can be chosen), and `source_criterion` turns a
`sourceCriterion` into a function giving the key a limiter counts under. Traefik's rules
(traefik pkg/ip/strategy.go, pkg/middlewares/extractor.go):

- no strategy, or depth 0 and no excludedIPs: the connection's peer address;
- `depth` n > 0: the n-th address of X-Forwarded-For counted from the right ("" when the
  header has fewer); only the first X-Forwarded-For header is read, as Go's Header.Get;
- `excludedIPs`: the right-most address of X-Forwarded-For not in the list ("" if none;
  only the last `MAX_SCANNED` entries are read, a bound Traefik does not have);
- `ipv6Subnet` (peer address and depth): an IPv6 result is replaced by its /n network.

X-Forwarded-For is what the backend would receive before the peer is appended: the
client's own values only when the entrypoint trusts it (forwardedHeaders), as in Traefik.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import TYPE_CHECKING

from proxynow.edge.core.ipcheck import IPChecker

if TYPE_CHECKING:
    from proxynow.config.middlewares import IPStrategy, SourceCriterion
    from proxynow.edge.http.exchange import Exchange

__all__ = ["Extract", "ip_strategy", "peer", "source_criterion"]

Extract = Callable[["Exchange"], str]


def ip_strategy(options: IPStrategy | None) -> Extract:
    """The client address an `ipStrategy` chooses; `ValueError` for a bad option."""
    if options is None:
        return peer
    if options.depth < 0:
        raise ValueError("ipStrategy.depth must not be negative")
    subnet = options.ipv6_subnet
    if subnet is not None and not 0 <= subnet <= 128:
        raise ValueError("ipStrategy.ipv6Subnet must be between 0 and 128")
    if options.depth > 0:
        return _masked(_depth(options.depth), subnet)
    if options.excluded_ips:
        return _pool(IPChecker(options.excluded_ips))
    return _masked(peer, subnet)


def source_criterion(options: SourceCriterion | None, default_host: bool) -> Extract:
    """The key a `sourceCriterion` counts a request under; with none set, the peer
    address (rateLimit) or the Host (inFlightReq: `default_host`)."""
    if options is not None:
        chosen = sum(
            (
                options.ip_strategy is not None,
                bool(options.request_header_name),
                options.request_host,
            )
        )
        if chosen > 1:
            raise ValueError(
                "sourceCriterion: ipStrategy, requestHeaderName and requestHost are exclusive"
            )
        if options.ip_strategy is not None:
            return ip_strategy(options.ip_strategy)
        if options.request_header_name:
            return _header(options.request_header_name.encode("latin-1"))
        if options.request_host:
            return _host
    return _host if default_host else peer


def peer(exchange: Exchange) -> str:
    """The connection's peer address (Traefik's RemoteAddrStrategy)."""
    ip = exchange.client_ip
    return "" if ip is None else str(ip)


def _host(exchange: Exchange) -> str:
    return exchange.head.host.decode("latin-1")


def _header(name: bytes) -> Extract:
    def extract(exchange: Exchange) -> str:
        value = exchange.head.get(name)
        return "" if value is None else value.decode("latin-1")

    return extract


def _first_xff(exchange: Exchange) -> list[str]:
    values = exchange.head.get_all(b"x-forwarded-for")
    return values[0].decode("latin-1").split(",") if values else [""]


def _depth(depth: int) -> Extract:
    def extract(exchange: Exchange) -> str:
        addresses = _first_xff(exchange)
        return addresses[-depth].strip() if len(addresses) >= depth else ""

    return extract


# How many X-Forwarded-For entries `excludedIPs` reads from the right: each is parsed in
# Python, and a client could send a megabyte of excluded addresses to stall the loop.
MAX_SCANNED = 64


def _pool(excluded: IPChecker) -> Extract:
    def extract(exchange: Exchange) -> str:
        for address in reversed(_first_xff(exchange)[-MAX_SCANNED:]):
            address = address.strip()
            if address and excluded.contains_text(address) is not True:
                return address
        return ""

    return extract


def _masked(extract: Extract, subnet: int | None) -> Extract:
    if subnet is None:
        return extract

    def masked(exchange: Exchange) -> str:
        address = extract(exchange)
        if ":" not in address:
            return address
        try:
            network = ipaddress.IPv6Network((address.partition("%")[0], subnet), strict=False)
        except ValueError:
            return address
        return str(network.network_address)

    return masked
