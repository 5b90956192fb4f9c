"""The aggregator's checks: every router, service, middleware and transport of one merge
judged, its problems recorded in the `Merge` (critical ones disable the object, the others
are warnings), and whatever depends on a disabled object disabled with it.

The list of checks, with their messages, is docs/providers-file.md "What the aggregator
checks".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from proxynow.config.middlewares import Middleware, TCPMiddleware
from proxynow.control.middleware_support import build_problem, unsupported_middleware
from proxynow.edge.upstream.tls import transport_problem
from proxynow.snapshot import status_key
from proxynow.snapshot.merge import DEFAULT_TRANSPORT, INTERNAL_PROVIDER, PROTOCOLS, Merge
from proxynow.snapshot.qualify import DEFAULT_TLS

__all__ = ["check_all", "check_router", "missing"]


class _Graph:
    """Depth-first check of one kind of object that references its own kind (cycles)."""

    def __init__(
        self,
        merge: Merge,
        protocol: str,
        section: str,
        check: Callable[[_Graph, str, Any], None],
    ) -> None:
        self.merge = merge
        self.protocol = protocol
        self.section = section
        self.noun = section.rstrip("s")
        self.table = merge.table(protocol, section)
        self._check = check
        self._done: set[str] = set()
        self._stack: list[str] = []

    def run(self) -> None:
        for name in self.table:
            self.visit(name)

    def key(self, name: str) -> str:
        return status_key(self.protocol, self.section, name)

    def visit(self, name: str) -> None:
        if name in self._done:
            return
        self._stack.append(name)
        self._check(self, name, self.table[name])
        self._stack.pop()
        self._done.add(name)

    def reference(self, owner: str, name: str) -> None:
        """`owner` (in this graph) references `name` of the same kind: check it exists,
        detect a cycle, and disable `owner` if `name` is disabled."""
        if name in self._stack:
            cycle = [*self._stack[self._stack.index(name) :], name]
            message = "cycle: " + " -> ".join(cycle)
            for member in cycle[:-1]:
                self.merge.add(self.key(member), message)
            return
        if name not in self.table:
            self.merge.add(self.key(owner), missing(self.merge, self.protocol, self.section, name))
            return
        self.visit(name)
        if not self.merge.disabled(self.key(name)):
            return
        cause = self.merge.first_error(self.key(name))
        if (True, cause) not in self.merge.problems.get(self.key(owner), ()):  # same cycle
            self.merge.add(self.key(owner), f"{self.noun} {name} is disabled: {cause}")


def missing(merge: Merge, protocol: str, section: str, name: str) -> str:
    """The error for a reference to an object that is not in `protocol`'s `section`."""
    noun = section.rstrip("s")
    for other in PROTOCOLS:
        if other != protocol and name in merge.table(other, section):
            return (
                f"{noun} {name} is a {other.upper()} {noun}; "
                f"a {protocol.upper()} object needs a {protocol.upper()} {noun}"
            )
    return f"{noun} {name} does not exist"


def _check_transport(merge: Merge, protocol: str, key: str, balancer: Any) -> None:
    transport: str = getattr(balancer, "servers_transport", "")
    if not transport or transport == DEFAULT_TRANSPORT:
        return
    if transport not in merge.table(protocol, "serversTransports"):
        merge.add(key, f"serversTransport {transport} does not exist")
    elif merge.disabled(status_key(protocol, "serversTransports", transport)):
        merge.add(key, f"serversTransport {transport} is disabled")


def _unapplied_options(service: Any) -> list[str]:
    """Service options the data plane does not apply (yet), each as a status warning."""
    warnings: list[str] = []
    balancer = service.load_balancer
    strategy = getattr(balancer, "strategy", "wrr")
    if strategy == "hrw" and getattr(balancer, "sticky", None) is not None:
        warnings.append("sticky.cookie does not apply to strategy hrw (as in Traefik)")
    failover = getattr(service, "failover", None)
    if failover is not None and (failover.errors or failover.max_request_body_bytes is not None):
        warnings.append(
            "failover errors and maxRequestBodyBytes are not implemented yet: the fallback "
            "serves only while the main service has no live server"
        )
    return warnings


def _service_children(service: Any) -> list[str]:
    children: list[str] = []
    if service.weighted is not None:
        children.extend(child.name for child in service.weighted.services)
    mirroring = getattr(service, "mirroring", None)
    if mirroring is not None:
        children.append(mirroring.service)
        children.extend(mirror.name for mirror in mirroring.mirrors)
    failover = getattr(service, "failover", None)
    if failover is not None:
        children.extend((failover.service, failover.fallback))
    return children


def _check_service(graph: _Graph, name: str, service: Any) -> None:
    key = graph.key(name)
    balancer = service.load_balancer
    if balancer is not None:
        if not balancer.servers:
            graph.merge.add(key, "loadBalancer has no servers (it answers 503)", critical=False)
        _check_transport(graph.merge, graph.protocol, key, balancer)
    for warning in _unapplied_options(service):
        graph.merge.add(key, warning, critical=False)
    for child in _service_children(service):
        if child.endswith("@" + INTERNAL_PROVIDER):
            graph.merge.add(key, f"service {child} cannot be used inside another service")
        else:
            graph.reference(name, child)


def _check_middleware(graph: _Graph, name: str, middleware: Any) -> None:
    if isinstance(middleware, (Middleware, TCPMiddleware)):
        unsupported = unsupported_middleware(graph.protocol, middleware.kind)
        if unsupported is not None:
            message, fail_closed = unsupported
            graph.merge.add(graph.key(name), message, critical=fail_closed)
        else:
            problem = build_problem(middleware)
            if problem is not None:
                graph.merge.add(graph.key(name), problem)
    if not isinstance(middleware, Middleware):
        return
    problem = build_problem(middleware)
    if problem is not None:
        graph.merge.add(graph.key(name), problem)
    if middleware.chain is not None:
        for member in middleware.chain.middlewares:
            graph.reference(name, member)
    if middleware.errors is not None:
        problem = _service_problem(graph.merge, "http", middleware.errors.service)
        if problem:
            graph.merge.add(graph.key(name), problem)


def _service_problem(merge: Merge, protocol: str, name: str) -> str | None:
    """Why `name` cannot be used as a `protocol` service, or None when it can."""
    if not name:
        return "no service is set"
    provider = name.rpartition("@")[2]
    if provider == INTERNAL_PROVIDER:
        base = name.rpartition("@")[0]
        if protocol == "http" and base in merge.internal_services:
            return None
        return f"service {name} does not exist"
    return _reference_problem(merge, protocol, "services", name)


def _middleware_problem(merge: Merge, protocol: str, name: str) -> str | None:
    return _reference_problem(merge, protocol, "middlewares", name)


def _reference_problem(merge: Merge, protocol: str, section: str, name: str) -> str | None:
    """Why the object `name` of `section` cannot be referenced: missing or disabled."""
    if name not in merge.table(protocol, section):
        return missing(merge, protocol, section, name)
    key = status_key(protocol, section, name)
    if merge.disabled(key):
        return f"{section.rstrip('s')} {name} is disabled: {merge.first_error(key)}"
    return None


def _router_entry_points(merge: Merge, key: str, router: Any) -> list[str]:
    """Known entrypoints of the router; unknown ones are a warning, none at all an error."""
    defaults = merge.entry_points.defaults
    if key.startswith("udp.") and merge.entry_points.udp_defaults:
        defaults = merge.entry_points.udp_defaults
    requested: list[str] = list(router.entry_points) or list(defaults)
    valid = [name for name in requested if name in merge.entry_points.names]
    for name in requested:
        if name not in merge.entry_points.names:
            merge.add(key, f"entryPoint {name!r} does not exist", critical=False)
    if not valid:
        merge.add(key, "no valid entryPoint for this router")
    return valid


def _check_router_tls(merge: Merge, key: str, router: Any) -> None:
    if getattr(router, "tls", None) is None:
        return
    options = router.tls.options or DEFAULT_TLS
    if options in merge.tls["options"]:
        return
    conflict = merge.tls_conflicts.get(f"tls.options.{options}")
    merge.add(key, conflict or f"TLS options {options} do not exist")


def _router_middlewares(
    merge: Merge, protocol: str, name: str, router: Any, entry_points: list[str]
) -> list[str]:
    """The router's middlewares and, for HTTP, those its entrypoints prepend
    (`http.middlewares`; an unqualified name is the router's provider's, as in Traefik)."""
    own: list[str] = list(getattr(router, "middlewares", ()))
    if protocol != "http" or not merge.entry_points.http_middlewares:
        return own
    provider = name.rpartition("@")[2]
    prepended: list[str] = []
    for entry_point in entry_points:
        for middleware in merge.entry_points.middlewares_of(entry_point):
            qualified = middleware if "@" in middleware else f"{middleware}@{provider}"
            if qualified not in prepended:
                prepended.append(qualified)
    return prepended + own


def check_router(merge: Merge, protocol: str, name: str, router: Any) -> None:
    """Judge one router against the merge's services, middlewares, TLS options and
    entrypoints (what nothing else depends on: a build that changes routers only checks
    the changed ones)."""
    key = status_key(protocol, "routers", name)
    entry_points = _router_entry_points(merge, key, router)
    if protocol != "udp":
        error = merge.cache.rule_error(router.rule, protocol)
        if error is not None:
            merge.add(key, f"rule: {error}")
    if not router.service:
        merge.add(key, "the router has no service")
    else:
        problem = _service_problem(merge, protocol, router.service)
        if problem:
            merge.add(key, problem)
    for middleware in _router_middlewares(merge, protocol, name, router, entry_points):
        problem = _middleware_problem(merge, protocol, middleware)
        if problem:
            merge.add(key, problem)
    _check_router_tls(merge, key, router)
    if entry_points != list(router.entry_points):
        merge.table(protocol, "routers")[name] = merge.cache.derived(
            ("entryPoints", key, *entry_points),
            router,
            lambda: router.model_copy(update={"entry_points": entry_points}),
        )


def check_all(merge: Merge) -> None:
    for name, transport in merge.table("http", "serversTransports").items():
        problem = transport_problem(transport)
        if problem is not None:
            merge.add(status_key("http", "serversTransports", name), problem)
    for protocol in PROTOCOLS:
        _Graph(merge, protocol, "services", _check_service).run()
    _Graph(merge, "http", "middlewares", _check_middleware).run()
    _Graph(merge, "tcp", "middlewares", _check_middleware).run()
    for protocol in PROTOCOLS:
        for name, router in list(merge.table(protocol, "routers").items()):
            check_router(merge, protocol, name, router)
