"""One backend server as a request needs it, and the pick that chooses one.

A `Server` is built by the graph (edge/graph/services.py) from a load balancer's server
entry; it holds its upstream pool and the request-shaping facts. A `Pick` walks a service
tree down to a live server, or None.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from proxynow.edge.balance.least import Load
from proxynow.edge.upstream.pool import UpstreamPool

__all__ = ["Mirror", "Mirroring", "Pick", "Server", "no_server"]


@dataclass(frozen=True, slots=True)
class Server:
    """One backend server as a request needs it."""

    url: str
    service: str
    pool: UpstreamPool
    host_header: bytes
    pass_host_header: bool
    path_prefix: bytes
    response_header_timeout: float
    # p2c and leasttime: the server's in-flight count and TTFB (edge/balance/least.py); else None,
    # and then the HTTP protocol does no bookkeeping for it.
    load: Load | None = None
    # Behind a `mirroring` service: its mirrors get a copy of each request sent here.
    mirroring: Mirroring | None = None
    # An HTTP/2 server's HTTP/1.1 pool, for connection upgrades (WebSocket); None: `pool`.
    upgrade_pool: UpstreamPool | None = None


Pick = Callable[[], Server | None]

# A mirror with this many copies unanswered gets no more until one ends: a slow mirror
# must not collect connections without bound.
MIRROR_IN_FLIGHT = 64


class Mirror:
    """One mirror of a mirroring service: its pick and Traefik's per-mirror count."""

    __slots__ = ("count", "in_flight", "name", "percent", "pick")

    def __init__(self, name: str, pick: Pick, percent: int) -> None:
        self.name = name
        self.pick = pick
        self.percent = percent
        self.count = 0  # requests copied to it
        self.in_flight = 0  # copies sent and not answered yet


class Mirroring:
    """A mirroring service's mirrors and the bounds on what they get a copy of."""

    __slots__ = ("max_body", "mirror_body", "mirrors", "skipped", "total")

    def __init__(self, mirrors: list[Mirror], max_body: int, mirror_body: bool) -> None:
        self.mirrors = mirrors
        self.max_body = max_body  # a body larger than this is not copied (-1: no limit)
        self.mirror_body = mirror_body
        self.total = 0  # requests seen
        self.skipped = 0  # copies not sent: body too large, or the mirror saturated

    def chosen(self) -> list[Mirror]:
        """The mirrors that get the request now seen: a mirror at `percent` gets a copy
        while it has had fewer than `percent`% of the requests (Traefik's counting)."""
        self.total += 1
        chosen: list[Mirror] = []
        for mirror in self.mirrors:
            if mirror.count * 100 < self.total * mirror.percent:
                mirror.count += 1
                chosen.append(mirror)
        return chosen


def no_server() -> Server | None:
    return None
