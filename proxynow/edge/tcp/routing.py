"""TCP routing: the TCP routers of a snapshot compiled into one route table per entrypoint.

`build_tcp_routing(config, entrypoints)` is pure: it compiles the TCP routers (rules with
kind="tcp") into route tables whose values are resolved services (servers, PROXY protocol
version, termination delay); the result becomes `RouterGraph.tcp`. Weighted services and
server lists balance with edge/balance/wrr.py. The I/O is edge/tcp/proxy.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from proxynow.config.dynamic import (
    DynamicConfig,
    TCPConfig,
    TCPRouter,
    TCPServersTransport,
    TCPService,
)
from proxynow.edge.balance.wrr import Balancer, InOrder, nested
from proxynow.edge.core.metrics import TcpStats, WorkerMetrics
from proxynow.edge.tcp.middlewares import Guard, compile_guards
from proxynow.rules import Route, RouteTable, RuleError, compile_table, parse_rule, provider_rank

__all__ = [
    "Picked",
    "TcpPick",
    "TcpRoute",
    "TcpRouting",
    "TcpTarget",
    "build_tcp_routing",
    "split_host_port",
]

log = logging.getLogger(__name__)

_DEFAULT_TERMINATION_DELAY = 0.1
_DEFAULT_DIAL_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class TcpTarget:
    """A load-balancer service: where to connect and how to talk to it."""

    name: str
    servers: tuple[tuple[str, int], ...]
    proxy_protocol: int  # 0: none, else 1 or 2
    termination_delay: float  # seconds; negative: wait for the other side forever
    dial_timeout: float


# A TCP service picks a target and one of its servers; None when it has none.
Picked = tuple[TcpTarget, tuple[str, int]]
TcpPick = Callable[[], Picked | None]


@dataclass(frozen=True, slots=True)
class TcpRoute:
    """What a matching TCP router leads to."""

    router: str
    service: TcpPick
    passthrough: bool = False  # TLS routers only: forward the encrypted bytes as they are
    stats: TcpStats = field(default_factory=TcpStats)
    # The router's middlewares (middlewares.py), asked in order when a connection comes.
    guards: tuple[Guard, ...] = ()

    def pick(self) -> Picked | None:
        return self.service()


@dataclass(frozen=True, slots=True)
class TcpRouting:
    """`RouterGraph.tcp`: one route table per entrypoint that has TCP routers."""

    tables: Mapping[str, RouteTable[TcpRoute]] = field(default_factory=dict)
    # Routers with `tls` (passthrough or terminated), matched on the ClientHello peek.
    tls_tables: Mapping[str, RouteTable[TcpRoute]] = field(default_factory=dict)


def build_tcp_routing(
    config: DynamicConfig, entrypoints: list[str], metrics: WorkerMetrics | None = None
) -> TcpRouting:
    """Compile `config.tcp` for the worker; `entrypoints` are the TCP entrypoint names
    that a router without `entryPoints` listens on; routes count into `metrics`. Never
    raises on a snapshot the aggregator produced: a router that cannot be built is logged
    and left out."""
    tcp = config.tcp
    metrics = metrics if metrics is not None else WorkerMetrics()
    services: dict[str, TcpPick] = {}
    routes: dict[str, list[Route[TcpRoute]]] = {}
    tls_routes: dict[str, list[Route[TcpRoute]]] = {}
    for name, router in sorted(tcp.routers.items()):
        route = _route(name, router, tcp, services, metrics)
        if route is None:
            continue
        chosen = tls_routes if router.tls is not None else routes
        for entrypoint in router.entry_points or entrypoints:
            chosen.setdefault(entrypoint, []).append(route)
    tables = {ep: compile_table(ep_routes, "tcp") for ep, ep_routes in routes.items()}
    tls_tables = {ep: compile_table(ep_routes, "tcp") for ep, ep_routes in tls_routes.items()}
    return TcpRouting(tables, tls_tables)


def _route(
    name: str,
    router: TCPRouter,
    tcp: TCPConfig,
    built: dict[str, TcpPick],
    metrics: WorkerMetrics,
) -> Route[TcpRoute] | None:
    try:
        node = parse_rule(router.rule, "tcp")
        service = _service(router.service, tcp.services, tcp.servers_transports, built, ())
    except (RuleError, KeyError, ValueError) as exc:
        log.error("TCP router %s skipped: %s", name, exc)
        return None
    return Route(
        name=name,
        rule=node,
        target=TcpRoute(
            name,
            service,
            router.tls is not None and router.tls.passthrough,
            metrics.tcp_route(name, router.service),
            compile_guards(name, router.middlewares, tcp.middlewares),
        ),
        priority=router.priority,
        provider_rank=provider_rank(name),
        source=router.rule,
    )


def _service(
    name: str,
    services: Mapping[str, TCPService],
    transports: Mapping[str, TCPServersTransport],
    built: dict[str, TcpPick],
    path: tuple[str, ...],
) -> TcpPick:
    if name in built:
        return built[name]
    if name in path:
        raise ValueError(f"service {name} refers to itself")
    service = services[name]
    result: TcpPick
    if service.weighted is not None:
        children = [
            (_service(child.name, services, transports, built, (*path, name)), float(child.weight))
            for child in service.weighted.services
        ]
        result = nested(Balancer(children))
    else:
        target = _target(name, service, transports)
        # Servers take turns in their listed order, as in Traefik (they have no weight).
        result = InOrder([((target, server), 1.0) for server in target.servers]).pick
    built[name] = result
    return result


def _target(
    name: str, service: TCPService, transports: Mapping[str, TCPServersTransport]
) -> TcpTarget:
    balancer = service.load_balancer
    assert balancer is not None
    transport = transports.get(balancer.servers_transport) if balancer.servers_transport else None
    # The service's own (deprecated) fields win over its serversTransport, as in Traefik.
    proxy = balancer.proxy_protocol or (transport.proxy_protocol if transport else None)
    delay = balancer.termination_delay
    if delay is None:
        delay = transport.termination_delay if transport else _DEFAULT_TERMINATION_DELAY
    return TcpTarget(
        name=name,
        servers=tuple(split_host_port(server.address) for server in balancer.servers),
        proxy_protocol=proxy.version if proxy is not None else 0,
        termination_delay=delay,
        dial_timeout=transport.dial_timeout if transport else _DEFAULT_DIAL_TIMEOUT,
    )


def split_host_port(address: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` → (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"invalid server address {address!r}: expected host:port")
    return host.strip("[]"), int(port)
