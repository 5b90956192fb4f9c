"""TCP middlewares: `ipAllowList` and `inFlightConn`, checked when a connection is routed.

A TCP router's middlewares are compiled at graph build into a tuple of `Guard`s on its
route (routing.py); `TcpProxy` (proxy.py) asks each to `admit` the client's address before
it dials, closes the connection when one refuses, and calls `release` on the guards that
admitted it when the connection ends. Traefik semantics (traefik pkg/middlewares/tcp/):

- `ipAllowList`: the peer address must be in `sourceRange` (IPs and CIDRs), else the
  connection is closed;
- `inFlightConn`: at most `amount` connections at once per client IP, else closed.

`BUILDERS` is the list of what is implemented, as for HTTP: control/middleware_support.py
derives the TCP half of `APPLIED` from its keys.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from proxynow.config.middlewares import TCPMiddleware
from proxynow.edge.core.ipcheck import IPChecker, canonical
from proxynow.rules.request import IPAddress

__all__ = ["BUILDERS", "Guard", "IPAllowList", "InFlightConn", "compile_guards"]

log = logging.getLogger(__name__)


class Guard(Protocol):
    """One TCP middleware as a connection meets it."""

    def admit(self, ip: IPAddress | None) -> bool: ...
    def release(self, ip: IPAddress | None) -> None: ...


class IPAllowList:
    __slots__ = ("checker",)

    def __init__(self, checker: IPChecker) -> None:
        self.checker = checker

    def admit(self, ip: IPAddress | None) -> bool:
        return ip is not None and self.checker.contains(canonical(ip))

    def release(self, ip: IPAddress | None) -> None:
        """Nothing is held."""


class InFlightConn:
    __slots__ = ("amount", "counts")

    def __init__(self, amount: int) -> None:
        self.amount = amount
        self.counts: dict[IPAddress | None, int] = {}  # only addresses with connections

    def admit(self, ip: IPAddress | None) -> bool:
        count = self.counts.get(ip, 0)
        if count >= self.amount:
            return False
        self.counts[ip] = count + 1
        return True

    def release(self, ip: IPAddress | None) -> None:
        count = self.counts.get(ip, 0) - 1
        if count > 0:
            self.counts[ip] = count
        else:
            self.counts.pop(ip, None)


def _allow_list(middleware: TCPMiddleware) -> Guard:
    options = middleware.ip_allow_list
    assert options is not None
    if not options.source_range:
        raise ValueError("sourceRange is empty")
    return IPAllowList(IPChecker(options.source_range))


def _in_flight(middleware: TCPMiddleware) -> Guard:
    options = middleware.in_flight_conn
    assert options is not None
    return InFlightConn(options.amount)


BUILDERS: dict[str, Callable[[TCPMiddleware], Guard]] = {
    "inFlightConn": _in_flight,
    "ipAllowList": _allow_list,
}


class _Refuse:
    """A middleware that cannot be built, or is missing: every connection is refused
    (the aggregator has disabled the router already; this keeps the data plane closed)."""

    def admit(self, ip: IPAddress | None) -> bool:
        return False

    def release(self, ip: IPAddress | None) -> None:
        """Nothing is held."""


def compile_guards(
    router: str, names: Sequence[str], middlewares: Mapping[str, TCPMiddleware]
) -> tuple[Guard, ...]:
    """A TCP router's middleware references → its guards, in order (once per build)."""
    guards: list[Guard] = []
    for name in names:
        spec = middlewares.get(name) or middlewares.get(name.split("@", 1)[0])
        builder = BUILDERS.get(spec.kind) if spec is not None else None
        if spec is None or builder is None:
            log.error("TCP router %s: middleware %s is missing or not applied", router, name)
            guards.append(_Refuse())
            continue
        try:
            guards.append(builder(spec))
        except ValueError as exc:
            log.error("TCP router %s: middleware %s cannot be built: %s", router, name, exc)
            guards.append(_Refuse())
    return tuple(guards)
