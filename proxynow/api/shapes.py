"""The control plane's current state in the JSON shapes of Traefik v3.7's API.

`View.build(static, snapshot, health, started)` is pure: from the static configuration,
the snapshot the workers serve (with the internal routers and services,
proxynow/api/internal.py) and the servers active health checks found down, it makes
every item the API lists, once per snapshot, so that a request only picks and pages.

An item is Traefik's: the object's configuration (proxynow/api/dump.py: camelCase,
`omitempty`, Go durations, secrets redacted) plus
- routers: `status`, `error` (the messages), `using` (the entrypoints it serves on),
  `name` (`x@provider`), `provider`, `priority` (the effective one: the rule's length
  when none is set; `-1` for a TCP ``HostSNI(`*`)``) and `priorityStr` (the same as a
  string, for JavaScript clients);
- services: `status`, `error`, `usedBy` (the routers naming it), `name`, `provider`,
  `type` (`loadbalancer`, `weighted`, `mirroring`, `failover`) and, for a serving load
  balancer, `serverStatus` (URL → `UP`, or `DOWN` while its health check fails);
- middlewares: `status`, `error`, `usedBy`, `name`, `provider`, `type` (lowercase).
Internal services show no configuration, as in Traefik (theirs has none; ours holds the
control plane's private address).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from proxynow import __version__
from proxynow.api.certificates import certificates as read_certificates
from proxynow.api.certificates import counts as certificate_counts
from proxynow.api.dump import dump, redact, redact_url
from proxynow.config.dynamic import DynamicConfig
from proxynow.config.static import StaticConfig
from proxynow.edge.upstream.health import HealthSet
from proxynow.snapshot import ObjectStatus, Snapshot, status_key
from proxynow.snapshot.merge import INTERNAL_PROVIDER

__all__ = ["KINDS", "RAW_KEYS", "View"]

Item = dict[str, Any]

KINDS: tuple[tuple[str, str], ...] = (
    ("http", "routers"),
    ("http", "services"),
    ("http", "middlewares"),
    ("tcp", "routers"),
    ("tcp", "services"),
    ("tcp", "middlewares"),
    ("udp", "routers"),
    ("udp", "services"),
)
"""The (protocol, section) pairs the API lists."""

RAW_KEYS = {
    ("http", "routers"): "routers",
    ("http", "middlewares"): "middlewares",
    ("http", "services"): "services",
    ("tcp", "routers"): "tcpRouters",
    ("tcp", "middlewares"): "tcpMiddlewares",
    ("tcp", "services"): "tcpServices",
    ("udp", "routers"): "udpRouters",
    ("udp", "services"): "udpServices",
}
# What a list item has and a /api/rawdata entry does not (the key there is the name).
_LIST_ONLY = ("name", "provider", "type", "priorityStr")
_UNKNOWN = ObjectStatus("enabled")
_PROVIDERS = {"file": "File", "docker": "Docker"}


@dataclass(frozen=True, slots=True)
class View:
    """Every API answer's data for one snapshot and health set."""

    items: Mapping[tuple[str, str], Mapping[str, Item]]  # sorted by name
    entry_points: Mapping[str, Item]
    overview: Item
    version: Item
    # fingerprint → Traefik's representation without `status` (proxynow/api/certificates.py)
    certificates: Mapping[str, Item]

    @classmethod
    def build(
        cls,
        static: StaticConfig,
        snapshot: Snapshot,
        health: HealthSet | None,
        started: datetime,
        now: datetime | None = None,
    ) -> View:
        """`now` dates the overview's certificate warnings (the current time if None)."""
        down = health.down if health is not None else {}
        items = {kind: _table(snapshot, kind, down) for kind in KINDS}
        entry_points = {
            name: {**redact(dump(ep)), "name": name}
            for name, ep in sorted(static.entry_points.items())
        }
        certs = read_certificates(snapshot.config)
        overview = _overview(static, items)
        overview["certificates"] = certificate_counts(certs.values(), now or datetime.now(UTC))
        return cls(items, entry_points, overview, _version(started), certs)

    def rawdata(self) -> Item:
        """`/api/rawdata`: every object by name, in Traefik's runtime representation."""
        raw: Item = {}
        for kind, key in RAW_KEYS.items():
            table = self.items[kind]
            if table:
                raw[key] = {
                    name: {k: v for k, v in item.items() if k not in _LIST_ONLY}
                    for name, item in table.items()
                }
        return raw


def _objects(config: DynamicConfig, protocol: str, section: str) -> Mapping[str, Any]:
    table: Mapping[str, Any] = getattr(getattr(config, protocol), section, {})
    return table


def _table(snapshot: Snapshot, kind: tuple[str, str], down: Mapping[str, Any]) -> dict[str, Item]:
    protocol, section = kind
    objects = {
        **_objects(snapshot.config, protocol, section),
        **_objects(snapshot.disabled, protocol, section),
    }
    routers = {
        **_objects(snapshot.config, protocol, "routers"),
        **_objects(snapshot.disabled, protocol, "routers"),
    }
    used_by = _used_by(routers.items(), section) if section != "routers" else {}
    table: dict[str, Item] = {}
    for name in sorted(objects):
        status = snapshot.statuses.get(status_key(protocol, section, name), _UNKNOWN)
        if section == "routers":
            item = _router(protocol, objects[name], status)
        else:
            item = _service_or_middleware(protocol, name, objects[name], status, down)
            if users := used_by.get(name):
                item["usedBy"] = users
        item["name"] = name
        item["provider"] = name.rpartition("@")[2]
        if section == "routers" and protocol != "udp":
            item["priorityStr"] = str(item["priority"])
        table[name] = item
    return table


def _used_by(routers: Iterable[tuple[str, Any]], section: str) -> dict[str, list[str]]:
    """Object name → the routers naming it (disabled routers too, as in Traefik)."""
    found: dict[str, set[str]] = {}
    for router_name, router in routers:
        names = [router.service] if section == "services" else getattr(router, "middlewares", [])
        for name in names:
            found.setdefault(name, set()).add(router_name)
    return {name: sorted(users) for name, users in found.items()}


def _status(item: Item, status: ObjectStatus) -> None:
    if status.errors:
        item["error"] = list(status.errors)
    item["status"] = status.status


def _router(protocol: str, router: Any, status: ObjectStatus) -> Item:
    item: Item = redact(dump(router))
    if protocol != "udp":
        item["priority"] = _priority(protocol, router.priority, router.rule)
        if router.tls is not None and not router.tls.options and not _passthrough(router):
            item.setdefault("tls", {})["options"] = "default"
    if protocol == "http":
        item["observability"] = _observability(item.get("observability", {}))
    _status(item, status)
    item["using"] = sorted(router.entry_points)
    return item


def _passthrough(router: Any) -> bool:
    return bool(getattr(router.tls, "passthrough", False))


def _priority(protocol: str, priority: int, rule: str) -> int:
    if priority:
        return priority
    if protocol == "tcp" and rule.replace(" ", "") == "HostSNI(`*`)":
        return -1  # Traefik's catch-all comes after every other TCP router
    return len(rule)


def _observability(given: Item) -> Item:
    """A router's observability with the entrypoints' defaults (all on) filled in."""
    return {
        "accessLogs": given.get("accessLogs", True),
        "metrics": given.get("metrics", True),
        "tracing": given.get("tracing", True),
        "traceVerbosity": given.get("traceVerbosity", "minimal"),
    }


def _service_or_middleware(
    protocol: str, name: str, obj: Any, status: ObjectStatus, down: Mapping[str, Any]
) -> Item:
    if name.rpartition("@")[2] == INTERNAL_PROVIDER:
        item: Item = {}
        _status(item, status)
        return item
    dumped = dump(obj)
    kind = next(iter(dumped), "")  # the one type that is set: `loadBalancer`, `basicAuth`...
    item = redact(dumped)
    _status(item, status)
    if kind:
        item["type"] = kind.lower()
    if status.serves and kind == "loadBalancer":
        item["serverStatus"] = _server_status(protocol, name, obj, down)
    return item


def _server_status(protocol: str, name: str, service: Any, down: Mapping[str, Any]) -> Item:
    servers = service.load_balancer.servers
    if protocol == "http":
        sick = down.get(name, frozenset())
        return {redact_url(s.url): ("DOWN" if s.url in sick else "UP") for s in servers}
    return {getattr(s, "address", ""): "UP" for s in servers}


def _overview(static: StaticConfig, items: Mapping[tuple[str, str], Mapping[str, Item]]) -> Item:
    overview: Item = {"http": {}, "tcp": {}, "udp": {}}
    for (protocol, section), table in items.items():
        statuses = [item["status"] for item in table.values()]
        overview[protocol][section] = {
            "total": len(statuses),
            "warnings": statuses.count("warning"),
            "errors": statuses.count("disabled"),
        }
    metrics = static.metrics is not None and static.metrics.prometheus is not None
    overview["features"] = {
        "tracing": "",
        "metrics": "Prometheus" if metrics else "",
        "accessLog": static.access_log is not None,
    }
    providers = [label for key, label in _PROVIDERS.items() if getattr(static.providers, key)]
    if providers:
        overview["providers"] = providers
    return overview


def _version(started: datetime) -> Item:
    return {
        "Version": __version__,
        "Codename": "proxynow",
        "startDate": started.isoformat().replace("+00:00", "Z"),
    }
