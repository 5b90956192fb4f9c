"""The per-worker objects a graph points into, kept across graph swaps: registries of
metrics, balancers, pools, TLS contexts and health, and what the last build compiled per
configuration object (reused when the object is unchanged, edge/graph/build.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from proxynow.config.dynamic import Router, Service
from proxynow.config.static import StaticConfig
from proxynow.edge.balance.sticky import StickyPick
from proxynow.edge.balance.wrr import BalancerRegistry
from proxynow.edge.core.metrics import WorkerMetrics
from proxynow.edge.graph.target import HttpTarget
from proxynow.edge.tcp.routing import TcpRouting
from proxynow.edge.tls.contexts import ContextCache
from proxynow.edge.upstream.health import WorkerHealth
from proxynow.edge.upstream.pool import PoolRegistry
from proxynow.edge.upstream.server import Pick, Server
from proxynow.rules import Node, Route
from proxynow.rules.incremental import TableBuilder

__all__ = ["CachedRouter", "CachedService", "Compiled", "GraphResources"]


@dataclass(slots=True)
class GraphResources:
    """The per-worker mutable objects a graph points into, kept across graph swaps."""

    metrics: WorkerMetrics = field(default_factory=WorkerMetrics)
    balancers: BalancerRegistry = field(default_factory=BalancerRegistry)
    pools: PoolRegistry = field(default_factory=PoolRegistry)
    # Rule text → its AST (None: invalid, already logged), as the last graph used them.
    rules: dict[str, Node | None] = field(default_factory=dict)
    contexts: ContextCache = field(default_factory=ContextCache)
    # Server health (edge/upstream/health.py): applied to the balancers after every build.
    health: WorkerHealth = field(default_factory=WorkerHealth)
    # Entrypoint name → the port its workers listen on (resolved port 0), for redirects.
    ports: dict[str, int] = field(default_factory=dict)
    # What the last build compiled, reused for unchanged configuration objects.
    compiled: Compiled = field(default_factory=lambda: Compiled(None))


@dataclass(slots=True)
class CachedRouter:
    router: Router
    pick: Pick | None
    middlewares: object  # the middleware table it was compiled against (when it uses any)
    routes: tuple[tuple[str, bool, Route[HttpTarget]], ...]  # (entrypoint, tls, route)


@dataclass(slots=True)
class Compiled:
    """Per-object compile results of the last graph, valid for one static configuration."""

    static: StaticConfig | None
    services: dict[str, CachedService] = field(default_factory=dict)
    routers: dict[str, CachedRouter] = field(default_factory=dict)
    tables: dict[tuple[str, bool], TableBuilder[HttpTarget]] = field(default_factory=dict)
    redirects: dict[str, Route[HttpTarget]] = field(default_factory=dict)
    version: int = -1  # the snapshot these results are for
    # Service name → the routers that use it (for a delta that changes a service).
    users: dict[str, set[str]] = field(default_factory=dict)
    # True when a delta can be applied by patching: plain HTTP routers only, every
    # service a load balancer (no service depends on another).
    patchable: bool = False
    tcp: TcpRouting | None = None


@dataclass(slots=True)
class CachedService:
    service: Service
    depends: tuple[object, ...]  # what else the pick was built from (transports, children)
    pick: Pick | None
    sticky: StickyPick[Server] | None = None
