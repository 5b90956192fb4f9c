"""Compile a snapshot into the worker's immutable RouterGraph.

`build_graph` runs in the worker whenever a snapshot arrives. It resolves everything a
request would otherwise look up by name: per HTTP entrypoint a compiled `RouteTable` whose
targets carry the router name, its compiled middleware chain, a ready `pick()` that walks
the service tree down to a `Server` (built by edge/graph/services.py), and the metrics object to
count into. Servers hold their upstream pool and the request-shaping facts (Host to send,
path prefix, timeouts).

Mutable per-worker state (balancer cursors, pools, metrics) is not part of the graph: it is
fetched from the worker's registries by name while building, so an unchanged service keeps
its balancer position and its warm connections across graph swaps.

A change must cost what changed, not the size of the configuration: the worker stalls every
request while it builds. So the resources also keep what the last build compiled, keyed by
the configuration object it came from (compared by identity: `SnapshotDelta.apply` hands an
unchanged router, service or middleware table over as the same object): parsed rules by
rule text, each service's pick, each router's routes, and per entrypoint a `TableBuilder`
that patches the route table instead of compiling it again. A full snapshot (new objects
throughout) simply rebuilds everything, which is what a first build costs.

A change can still be large (20,000 new routers in one write). `build_graph_steps` is the
same build taken a slice at a time: a generator that yields after each router compiled and
each route placed (rules/incremental.py) and returns the graph. The worker drives it from
its event loop and serves requests between slices (edge/graph/state.py `apply_sliced`), with the
old graph, until the new one is swapped in. `build_graph` runs it in one go.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from proxynow.config.dynamic import DynamicConfig, Router
from proxynow.config.static import StaticConfig
from proxynow.edge.balance.sticky import StickyPick
from proxynow.edge.graph.resources import CachedRouter, Compiled, GraphResources
from proxynow.edge.graph.services import ServiceBuilding
from proxynow.edge.graph.target import HttpTarget, RouterGraph
from proxynow.edge.http.header_labels import request_hook
from proxynow.edge.http.middlewares import Reply, compile_chain, entrypoint_redirect
from proxynow.edge.http.middlewares.base import Chain, RequestHook, ending_with, starting_with
from proxynow.edge.tcp.routing import build_tcp_routing
from proxynow.edge.tls.contexts import SniTable, build_tls, options_by_host
from proxynow.edge.upstream.server import Pick, Server, no_server
from proxynow.rules import (
    Node,
    Route,
    RouteTable,
    RuleError,
    parse_rule,
    provider_rank,
)
from proxynow.rules.incremental import Steps, TableBuilder, finish

if TYPE_CHECKING:
    from proxynow.snapshot import Snapshot, SnapshotDelta

__all__ = [
    "GraphResources",
    "HttpTarget",
    "Pick",
    "RouterGraph",
    "Server",
    "build_graph",
    "build_graph_steps",
    "empty_graph",
    "http_entrypoints",
]

log = logging.getLogger(__name__)

# Go's http.DefaultMaxIdleConnsPerHost, which a dynamic serversTransport with 0 gets.
_CATCH_ALL = "PathPrefix(`/`)"
_SPARE_RULES = 64
_TCP_TABLES = (
    ("tcp", "routers"),
    ("tcp", "services"),
    ("tcp", "middlewares"),
    ("tcp", "servers_transports"),
)


# The internal service a router uses when its middlewares do all the work (Traefik's
# redirect idiom): what gets through them is answered 418 with no body, as Traefik does.
NOOP = "noop@internal"
_NOOP_REPLY = Reply(418)


def _noop(exchange: object) -> Reply:
    return _NOOP_REPLY


_Tables = tuple[dict[str, RouteTable[HttpTarget]], dict[str, RouteTable[HttpTarget]]]
"""Route tables per entrypoint: (plain HTTP, TLS)."""


def http_entrypoints(static: StaticConfig) -> list[str]:
    """Entrypoints that can serve HTTP (every TCP one; UDP ones cannot)."""
    return [n for n, ep in static.entry_points.items() if not ep.address.endswith("/udp")]


def empty_graph(static: StaticConfig, resources: GraphResources | None = None) -> RouterGraph:
    """A graph with no routers: every request gets a 404."""
    return build_graph(None, static, resources)


def build_graph(
    snapshot: Snapshot | None,
    static: StaticConfig,
    resources: GraphResources | None = None,
    delta: SnapshotDelta | None = None,
) -> RouterGraph:
    """Compile `snapshot` for this worker; `resources` are the worker's registries. With
    `delta` (what made `snapshot` out of the one the last build compiled), only what it
    touches is compiled again, when the configuration allows (see `_Builder.patch`)."""
    return finish(build_graph_steps(snapshot, static, resources, delta))


def build_graph_steps(
    snapshot: Snapshot | None,
    static: StaticConfig,
    resources: GraphResources | None = None,
    delta: SnapshotDelta | None = None,
) -> Steps[RouterGraph]:
    """`build_graph` a slice at a time (see the module's docstring). Nothing a request
    reads changes before the end; closing the generator early (or an error) leaves the
    caches to be rebuilt from scratch next time."""
    config = snapshot.config if snapshot is not None else DynamicConfig()
    builder = _Builder(config, static, resources or GraphResources())
    try:
        patched = (yield from builder.patch(delta)) if delta is not None else None
        http, https = patched or (yield from builder.tables())
    except BaseException:
        builder.res.compiled = Compiled(None)  # half-updated caches: start afresh next time
        raise
    builder.compiled.version = snapshot.version if snapshot is not None else 0
    tcp = builder.previous.tcp
    if patched is None or tcp is None or delta is None or not _same_tcp(delta):
        tcp = build_tcp_routing(config, http_entrypoints(static), builder.res.metrics)
    builder.compiled.tcp = tcp
    # An entrypoint with `http.tls` terminates TLS even before it has a router (404 inside).
    tls_entrypoints = frozenset(
        [ep for ep, table in https.items() if table.route_names]
        + list(tcp.tls_tables)
        + list(builder.tls_entrypoints)
    )
    sni: dict[str, SniTable] = {}
    if tls_entrypoints:
        builder.tcp_tls_options()
        contexts = builder.res.contexts
        for ep in tls_entrypoints:
            hosts = options_by_host(builder.tls_options.get(ep, ()))
            sni[ep] = build_tls(config, hosts, contexts)
        contexts.retain_used()
    return RouterGraph(
        version=snapshot.version if snapshot is not None else 0,
        http=http,
        https=https,
        tcp=tcp,
        tls_entrypoints=tls_entrypoints,
        sni=sni,
    )


class _Builder(ServiceBuilding):
    def __init__(self, config: DynamicConfig, static: StaticConfig, res: GraphResources) -> None:
        self.config = config
        self.static = static
        self.res = res
        self.picks: dict[str, Pick | None] = {}
        # An errors middleware reaches a service of its own, which a router's cache does not
        # watch: with one in the configuration, routers with middlewares are recompiled.
        self.errors_pages = any(m.errors is not None for m in config.http.middlewares.values())
        # Services that pick by the request (cookie stickiness or hrw) somewhere in their tree.
        self.stickies: dict[str, StickyPick[Server]] = {}
        self.resolving: set[str] = set()
        self.entrypoints = http_entrypoints(static)
        self.entrypoint_set = frozenset(self.entrypoints)
        defaults = [n for n in self.entrypoints if static.entry_points[n].as_default]
        self.default_entrypoints = defaults or self.entrypoints
        self.tls_entrypoints = {n for n in self.entrypoints if static.entry_points[n].http.tls}
        # Entrypoint → its `http.middlewares`, prepended to every router on it (Traefik).
        self.entrypoint_middlewares = {
            n: tuple(static.entry_points[n].http.middlewares)
            for n in self.entrypoints
            if static.entry_points[n].http.middlewares
        }
        # (parsed rule, TLS options name) of the routers that name TLS options.
        self.tls_options: dict[str, list[tuple[Node, str]]] = {}
        self.label_hook: RequestHook | None = None  # headerLabels' (see `labelled`)
        previous = res.compiled
        if previous.static is not static:
            previous = Compiled(static)
        self.previous = previous
        # What this build compiled: becomes `res.compiled` (dropping what left the config).
        self.compiled = Compiled(static, tables=previous.tables, redirects=previous.redirects)

    def tables(self) -> Steps[_Tables]:
        plain: dict[str, list[Route[HttpTarget]]] = {n: [] for n in self.entrypoints}
        secure: dict[str, list[Route[HttpTarget]]] = {n: [] for n in self.entrypoints}
        rules: dict[str, Node | None] = {}
        users = self.compiled.users
        for name, router in self.config.http.routers.items():
            users.setdefault(router.service, set()).add(name)
            for ep, tls, route in self.router_routes(name, router, rules):
                (secure if tls else plain)[ep].append(route)
                if tls:
                    assert not isinstance(route.rule, str)
                    self.note_tls_options(ep, route.rule, router.tls.options if router.tls else "")
            yield
        for ep, routes in plain.items():
            redirect = self.redirect_route(ep)
            if redirect is not None:
                routes.append(redirect)
        self.res.balancers.retain(set(self.picks))
        self.res.rules = rules
        self.res.compiled = self.compiled
        self.compiled.patchable = not any(secure.values()) and all(
            service.load_balancer is not None for service in self.config.http.services.values()
        )
        http: dict[str, RouteTable[HttpTarget]] = {}
        https: dict[str, RouteTable[HttpTarget]] = {}
        for ep, routes in plain.items():
            http[ep] = yield from self.table(ep, False, routes)
        for ep, routes in secure.items():
            https[ep] = yield from self.table(ep, True, routes)
        return http, https

    def patch(self, delta: SnapshotDelta) -> Steps[_Tables | None]:
        """The tables, compiling only the routers `delta` touches (changed or removed, or
        using a changed service); None when the full build is needed: another base, TLS
        routers, services built from other services, middleware or transport changes."""
        previous = self.previous
        if not self._can_patch(delta):
            return None
        compiled = self.compiled
        # The last build's caches are patched in place, not copied (two copies of a
        # thousand entries were a fifth of a one-router change): only builds read them,
        # and a build that fails or is abandoned drops them all (`build_graph_steps`).
        compiled.routers, compiled.services = previous.routers, previous.services
        compiled.users, compiled.patchable = previous.users, True
        dirty: set[str] = set()
        services = delta.tables.get(("http", "services"))
        for name in (*services.upserts, *services.removed) if services else ():
            compiled.services.pop(name, None)
            dirty.update(previous.users.get(name, ()))
        routers = delta.tables.get(("http", "routers"))
        if routers is not None:
            dirty.update(routers.upserts)
            dirty.update(routers.removed)
        added: dict[tuple[str, bool], list[Route[HttpTarget]]] = {}
        removed: dict[tuple[str, bool], list[str]] = {}
        for name in dirty:
            self.recompile(name, added, removed)
            yield
        if services:
            self.res.balancers.retain(set(compiled.services))
        self.res.compiled = compiled
        plain: dict[str, RouteTable[HttpTarget]] = {}
        secure: dict[str, RouteTable[HttpTarget]] = {}
        for ep in self.entrypoints:
            plain[ep] = yield from self.patch_table(ep, False, added, removed)
            secure[ep] = yield from self.patch_table(ep, True, added, removed)
        return plain, secure

    def _can_patch(self, delta: SnapshotDelta) -> bool:
        previous, http = self.previous, self.config.http
        if previous is not self.res.compiled or previous.version != delta.base:
            return False
        if not previous.patchable or self.tls_entrypoints:
            return False
        # Parsed rules of removed routers stay until a full build: bound them.
        if len(self.res.rules) > 2 * len(http.routers) + _SPARE_RULES:
            return False
        allowed = {("http", "routers"), ("http", "services"), *_TCP_TABLES}
        if not set(delta.tables) <= allowed:
            return False
        routers = delta.tables.get(("http", "routers"))
        if routers is not None and any(r.tls is not None for r in routers.upserts.values()):
            return False
        services = delta.tables.get(("http", "services"))
        upserts = services.upserts.values() if services is not None else ()
        return all(service.load_balancer is not None for service in upserts)

    def recompile(
        self,
        name: str,
        added: dict[tuple[str, bool], list[Route[HttpTarget]]],
        removed: dict[tuple[str, bool], list[str]],
    ) -> None:
        """Take router `name`'s old routes out and compile its new ones (if it still exists)."""
        old = self.previous.routers.get(name)
        users = self.compiled.users
        if old is not None:
            for ep, tls, _ in old.routes:
                removed.setdefault((ep, tls), []).append(name)
            users.get(old.router.service, set()).discard(name)
            del self.compiled.routers[name]
        router = self.config.http.routers.get(name)
        if router is None:
            return
        users.setdefault(router.service, set()).add(name)
        for ep, tls, route in self.router_routes(name, router, self.res.rules):
            added.setdefault((ep, tls), []).append(route)

    def patch_table(
        self,
        ep: str,
        tls: bool,
        added: dict[tuple[str, bool], list[Route[HttpTarget]]],
        removed: dict[tuple[str, bool], list[str]],
    ) -> Steps[RouteTable[HttpTarget]]:
        builder = self.compiled.tables.get((ep, tls))
        if builder is None:
            builder = self.compiled.tables[ep, tls] = TableBuilder("http")
        return builder.patch_steps(added.get((ep, tls), []), removed.get((ep, tls), []))

    def table(
        self, ep: str, tls: bool, routes: list[Route[HttpTarget]]
    ) -> Steps[RouteTable[HttpTarget]]:
        builder = self.compiled.tables.get((ep, tls))
        if builder is None:
            builder = self.compiled.tables[ep, tls] = TableBuilder("http")
        return builder.build_steps(routes)

    def router_routes(
        self, name: str, router: Router, rules: dict[str, Node | None]
    ) -> tuple[tuple[str, bool, Route[HttpTarget]], ...]:
        """The (entrypoint, tls, route) of one router: the last build's when neither the
        router, its service's pick nor (if it uses any) the middleware table changed."""
        pick = no_server if router.service == NOOP else self.service(router.service)
        uses = router.middlewares or self.entrypoint_middlewares
        middlewares = self.config.http.middlewares if uses else None
        cached = self.previous.routers.get(name)
        if (
            cached is not None
            and not (middlewares is not None and self.errors_pages)
            and cached.router is router
            and cached.pick is pick
            and cached.middlewares is middlewares
        ):
            rules[router.rule] = self.res.rules.get(router.rule)
            self.compiled.routers[name] = cached
            return cached.routes
        routes = self.compile_router(name, router, pick, rules)
        self.compiled.routers[name] = CachedRouter(router, pick, middlewares, routes)
        return routes

    def compile_router(
        self, name: str, router: Router, pick: Pick | None, rules: dict[str, Node | None]
    ) -> tuple[tuple[str, bool, Route[HttpTarget]], ...]:
        previous, rule = self.res.rules, router.rule
        node = rules[rule] = previous[rule] if rule in previous else _parse(name, rule)
        if node is None or pick is None:
            return ()
        routes: list[tuple[str, bool, Route[HttpTarget]]] = []
        own = tuple(router.middlewares)
        for ep in router.entry_points or self.default_entrypoints:
            if ep not in self.entrypoint_set:
                continue
            tls = router.tls is not None or ep in self.tls_entrypoints
            stats = self.res.metrics.target(ep, name, router.service)
            middlewares = self.prepended(name, ep) + own
            chain = compile_chain(
                name, middlewares, self.config.http.middlewares, tls, self.res.pools, self.service
            )
            if router.service == NOOP:  # answered here, after the router's middlewares
                chain = ending_with(chain, _noop)
            chain = self.labelled(chain)
            sticky = self.stickies.get(router.service)
            target = HttpTarget(name, router.service, middlewares, pick, stats, chain, sticky)
            route = Route(name, node, target, router.priority, provider_rank(name), rule)
            routes.append((ep, tls, route))
        return tuple(routes)

    def labelled(self, chain: Chain | None) -> Chain | None:
        """`chain` with headerLabels' request hook first, when they are configured (only
        then does a request read those headers)."""
        table = self.res.metrics.header_labels
        if table is None:
            return chain
        if self.label_hook is None:
            self.label_hook = request_hook(table)
        return starting_with(chain, self.label_hook)

    def prepended(self, router: str, ep: str) -> tuple[str, ...]:
        """The middlewares entrypoint `ep` puts before every router's own
        (`http.middlewares`); an unqualified name is the router's provider's."""
        names = self.entrypoint_middlewares.get(ep)
        if not names:
            return ()
        provider = router.rpartition("@")[2]
        return tuple(name if "@" in name else f"{name}@{provider}" for name in names)

    def note_tls_options(self, ep: str, node: Node, options: str) -> None:
        """Remember which TLS options the hosts of a TLS router ask for on `ep`; a router
        without its own gets the entrypoint's `http.tls.options` (Traefik's default)."""
        if not options:
            ep_tls = self.static.entry_points[ep].http.tls
            options = ep_tls.options if ep_tls is not None else ""
        if options:
            self.tls_options.setdefault(ep, []).append((node, options))

    def tcp_tls_options(self) -> None:
        """TCP routers terminating TLS with `tls.options`: their HostSNI names."""
        for router in self.config.tcp.routers.values():
            tls = router.tls
            if tls is None or tls.passthrough or not tls.options:
                continue
            try:
                node = parse_rule(router.rule, "tcp")
            except RuleError:
                continue  # logged by the TCP routing build
            for ep in router.entry_points or self.entrypoints:
                if ep in self.static.entry_points:
                    self.tls_options.setdefault(ep, []).append((node, tls.options))

    def redirect_route(self, ep: str) -> Route[HttpTarget] | None:
        """Traefik's `<ep>-to-<to>` catch-all router for an entrypoint redirection."""
        http = self.static.entry_points[ep].http
        spec = http.redirections.entry_point if http.redirections is not None else None
        if spec is None:
            return None
        port = spec.to if spec.to.isdigit() else str(self._port(spec.to))
        name = f"{ep}-to-{spec.to}@internal"
        known = self.compiled.redirects.get(ep)
        if known is not None and known.source == port:
            return known
        chain = self.labelled(entrypoint_redirect(spec.scheme, port, spec.permanent))
        stats = self.res.metrics.target(ep, name, NOOP)
        target = HttpTarget(name, NOOP, (), no_server, stats, chain)
        node = parse_rule(_CATCH_ALL, "http")
        # `source` is the rule's text only for its length (the default priority); here it
        # also records the port, which is what makes this route differ from the last one.
        route = Route(
            name, node, target, spec.priority or len(_CATCH_ALL), provider_rank(name), port
        )
        self.compiled.redirects[ep] = route
        return route

    def _port(self, entrypoint: str) -> int:
        known = self.res.ports.get(entrypoint)
        if known is not None:
            return known
        static = self.static.entry_points.get(entrypoint)
        if static is None:
            log.warning("redirection to unknown entrypoint %s", entrypoint)
            return 0
        return int(static.address.rpartition(":")[2].split("/")[0] or 0)


def _same_tcp(delta: SnapshotDelta) -> bool:
    """True when `delta` leaves what TCP routing is built from alone."""
    return delta.tls is None and not any(key in delta.tables for key in _TCP_TABLES)


def _parse(name: str, rule: str) -> Node | None:
    try:
        return parse_rule(rule, "http")
    except RuleError as exc:
        log.warning("router %s: %s", name, exc)
        return None


def describe(graph: RouterGraph) -> dict[str, Any]:
    """Route names per entrypoint in evaluation order (for debugging and tests)."""
    return {ep: list(table.route_names) for ep, table in graph.http.items()}
