"""The `@internal` routers and services that put the API and /ping on the data plane.

The API is served by the control plane on a loopback address only (proxynow/api/server.py);
the workers reach it as an ordinary service. `Internals.build` makes, from the static
configuration and that address, what Traefik's internal provider makes:

- the services `api@internal` and `ping@internal`, each a load balancer with one server,
  the control plane's address with a secret path prefix (`preservePath`), so that a
  worker forwards to it like to any backend and never waits on the control plane;
- with `api.insecure`, the router `api@internal`: ``PathPrefix(`<basePath>/api`)`` on the
  entrypoint `traefik`, priority `math.MaxInt - 1` as in Traefik;
- with `api.dashboard` (the default), the service `dashboard@internal`, and with
  `api.insecure` its router: ``PathPrefix(`<basePath>`)`` on `traefik`, priority
  `math.MaxInt - 2` as in Traefik. Traefik puts two middlewares on it (a redirect of `/`
  to `/dashboard/` and a strip of `/dashboard`); the control plane answers both itself
  (proxynow/api/dashboard.py), so the router has none. `api@internal` serves the
  dashboard too (`<basePath>/dashboard/`), as Traefik v3's does, for a user's router;
- with `ping` (unless `manualRouting`), the router `ping@internal`: ``PathPrefix(`/ping`)``
  on `ping.entryPoint`, priority `math.MaxInt`;
- with `metrics.prometheus`, the service `prometheus@internal` and (unless
  `manualRouting`) its router: ``PathPrefix(`/metrics`)`` on `metrics.prometheus.entryPoint`,
  priority `math.MaxInt`.

`Internals.apply` adds them to every snapshot the aggregator publishes, with the status
`enabled` and the provider `internal`. The same objects are handed over every time, so a
worker's snapshot delta never carries them twice.

`effective_static` adds the entrypoint `traefik` (`:8080`) when something is to be served
on it and it is not defined, as Traefik does; `router_entry_points` leaves it out of the
entrypoints a router without `entryPoints` gets, as Traefik does too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from proxynow.config.dynamic import LoadBalancer, Router, Server, Service
from proxynow.config.static import EntryPoint, Prometheus, StaticConfig
from proxynow.snapshot import ObjectStatus, Snapshot, status_key
from proxynow.snapshot.merge import INTERNAL_PROVIDER, EntryPoints

__all__ = [
    "API_PRIORITY",
    "DASHBOARD_PRIORITY",
    "DASHBOARD_SERVICE",
    "INTERNAL_ENTRYPOINT",
    "PING_PRIORITY",
    "PROMETHEUS_SERVICE",
    "Internals",
    "api_prefix",
    "base_path",
    "effective_static",
    "internal_services",
    "router_entry_points",
]

log = logging.getLogger(__name__)

INTERNAL_ENTRYPOINT = "traefik"
INTERNAL_ADDRESS = ":8080"
# Go's math.MaxInt and math.MaxInt - 1: nothing a user writes outranks them.
PING_PRIORITY = 2**63 - 1
API_PRIORITY = 2**63 - 2
DASHBOARD_PRIORITY = 2**63 - 3

API_SERVICE = f"api@{INTERNAL_PROVIDER}"
PING_SERVICE = f"ping@{INTERNAL_PROVIDER}"
DASHBOARD_SERVICE = f"dashboard@{INTERNAL_PROVIDER}"
PROMETHEUS_SERVICE = f"prometheus@{INTERNAL_PROVIDER}"


def _serves_on_internal(static: StaticConfig) -> bool:
    api = static.api is not None and static.api.insecure
    ping = (
        static.ping is not None
        and not static.ping.manual_routing
        and static.ping.entry_point == INTERNAL_ENTRYPOINT
    )
    prometheus = _prometheus(static)
    metrics = (
        prometheus is not None
        and not prometheus.manual_routing
        and prometheus.entry_point == INTERNAL_ENTRYPOINT
    )
    return api or ping or metrics


def _prometheus(static: StaticConfig) -> Prometheus | None:
    return static.metrics.prometheus if static.metrics is not None else None


def effective_static(static: StaticConfig) -> StaticConfig:
    """`static` with the entrypoint `traefik` on `:8080` when it is needed and missing."""
    if not _serves_on_internal(static) or INTERNAL_ENTRYPOINT in static.entry_points:
        return static
    internal = EntryPoint(address=INTERNAL_ADDRESS)
    entry_points = {**static.entry_points, INTERNAL_ENTRYPOINT: internal}
    return static.model_copy(update={"entry_points": entry_points})


def router_entry_points(static: StaticConfig) -> EntryPoints:
    """The entrypoints a router may name, and those it gets when it names none: the
    `asDefault` ones, else every one but `traefik` (which only serves the internals);
    UDP entrypoints only for UDP routers, which get all of them (Traefik's
    `getDefaultsEntrypoints` and UDP router manager)."""
    names = frozenset(static.entry_points)
    marked = sorted(name for name, ep in static.entry_points.items() if ep.as_default)
    candidates = [n for n in (marked or sorted(names)) if n != INTERNAL_ENTRYPOINT]
    udp = {name for name, ep in static.entry_points.items() if ep.protocol == "udp"}
    return EntryPoints(
        names,
        tuple(n for n in candidates if n not in udp),
        udp_defaults=tuple(sorted(udp)),
        http_middlewares=tuple(
            (name, tuple(ep.http.middlewares))
            for name, ep in sorted(static.entry_points.items())
            if ep.http.middlewares
        ),
    )


def internal_services(static: StaticConfig) -> frozenset[str]:
    """The `name@internal` services a router may use: those the control plane serves, and
    `noop@internal`, which is always there (the data plane answers it: 418, no body)."""
    names: set[str] = {"noop"}
    if static.api is not None:
        names.add("api")
        if static.api.dashboard:
            names.add("dashboard")
    if static.ping is not None:
        names.add("ping")
    if _prometheus(static) is not None:
        names.add("prometheus")
    return frozenset(names)


def base_path(static: StaticConfig) -> str:
    """`api.basePath` without its trailing slash (`/` → ``, `/x/` → `/x`)."""
    base = static.api.base_path if static.api is not None else "/"
    return "/" + base.strip("/") if base.strip("/") else ""


def api_prefix(static: StaticConfig) -> str:
    """`api.basePath` joined with `/api` (`/`, `/api` → `/api`; `/x/` → `/x/api`)."""
    return base_path(static) + "/api"


def _service(url: str) -> Service:
    return Service(load_balancer=LoadBalancer(servers=[Server(url=url, preserve_path=True)]))


@dataclass(frozen=True, slots=True)
class Internals:
    """The internal routers and services of one `proxynow run` (built once at start)."""

    routers: dict[str, Router] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)
    statuses: dict[str, ObjectStatus] = field(default_factory=dict)

    @classmethod
    def build(cls, static: StaticConfig, origin: str) -> Internals:
        """The internals for the control plane's API server at `origin` (its loopback URL
        with the secret prefix; the API under `/api`, ping under `/ping`)."""
        routers: dict[str, Router] = {}
        services: dict[str, Service] = {}
        if static.api is not None:
            services[API_SERVICE] = _service(f"{origin}/api")
            if static.api.insecure:
                routers[API_SERVICE] = Router(
                    entry_points=[INTERNAL_ENTRYPOINT],
                    service=API_SERVICE,
                    rule=f"PathPrefix(`{api_prefix(static)}`)",
                    priority=API_PRIORITY,
                )
            if static.api.dashboard:
                services.update(_dashboard(static, origin))
                routers.update(_dashboard_router(static))
        if static.ping is not None:
            services[PING_SERVICE] = _service(f"{origin}/ping")
            routers.update(_ping_router(static))
        if _prometheus(static) is not None:
            services[PROMETHEUS_SERVICE] = _service(f"{origin}/metrics")
            routers.update(_prometheus_router(static))
        enabled = ObjectStatus("enabled", (), INTERNAL_PROVIDER)
        statuses = {status_key("http", "routers", name): enabled for name in routers}
        statuses.update({status_key("http", "services", name): enabled for name in services})
        return cls(routers, services, statuses)

    def apply(self, snapshot: Snapshot) -> Snapshot:
        """`snapshot` with the internal routers and services added."""
        if not self.routers and not self.services:
            return snapshot
        http = snapshot.config.http.model_copy(
            update={
                "routers": {**snapshot.config.http.routers, **self.routers},
                "services": {**snapshot.config.http.services, **self.services},
            }
        )
        config = snapshot.config.model_copy(update={"http": http})
        statuses = {**snapshot.statuses, **self.statuses}
        return Snapshot(snapshot.version, config, statuses, snapshot.disabled)


def _dashboard(static: StaticConfig, origin: str) -> dict[str, Service]:
    return {DASHBOARD_SERVICE: _service(f"{origin}/dashboard")}


def _dashboard_router(static: StaticConfig) -> dict[str, Router]:
    """Traefik's ``PathPrefix(`/`)`` (under `basePath`) on `traefik`, with `api.insecure`."""
    assert static.api is not None
    if not static.api.insecure:
        return {}
    rule = f"PathPrefix(`{base_path(static) or '/'}`)"
    router = Router(
        entry_points=[INTERNAL_ENTRYPOINT],
        service=DASHBOARD_SERVICE,
        rule=rule,
        priority=DASHBOARD_PRIORITY,
    )
    return {DASHBOARD_SERVICE: router}


def _ping_router(static: StaticConfig) -> dict[str, Router]:
    assert static.ping is not None
    ping = static.ping
    return _internal_router(static, "ping", ping.manual_routing, ping.entry_point, PING_SERVICE)


def _prometheus_router(static: StaticConfig) -> dict[str, Router]:
    prometheus = _prometheus(static)
    assert prometheus is not None
    return _internal_router(
        static, "metrics", prometheus.manual_routing, prometheus.entry_point, PROMETHEUS_SERVICE
    )


def _internal_router(
    static: StaticConfig, path: str, manual: bool, entrypoint: str, service: str
) -> dict[str, Router]:
    """The router of `/<path>` to `service` on `entrypoint` (none with `manualRouting`)."""
    if manual:
        return {}
    if entrypoint not in static.entry_points:
        log.error("%s: entryPoint %r does not exist; /%s is not served", path, entrypoint, path)
        return {}
    rule = f"PathPrefix(`/{path}`)"
    router = Router(entry_points=[entrypoint], service=service, rule=rule, priority=PING_PRIORITY)
    return {service: router}
