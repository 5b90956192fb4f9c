"""Merge the providers' configurations into versioned snapshots, isolating errors per object.

Two layers:

- `build_snapshot` is pure: it takes the latest `ProviderUpdate` of every provider and
  returns a `Snapshot`. It qualifies every name `name@provider`, rewrites every reference
  to a qualified name (an unqualified reference means "in my own provider"), and checks
  each router, service and middleware. An object whose own definition or reference is
  wrong is disabled with its errors; an object that depends on a disabled one is disabled
  too, with an error naming the cause. Everything else serves. The checks are listed in
  docs/providers-file.md ("What the aggregator checks").
- `Aggregator` is the asyncio shell: providers `submit` complete configurations, it keeps
  only the latest per provider, drops unchanged ones, and publishes at most one snapshot
  per throttle window (the first change after a quiet period is published at once; what
  arrives during the window is coalesced into one snapshot at its end). Nothing queues:
  the state is one update per provider and one "dirty" flag.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from proxynow.config.dynamic import (
    DynamicConfig,
    HTTPConfig,
    TCPConfig,
    TLSConfig,
    TLSOptions,
    UDPConfig,
)
from proxynow.config.middlewares import Middleware, TCPMiddleware
from proxynow.edge.middleware_support import unsupported_middleware
from proxynow.edge.upstream_tls import transport_problem
from proxynow.providers.base import SECTIONS, ProviderUpdate
from proxynow.qualify import DEFAULT_TLS, QUALIFIERS, qualify
from proxynow.rules import RuleError, parse_rule
from proxynow.snapshot import ObjectStatus, Snapshot, status_key

__all__ = [
    "DEFAULT_THROTTLE",
    "INTERNAL_PROVIDER",
    "INTERNAL_SERVICES",
    "Aggregator",
    "BuildCache",
    "EntryPoints",
    "build_snapshot",
    "qualify",
]

log = logging.getLogger(__name__)

DEFAULT_THROTTLE = 0.1
"""Seconds between two published snapshots (`providers.providersThrottleDuration`)."""

INTERNAL_PROVIDER = "internal"
INTERNAL_SERVICES = frozenset({"api", "dashboard", "ping", "prometheus", "noop"})
"""Reserved `name@internal` services; the control plane enables those it implements."""

DEFAULT_TRANSPORT = "default@internal"

_PROTOCOLS = ("http", "tcp", "udp")
_CONFIG_TYPES = {"http": HTTPConfig, "tcp": TCPConfig, "udp": UDPConfig}


@dataclass(frozen=True, slots=True)
class EntryPoints:
    """The static entrypoints a router may name, and those it gets when it names none."""

    names: frozenset[str]
    defaults: tuple[str, ...]

    @classmethod
    def from_flags(cls, as_default: Mapping[str, bool]) -> EntryPoints:
        """From `{name: asDefault}`: defaults are the `asDefault` ones, else all of them."""
        names = sorted(as_default)
        marked = [name for name in names if as_default[name]]
        return cls(frozenset(names), tuple(marked or names))


# ---------------------------------------------------------------- the merge


class BuildCache:
    """What one `build_snapshot` can hand the next, for the objects still in use: rule
    checks by rule text, and objects derived from a provider's object (qualified, given
    default entrypoints) by that object's identity. A provider that hands over unchanged
    objects as the same objects (`DynamicFileLoader`, the Docker provider's cache) then
    gets the same derived objects back, so a change of one router of a thousand parses
    one rule and copies one router, and every later comparison is an identity check."""

    __slots__ = ("_known", "_objects", "_used", "_used_objects")

    def __init__(self) -> None:
        self._known: dict[tuple[str, str], str | None] = {}
        self._used: dict[tuple[str, str], str | None] = {}
        self._objects: dict[tuple[str, ...], tuple[Any, Any]] = {}
        self._used_objects: dict[tuple[str, ...], tuple[Any, Any]] = {}

    def rule_error(self, rule: str, kind: str) -> str | None:
        """Why `rule` does not parse as a `kind` rule; None when it does."""
        key = (kind, rule)
        if key in self._used:
            return self._used[key]
        if key in self._known:
            error = self._known[key]
        else:
            try:
                parse_rule(rule, "tcp" if kind == "tcp" else "http")
                error = None
            except RuleError as exc:
                error = str(exc)
        self._used[key] = error
        return error

    def derived(self, key: tuple[str, ...], source: Any, make: Callable[[], Any]) -> Any:
        """`make()`, or what it gave the last build for this very `source` object."""
        known = self._used_objects.get(key) or self._objects.get(key)
        result = known[1] if known is not None and known[0] is source else make()
        self._used_objects[key] = (source, result)
        return result

    def rotate(self) -> None:
        """End of a build: forget what it did not use."""
        self._known, self._used = self._used, {}
        self._objects, self._used_objects = self._used_objects, {}


@dataclass
class _Merge:
    """Scratch state of one `build_snapshot` call; never escapes it."""

    entry_points: EntryPoints
    internal_services: frozenset[str]
    cache: BuildCache = field(default_factory=BuildCache)
    tables: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)  # status key -> provider
    problems: dict[str, list[tuple[bool, str]]] = field(default_factory=dict)
    tls: dict[str, dict[str, Any]] = field(default_factory=dict)  # options / stores
    tls_conflicts: dict[str, str] = field(default_factory=dict)  # "tls.options.default" -> why

    def add(self, key: str, message: str, *, critical: bool = True) -> None:
        entries = self.problems.setdefault(key, [])
        if (critical, message) not in entries:
            entries.append((critical, message))

    def disabled(self, key: str) -> bool:
        return any(critical for critical, _ in self.problems.get(key, ()))

    def first_error(self, key: str) -> str:
        return next(message for critical, message in self.problems[key] if critical)

    def table(self, protocol: str, section: str) -> dict[str, Any]:
        return self.tables.setdefault((protocol, section), {})


def _collect(merge: _Merge, update: ProviderUpdate) -> None:
    provider = update.provider
    for protocol, section, attribute in SECTIONS:
        objects: Mapping[str, Any] = getattr(getattr(update.config, protocol), attribute)
        for name, obj in objects.items():
            qualified = f"{name}@{provider}"
            key = status_key(protocol, section, qualified)
            merge.owners[key] = provider
            merge.table(protocol, section)[qualified] = merge.cache.derived(
                ("qualified", key), obj, functools.partial(QUALIFIERS[section], obj, provider)
            )
            if "@" in name:
                merge.add(
                    key, f"name {name!r} must not contain '@' (it is reserved for references)"
                )
            for message in update.object_errors.get(f"{protocol}.{section}.{name}", ()):
                merge.add(key, message)


def _collect_tls(merge: _Merge, updates: Sequence[ProviderUpdate]) -> list[Any]:
    """Qualify TLS options and stores; `default` may come from one provider only."""
    certificates: list[Any] = []
    for kind in ("options", "stores"):
        table = merge.tls.setdefault(kind, {})
        default_from: list[str] = []
        for update in updates:
            for name, value in getattr(update.config.tls, kind).items():
                if name == DEFAULT_TLS:
                    default_from.append(update.provider)
                    table[name] = value
                else:
                    table[f"{name}@{update.provider}"] = value  # definitions always qualified
        if len(default_from) > 1:
            # As Traefik: no default at all, so whatever relies on it fails visibly.
            del table[DEFAULT_TLS]
            providers = ", ".join(default_from)
            merge.tls_conflicts[f"tls.{kind}.{DEFAULT_TLS}"] = (
                f"TLS {kind} {DEFAULT_TLS!r} are defined by several providers ({providers})"
            )
        elif not default_from and kind == "options":
            table[DEFAULT_TLS] = TLSOptions()
    for update in updates:
        certificates.extend(update.config.tls.certificates)
    return certificates


# ---------------------------------------------------------------- checks


class _Graph:
    """Depth-first check of one kind of object that references its own kind (cycles)."""

    def __init__(
        self,
        merge: _Merge,
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


def missing(merge: _Merge, protocol: str, section: str, name: str) -> str:
    """The error for a reference to an object that is not in `protocol`'s `section`."""
    noun = section.rstrip("s")
    for other in _PROTOCOLS:
        if other != protocol and name in merge.table(other, section):
            return (
                f"{noun} {name} is a {other.upper()} {noun}; "
                f"a {protocol.upper()} object needs a {protocol.upper()} {noun}"
            )
    return f"{noun} {name} does not exist"


def _check_transport(merge: _Merge, protocol: str, key: str, balancer: Any) -> None:
    transport: str = getattr(balancer, "servers_transport", "")
    if not transport or transport == DEFAULT_TRANSPORT:
        return
    if transport not in merge.table(protocol, "serversTransports"):
        merge.add(key, f"serversTransport {transport} does not exist")
    elif merge.disabled(status_key(protocol, "serversTransports", transport)):
        merge.add(key, f"serversTransport {transport} is disabled")


MIRRORING_NOT_APPLIED = (
    "mirroring is not implemented yet: requests go to the main service, the mirrors get none"
)


def _unapplied_options(service: Any) -> list[str]:
    """Service options the data plane does not apply (yet), each as a status warning."""
    warnings: list[str] = []
    balancer = service.load_balancer
    strategy = getattr(balancer, "strategy", "wrr")
    if strategy in ("p2c", "leasttime"):
        warnings.append(f"strategy {strategy} is not implemented yet: balanced as wrr")
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
    if getattr(service, "mirroring", None) is not None:
        graph.merge.add(key, MIRRORING_NOT_APPLIED, critical=False)
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
    if not isinstance(middleware, Middleware):
        return
    if middleware.chain is not None:
        for member in middleware.chain.middlewares:
            graph.reference(name, member)
    if middleware.errors is not None:
        problem = _service_problem(graph.merge, "http", middleware.errors.service)
        if problem:
            graph.merge.add(graph.key(name), problem)


def _service_problem(merge: _Merge, protocol: str, name: str) -> str | None:
    """Why `name` cannot be used as a `protocol` service, or None when it can."""
    if not name:
        return "no service is set"
    provider = name.rpartition("@")[2]
    if provider == INTERNAL_PROVIDER:
        base = name.rpartition("@")[0]
        if protocol == "http" and base in merge.internal_services:
            return None
        return f"service {name} does not exist"
    if name not in merge.table(protocol, "services"):
        return missing(merge, protocol, "services", name)
    key = status_key(protocol, "services", name)
    if merge.disabled(key):
        return f"service {name} is disabled: {merge.first_error(key)}"
    return None


def _middleware_problem(merge: _Merge, protocol: str, name: str) -> str | None:
    if name not in merge.table(protocol, "middlewares"):
        return missing(merge, protocol, "middlewares", name)
    key = status_key(protocol, "middlewares", name)
    if merge.disabled(key):
        return f"middleware {name} is disabled: {merge.first_error(key)}"
    return None


def _router_entry_points(merge: _Merge, key: str, router: Any) -> list[str]:
    """Known entrypoints of the router; unknown ones are a warning, none at all an error."""
    requested: list[str] = list(router.entry_points) or list(merge.entry_points.defaults)
    valid = [name for name in requested if name in merge.entry_points.names]
    for name in requested:
        if name not in merge.entry_points.names:
            merge.add(key, f"entryPoint {name!r} does not exist", critical=False)
    if not valid:
        merge.add(key, "no valid entryPoint for this router")
    return valid


def _check_router_tls(merge: _Merge, key: str, router: Any) -> None:
    if getattr(router, "tls", None) is None:
        return
    options = router.tls.options or DEFAULT_TLS
    if options in merge.tls["options"]:
        return
    conflict = merge.tls_conflicts.get(f"tls.options.{options}")
    merge.add(key, conflict or f"TLS options {options} do not exist")


def _check_router(merge: _Merge, protocol: str, name: str, router: Any) -> None:
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
    for middleware in getattr(router, "middlewares", ()):
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


def _check_all(merge: _Merge) -> None:
    for name, transport in merge.table("http", "serversTransports").items():
        problem = transport_problem(transport)
        if problem is not None:
            merge.add(status_key("http", "serversTransports", name), problem)
    for protocol in _PROTOCOLS:
        _Graph(merge, protocol, "services", _check_service).run()
    _Graph(merge, "http", "middlewares", _check_middleware).run()
    _Graph(merge, "tcp", "middlewares", _check_middleware).run()
    for protocol in _PROTOCOLS:
        for name, router in list(merge.table(protocol, "routers").items()):
            _check_router(merge, protocol, name, router)


# ---------------------------------------------------------------- assembling the snapshot


def _statuses(merge: _Merge) -> dict[str, ObjectStatus]:
    statuses: dict[str, ObjectStatus] = {}
    for key in sorted(merge.owners):
        problems = merge.problems.get(key, [])
        if any(critical for critical, _ in problems):
            status = "disabled"
        else:
            status = "warning" if problems else "enabled"
        errors = tuple(message for _, message in problems)
        statuses[key] = ObjectStatus(status, errors, merge.owners[key])  # type: ignore[arg-type]
    for key, message in sorted(merge.tls_conflicts.items()):
        statuses[key] = ObjectStatus("disabled", (message,), "")
    return statuses


def _split(merge: _Merge, protocol: str) -> tuple[Any, Any]:
    """The protocol's config of serving objects, and that of disabled ones."""
    serving: dict[str, dict[str, Any]] = {}
    disabled: dict[str, dict[str, Any]] = {}
    for proto, section, attribute in SECTIONS:
        if proto != protocol:
            continue
        serving[attribute], disabled[attribute] = {}, {}
        for name, obj in sorted(merge.table(protocol, section).items()):
            off = merge.disabled(status_key(protocol, section, name))
            (disabled if off else serving)[attribute][name] = obj
    config_type = _CONFIG_TYPES[protocol]
    return config_type(**serving), config_type(**disabled)


def build_snapshot(
    version: int,
    updates: Iterable[ProviderUpdate],
    entry_points: EntryPoints,
    internal_services: frozenset[str] = frozenset(),
    cache: BuildCache | None = None,
) -> Snapshot:
    """Merge the latest configuration of every provider into snapshot `version`; `cache`
    carries reusable work from one call to the next (one caller at a time)."""
    ordered = sorted(updates, key=lambda update: update.provider)
    merge = _Merge(entry_points, internal_services, cache or BuildCache())
    for update in ordered:
        _collect(merge, update)
    certificates = _collect_tls(merge, ordered)
    _check_all(merge)
    parts = {protocol: _split(merge, protocol) for protocol in _PROTOCOLS}
    tls = TLSConfig(
        certificates=certificates,
        options=dict(sorted(merge.tls["options"].items())),
        stores=dict(sorted(merge.tls["stores"].items())),
    )
    config = DynamicConfig(**{protocol: served for protocol, (served, _) in parts.items()}, tls=tls)
    disabled = DynamicConfig(**{protocol: off for protocol, (_, off) in parts.items()})
    merge.cache.rotate()
    return Snapshot(version, config, _statuses(merge), disabled)


# ---------------------------------------------------------------- the asyncio shell


Sleep = Callable[[float], Awaitable[None]]


class Aggregator:
    """Keeps the latest configuration per provider and publishes throttled snapshots.

    `throttle` is the minimum time between two published snapshots: a change that
    arrives after a quiet period is published immediately, changes that arrive within
    `throttle` of the last publication are coalesced and published together when it
    ends. `sleep` is injectable so tests can drive the throttle without a clock.
    """

    def __init__(
        self,
        entry_points: EntryPoints,
        publish: Callable[[Snapshot], None],
        *,
        throttle: float = DEFAULT_THROTTLE,
        internal_services: frozenset[str] = frozenset(),
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._entry_points = entry_points
        self._publish = publish
        self._throttle = throttle
        self._internal_services = internal_services
        self._sleep = sleep
        self._latest: dict[str, ProviderUpdate] = {}
        self._provider_errors: dict[str, tuple[str, ...]] = {}
        self._dirty = asyncio.Event()
        self._current = Snapshot.empty()
        self._cache = BuildCache()

    @property
    def current(self) -> Snapshot:
        """The last published snapshot (version 0, empty, before the first)."""
        return self._current

    @property
    def provider_errors(self) -> Mapping[str, tuple[str, ...]]:
        """Current provider-level errors, by provider (for the API)."""
        return dict(self._provider_errors)

    def submit(self, update: ProviderUpdate) -> None:
        """Take a provider's complete configuration; equal to the last one → ignored."""
        if update.provider == INTERNAL_PROVIDER or "@" in update.provider:
            raise ValueError(f"provider name {update.provider!r} is reserved or invalid")
        if self._latest.get(update.provider) == update:
            return
        self._latest[update.provider] = update
        self._dirty.set()

    def report_errors(self, provider: str, errors: Sequence[str]) -> None:
        """Record a provider's current errors; each new distinct error is logged once."""
        current = tuple(errors)
        previous = self._provider_errors.get(provider, ())
        for error in current:
            if error not in previous:
                log.error("provider %s: %s", provider, error)
        if previous and not current:
            log.info("provider %s: errors cleared", provider)
        if current:
            self._provider_errors[provider] = current
        else:
            self._provider_errors.pop(provider, None)

    async def run(self) -> None:
        """Publish snapshots until cancelled."""
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            await self._publish_latest()
            await self._sleep(self._throttle)

    async def _publish_latest(self) -> None:
        updates = list(self._latest.values())
        version = self._current.version + 1
        try:
            # Rule parsing for thousands of routers must not stall the control loop.
            snapshot = await asyncio.to_thread(
                build_snapshot,
                version,
                updates,
                self._entry_points,
                self._internal_services,
                self._cache,
            )
        except Exception:
            log.exception("building snapshot %d failed; keeping version %d", version, version - 1)
            return
        if snapshot.same_content(self._current):
            return
        _log_changes(self._current.statuses, snapshot.statuses)
        self._current = snapshot
        self._publish(snapshot)


def _log_changes(before: Mapping[str, ObjectStatus], after: Mapping[str, ObjectStatus]) -> None:
    """Log each object's errors once: when they appear or change, not on every snapshot."""
    for key, status in after.items():
        previous = before.get(key)
        if status.errors and (previous is None or previous.errors != status.errors):
            log.warning("%s is %s: %s", key, status.status, "; ".join(status.errors))
        elif not status.errors and previous is not None and previous.errors:
            log.info("%s is enabled again", key)
