"""What a worker serves from: the immutable `RouterGraph` and the `HttpTarget` a matched
HTTP router leads to (its service pick, middleware chain and metrics)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from proxynow.edge.balance.sticky import StickyPick
from proxynow.edge.core.metrics import TargetStats
from proxynow.edge.http.middlewares import Chain
from proxynow.edge.tcp.routing import TcpRouting
from proxynow.edge.tls.contexts import SniTable
from proxynow.edge.upstream.server import Pick, Server
from proxynow.rules import RouteTable

__all__ = ["HttpTarget", "RouterGraph"]


@dataclass(frozen=True, slots=True)
class HttpTarget:
    """What a matched HTTP router leads to."""

    router: str
    service: str
    middlewares: tuple[str, ...]
    pick: Pick
    stats: TargetStats
    # The router's middlewares compiled into per-phase hooks (edge/http/middlewares/);
    # None: straight to the service, the one test a request without middlewares pays.
    chain: Chain | None = None
    # A pick that reads the request (edge/balance/sticky.py: cookie stickiness or hrw somewhere in
    # the service tree); None: `pick()`.
    sticky: StickyPick[Server] | None = None


@dataclass(frozen=True, slots=True)
class RouterGraph:
    """The compiled configuration a worker serves; never mutated once built."""

    version: int
    http: Mapping[str, RouteTable[HttpTarget]]
    tcp: TcpRouting
    # Routers with `tls`: served only over TLS on their entrypoints.
    https: Mapping[str, RouteTable[HttpTarget]] = field(default_factory=dict)
    # Entrypoints whose new connections start with the ClientHello peek (edge/runtime/accept.py).
    tls_entrypoints: frozenset[str] = frozenset()
    # Entrypoint → its SNI table (TLS options per host are per entrypoint, as in Traefik).
    sni: Mapping[str, SniTable] = field(default_factory=dict)
