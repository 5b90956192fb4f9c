"""Services to picks: load balancers, weighted, failover and mirroring, their servers and
transports, reused across graph builds.

`ServiceBuilding` is the part of the graph builder (edge/graph/build.py `_Builder`) that turns
a service name into its `Pick` (a callable that walks the service tree down to a
`Server`) and, when some level reads the request (cookie stickiness, hrw), its
`StickyPick`. A service is built once per graph and, when it is the very same
configuration object as last time with the same dependencies, its last pick is reused
(`CachedService`), so its balancer position and warm connections survive the swap.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from urllib.parse import urlsplit

from proxynow.config.dynamic import DynamicConfig, LoadBalancer, Service
from proxynow.config.static import StaticConfig
from proxynow.edge.balance.least import P2C, LeastTime, Tracked
from proxynow.edge.balance.sticky import (
    Rendezvous,
    StickyPick,
    sticky_failover,
    sticky_servers,
    sticky_services,
)
from proxynow.edge.balance.wrr import Balancer, Factory, nested
from proxynow.edge.graph.resources import CachedService, Compiled, GraphResources
from proxynow.edge.upstream.server import Mirror, Mirroring, Pick, Server
from proxynow.edge.upstream.transport import PoolKey, TransportOptions, resolve_transport

__all__ = ["ServiceBuilding"]

log = logging.getLogger(__name__)


class ServiceBuilding:
    """The service half of the graph builder (a mixin of `graph._Builder`)."""

    config: DynamicConfig
    static: StaticConfig
    res: GraphResources
    picks: dict[str, Pick | None]
    stickies: dict[str, StickyPick[Server]]
    resolving: set[str]
    previous: Compiled
    compiled: Compiled

    def service(self, name: str) -> Pick | None:
        """The pick function of a service, built once per graph; None if it cannot serve."""
        if name in self.picks:
            return self.picks[name]
        service = self.config.http.services.get(name)
        if service is None or name in self.resolving:
            return None
        self.resolving.add(name)
        try:
            pick = self._service(name, service)
        finally:
            self.resolving.discard(name)
        self.picks[name] = pick
        return pick

    def _service(self, name: str, service: Service) -> Pick | None:
        if service.load_balancer is not None:
            lb = service.load_balancer
            transports = self.config.http.servers_transports if lb.servers_transport else None
            return self._cached(name, service, (transports,), lambda: self._load_balancer(name, lb))
        if service.weighted is not None:
            children = [(self.service(c.name), float(c.weight)) for c in service.weighted.services]
            return self._cached(
                name, service, tuple(p for p, _ in children), lambda: self._weighted(name, children)
            )
        if service.mirroring is not None:
            return self._mirroring(name, service)
        if service.failover is not None:
            main = self.service(service.failover.service)
            fallback = self.service(service.failover.fallback)
            if main is None or fallback is None:
                return self._alias(
                    name, service.failover.service if main else service.failover.fallback
                )
            stickies = (
                self.stickies.get(service.failover.service),
                self.stickies.get(service.failover.fallback),
            )
            return self._cached(
                name,
                service,
                (main, fallback),
                lambda: (_failover(main, fallback), sticky_failover(main, fallback, *stickies)),
            )
        return None

    def _mirroring(self, name: str, service: Service) -> Pick | None:
        """The main service's pick, handing out its servers marked with the mirrors (a
        copy per server, made once), so that dispatch sends the mirrors their copies."""
        spec = service.mirroring
        assert spec is not None
        main = self.service(spec.service)
        if main is None:
            return None
        mirrors = [(m.name, self.service(m.name), m.percent) for m in spec.mirrors]
        live = [Mirror(mirror, pick, percent) for mirror, pick, percent in mirrors if pick]
        sticky = self.stickies.get(spec.service)
        depends = (main, sticky, *(pick for _, pick, _ in mirrors))

        def build() -> tuple[Pick, StickyPick[Server] | None]:
            mirroring = Mirroring(live, spec.max_body_size, spec.mirror_body)
            return _mirrored(main, sticky, mirroring)

        return self._cached(name, service, depends, build)

    def _alias(self, name: str, target: str) -> Pick | None:
        """Serve service `target` as `name` (its pick and its stickiness)."""
        pick = self.service(target)
        sticky = self.stickies.get(target)
        if sticky is not None:
            self.stickies[name] = sticky
        return pick

    def _cached(
        self,
        name: str,
        service: Service,
        depends: tuple[object, ...],
        build: Callable[[], tuple[Pick, StickyPick[Server] | None]],
    ) -> Pick:
        """The last build's pick (and stickiness) of `name` if it came from this very
        service object and the same dependencies (so its servers and balancer are the
        same); else `build()`."""
        known = self.previous.services.get(name)
        if (
            known is None
            or known.service is not service
            or len(known.depends) != len(depends)
            or any(a is not b for a, b in zip(known.depends, depends, strict=True))
        ):
            known = CachedService(service, depends, *build())
        self.compiled.services[name] = known
        if known.sticky is not None:
            self.stickies[name] = known.sticky
        assert known.pick is not None
        return known.pick

    def _weighted(
        self, name: str, children: list[tuple[Pick | None, float]]
    ) -> tuple[Pick, StickyPick[Server] | None]:
        service = self.config.http.services[name]
        assert service.weighted is not None
        live = [(pick, weight) for pick, weight in children if pick is not None]
        # The children's names, for health propagation (`healthCheck: {}`).
        names = [c.name for c in service.weighted.services]
        keys = [key for key, (pick, _) in zip(names, children, strict=True) if pick is not None]
        identity = tuple((c.name, c.weight) for c in service.weighted.services)
        balancer = self.res.balancers.get(name, identity, live, keys)
        sticky = service.weighted.sticky
        cookie = sticky.cookie if sticky is not None else None
        named = [
            (key, pick, self.stickies.get(key)) for key, (pick, _) in zip(keys, live, strict=True)
        ]
        return nested(balancer), sticky_services(balancer, cookie, name, named)

    def _load_balancer(self, name: str, lb: LoadBalancer) -> tuple[Pick, StickyPick[Server] | None]:
        options = self._transport(lb.servers_transport)
        servers: list[tuple[Server, float]] = []
        for spec in lb.servers:
            server = self._server(name, spec.url, spec.preserve_path, lb.pass_host_header, options)
            if server is not None:
                if lb.passive_health_check is not None:
                    pool = self.res.health.passive.watch(
                        name, spec.url, server.pool, lb.passive_health_check
                    )
                    server = replace(server, pool=pool)
                servers.append((server, float(spec.weight)))
        identity = (lb.strategy, tuple((s.url, s.weight) for s in lb.servers))
        keys = [server.url for server, _ in servers]
        factory: Factory[Server] = _STRATEGIES.get(lb.strategy, Balancer)
        balancer = self.res.balancers.get(name, identity, servers, keys, factory)
        if isinstance(balancer, Tracked):
            # Hand out servers that carry their load (the balancer's, kept across swaps).
            loads = balancer.loads
            servers = [(replace(s, load=loads[i]), w) for i, (s, w) in enumerate(servers)]
            balancer.rebind([s for s, _ in servers])
        cookie = lb.sticky.cookie if lb.sticky is not None else None
        # hrw with a cookie: a warning in the service's status.
        if lb.strategy == "hrw":
            return balancer.pick, Rendezvous(balancer, servers)
        if cookie is None:
            return balancer.pick, None
        return balancer.pick, sticky_servers(balancer, cookie, name, [s for s, _ in servers])

    def _server(
        self, service: str, url: str, preserve: bool, pass_host: bool, options: TransportOptions
    ) -> Server | None:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            log.warning("service %s: invalid server URL %r", service, url)
            return None
        scheme = "https" if parts.scheme == "https" else "http"
        host = parts.hostname or ""
        if not host:
            return None
        # HTTP/2 to h2c:// servers, and to https:// ones that choose it by ALPN (Traefik's
        # smart round tripper); upgrades always over HTTP/1.1, from a pool of their own.
        http2 = parts.scheme == "h2c" or (scheme == "https" and not options.disable_http2)
        key = PoolKey(scheme, host, port or (443 if scheme == "https" else 80), options, http2)
        upgrades = self.res.pools.get(replace(key, http2=False)) if http2 else None
        prefix = parts.path.rstrip("/") if preserve else ""
        return Server(
            url=url,
            service=service,
            pool=self.res.pools.get(key),
            upgrade_pool=upgrades,
            host_header=parts.netloc.rpartition("@")[2].encode("idna"),
            pass_host_header=pass_host,
            path_prefix=prefix.encode("ascii", "replace"),
            response_header_timeout=options.response_header_timeout,
        )

    def _transport(self, name: str) -> TransportOptions:
        return resolve_transport(self.static, self.config.http.servers_transports, name)


_STRATEGIES: dict[str, Factory[Server]] = {"p2c": P2C, "leasttime": LeastTime}


def _mirrored(
    main: Pick, sticky: StickyPick[Server] | None, mirroring: Mirroring
) -> tuple[Pick, StickyPick[Server] | None]:
    """`main`'s pick (and stickiness) giving out its servers marked with `mirroring`."""
    marked: dict[int, Server] = {}  # id(server) → its copy with the mirrors

    def mark(server: Server | None) -> Server | None:
        if server is None:
            return None
        copy = marked.get(id(server))
        if copy is None or copy.url != server.url:
            copy = marked[id(server)] = replace(server, mirroring=mirroring)
        return copy

    def pick() -> Server | None:
        return mark(main())

    if sticky is None:
        return pick, None
    return pick, lambda ex: mark(sticky(ex))


def _failover(main: Pick, fallback: Pick) -> Pick:
    """Traefik's failover: the main service while it has a live server, else the fallback
    (whose pick is None in turn when it has none: 503)."""

    def pick() -> Server | None:
        server = main()
        return server if server is not None else fallback()

    return pick
