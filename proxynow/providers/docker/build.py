"""Containers → one complete dynamic configuration, with Traefik's derivations.

Pure: a `Container` is plain data read from the Docker API (see provider.py), and
`build_update` turns a list of them into the `ProviderUpdate` the aggregator takes. It
happens in two steps so that the provider can cache the first one per container:

1. `container_config` (one container): is it kept (enable label or `exposedByDefault`,
   constraints, running, Docker health), its labels decoded (labels.py), the automatic
   service named after the container (compose: `<service>_<project>`, normalised), the
   automatic router with `defaultRule` when it has no router labels, routers linked to the
   lone service, the server address from the chosen network and port.
2. `merge` (all containers): objects of the same name merge, as Traefik's
   `ResourceStrategyMerge`: identical routers and middlewares are one object, services
   that differ only in their servers become one load balancer with every server (compose
   `--scale`), anything else is a conflict reported on that object. Then each object is
   validated; one that does not validate is replaced by an inert placeholder carrying
   its errors, so the aggregator disables it and shows why, and nothing else stops.

Network choice is deterministic: the `<prefix>.docker.network` label, then
`providers.docker.network`, then a network shared with proxynow's own container, then the
first network by name. A chosen network the container is not on is an error on its
services, not a silent 504. Port choice: the `server.port` label, else the lowest exposed
port, else an error on that service.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from proxynow.config.dynamic import DynamicConfig
from proxynow.config.errors import ConfigError
from proxynow.config.loader import validate_dynamic
from proxynow.providers.base import ProviderUpdate
from proxynow.providers.docker.constraints import Predicate
from proxynow.providers.docker.labels import (
    SERVER_KEY,
    Decoded,
    decode_labels,
    parse_bool,
    provider_labels,
)
from proxynow.providers.docker.template import TemplateError, TemplateValues, normalize, render

__all__ = ["BuildOptions", "Container", "ContainerConfig", "build_update", "container_config"]

PROVIDER = "docker"
COMPOSE_SERVICE = "com.docker.compose.service"
COMPOSE_PROJECT = "com.docker.compose.project"
HOST_NETWORK_IP = "127.0.0.1"
_UNHEALTHY = frozenset({"starting", "unhealthy"})
_PLACEHOLDERS: dict[str, dict[str, Any]] = {
    "routers": {},
    "services": {"loadBalancer": {}},
    "middlewares": {"chain": {"middlewares": []}},
}


@dataclass(frozen=True, slots=True)
class Container:
    """What the builder needs to know about one container (from list or inspect)."""

    id: str
    name: str
    labels: Mapping[str, str]
    state: str = "running"
    health: str = ""  # "", "starting", "healthy", "unhealthy"
    networks: Mapping[str, str] = field(default_factory=dict)  # name → IP address
    ports: tuple[int, ...] = ()  # exposed container ports
    bindings: Mapping[int, tuple[str, int]] = field(default_factory=dict)  # port → host IP, port
    network_mode: str = ""


@dataclass(frozen=True, slots=True)
class BuildOptions:
    """The `providers.docker` settings the builder applies."""

    prefixes: tuple[str, ...] = ("proxynow",)
    exposed_by_default: bool = True
    network: str = ""
    default_rule: str = "Host(`{{ normalize .Name }}`)"
    use_bind_port_ip: bool = False
    allow_empty_services: bool = False
    constraints: Predicate | None = None
    own_networks: frozenset[str] = frozenset()  # networks of proxynow's own container


@dataclass(slots=True)
class ContainerConfig:
    """One kept container's raw configuration and its errors per object key."""

    container: str
    raw: dict[str, Any]
    errors: dict[str, list[str]]


def container_config(container: Container, options: BuildOptions) -> ContainerConfig | None:
    """The container's configuration, or None when the provider does not keep it."""
    labels = provider_labels(container.labels, options.prefixes)
    if not _kept(container, labels, options):
        return None
    decoded = decode_labels(labels)
    name = service_name(container)
    if not options.use_bind_port_ip or container.network_mode == "host":
        container = replace(container, bindings={})
    healthy = container.health not in _UNHEALTHY
    ip, network_error = _address(container, labels, options)
    _build_http(container, decoded, name, options, ip if healthy else None, network_error)
    for protocol in ("tcp", "udp"):
        _build_stream(protocol, name, container, decoded, (ip if healthy else None, network_error))
    return ContainerConfig(container.name, decoded.raw, decoded.errors)


def service_name(container: Container) -> str:
    """Traefik's name: `<compose service>_<project>` normalised, else the container name."""
    service = container.labels.get(COMPOSE_SERVICE, "")
    project = container.labels.get(COMPOSE_PROJECT, "")
    if service and project:
        return normalize(f"{service}_{project}")
    return normalize(container.name.lstrip("/"))


def _kept(container: Container, labels: Mapping[str, str], options: BuildOptions) -> bool:
    lowered = {key.lower(): value for key, value in labels.items()}
    enable = parse_bool(lowered.get("enable", ""))
    if not (options.exposed_by_default if enable is None else enable):
        return False
    if options.constraints is not None and not options.constraints(container.labels):
        return False
    if container.state != "running" and parse_bool(lowered.get("docker.allownonrunning", "")):
        return True
    if container.state != "running":
        return False
    return container.health not in _UNHEALTHY or options.allow_empty_services


# ---------------------------------------------------------------- per container


def _build_http(
    container: Container,
    decoded: Decoded,
    name: str,
    options: BuildOptions,
    ip: str | None,
    network_error: str | None,
) -> None:
    raw = decoded.raw
    if "http" not in raw and ("tcp" in raw or "udp" in raw):
        return  # only TCP/UDP labels: no automatic HTTP router and service (Traefik)
    http = raw.setdefault("http", {})
    services = http.setdefault("services", {})
    if not services:
        services[name] = {"loadBalancer": {}}
    for service, body in services.items():
        _http_servers(container, decoded, f"http.services.{service}", body, ip, network_error)
    routers = http.setdefault("routers", {})
    if not routers and len(services) == 1:
        routers[name] = {}
    values = TemplateValues(name, container.name.lstrip("/"), container.labels)
    for router, body in routers.items():
        _complete_router(decoded, f"http.routers.{router}", body, services, options, values)
    for section in ("routers", "services"):
        if not http[section]:
            del http[section]


def _http_servers(
    container: Container,
    decoded: Decoded,
    key: str,
    body: dict[str, Any],
    ip: str | None,
    network_error: str | None,
) -> None:
    balancer = body.get("loadBalancer")
    if not isinstance(balancer, dict):
        return  # weighted/mirroring/failover cannot come from labels; validation says so
    server = balancer.pop(SERVER_KEY, {})
    if "servers" in balancer:
        return
    balancer["servers"] = []
    if ip is None:
        return  # unhealthy with allowEmptyServices: the service stays, with no server
    if network_error is not None:
        decoded.error(key, network_error)
        return
    if "url" in server:
        balancer["servers"] = [{"url": server["url"]}]
        return
    target = _target(container, ip, server.get("port"), decoded, key)
    if target is not None:
        scheme = server.get("scheme", "http")
        balancer["servers"] = [{"url": f"{scheme}://{target}"}]


def _complete_router(
    decoded: Decoded,
    key: str,
    body: dict[str, Any],
    services: Mapping[str, Any],
    options: BuildOptions,
    values: TemplateValues,
) -> None:
    if "rule" not in body:
        try:
            body["rule"] = render(options.default_rule, values)
        except TemplateError as exc:
            decoded.error(key, str(exc))
    if "service" not in body:
        if len(services) == 1:
            body["service"] = next(iter(services))
        else:
            decoded.error(key, "cannot be linked automatically with multiple services")


def _build_stream(
    protocol: str,
    name: str,
    container: Container,
    decoded: Decoded,
    address: tuple[str | None, str | None],
) -> None:
    section = decoded.raw.get(protocol)
    if not isinstance(section, dict):
        return
    ip, error = address
    services = section.setdefault("services", {})
    if not services and section.get("routers"):
        services[name] = {"loadBalancer": {}}  # routers but no service: one named after us
    for service, body in services.items():
        key = f"{protocol}.services.{service}"
        balancer = body.get("loadBalancer") if isinstance(body, dict) else None
        if not isinstance(balancer, dict):
            continue
        server = balancer.pop(SERVER_KEY, {})
        balancer.setdefault("servers", [])
        if ip is None or balancer["servers"]:
            continue
        if error is not None:
            decoded.error(key, error)
            continue
        target = _target(container, ip, server.get("port"), decoded, key)
        if target is not None:
            balancer["servers"] = [{"address": target}]
    for router, body in section.get("routers", {}).items():
        if isinstance(body, dict) and "service" not in body:
            if len(services) == 1:
                body["service"] = next(iter(services))
            else:
                message = "cannot be linked automatically with multiple services"
                decoded.error(f"{protocol}.routers.{router}", message)


def _address(
    container: Container, labels: Mapping[str, str], options: BuildOptions
) -> tuple[str, str | None]:
    """The container's IP on the chosen network, or an error saying why there is none."""
    if container.network_mode == "host":
        return HOST_NETWORK_IP, None
    lowered = {key.lower(): value for key, value in labels.items()}
    wanted = lowered.get("docker.network") or options.network
    if wanted:
        ip = container.networks.get(wanted)
        if ip:
            return ip, None
        attached = ", ".join(sorted(container.networks)) or "none"
        return "", (
            f"network {wanted!r} is not attached to container {container.name.lstrip('/')!r}"
            f" (attached: {attached})"
        )
    candidates = sorted(
        (name for name, ip in container.networks.items() if ip),
        key=lambda name: (name not in options.own_networks, name),
    )
    if not candidates:
        return "", f"container {container.name.lstrip('/')!r} has no IP address on any network"
    return container.networks[candidates[0]], None


def _target(
    container: Container, ip: str, label_port: str | None, decoded: Decoded, key: str
) -> str | None:
    # useBindPortIP: the published HostIP:HostPort when bound to a specific address.
    """`ip:port` for the server, from the label or the lowest exposed port."""
    if label_port is not None:
        try:
            port = int(label_port)
        except ValueError:
            decoded.error(key, f"server.port: {label_port!r} is not a port number")
            return None
        if not 0 < port < 65536:
            decoded.error(key, f"server.port: {port} is out of range")
            return None
    elif container.ports:
        port = min(container.ports)
    else:
        decoded.error(key, "port is missing: set loadbalancer.server.port or expose a port")
        return None
    binding = container.bindings.get(port)
    if binding is not None and _use_binding(binding):
        return _join(binding[0], binding[1])
    return _join(ip, port)


def _use_binding(binding: tuple[str, int]) -> bool:
    return binding[0] not in ("", "0.0.0.0", "::")


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# ---------------------------------------------------------------- all containers


@dataclass(slots=True)
class _Merged:
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    origin: dict[tuple[str, str, str], str] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)


def build_update(containers: Iterable[Container], options: BuildOptions) -> ProviderUpdate:
    """The provider's complete configuration for `containers`."""
    configs = (container_config(container, options) for container in containers)
    return merge(config for config in configs if config is not None)


def merge(configs: Iterable[ContainerConfig]) -> ProviderUpdate:
    """Merge containers' configurations, validate each object, isolate the bad ones."""
    merged = _Merged()
    for config in configs:
        for key, messages in config.errors.items():
            merged.errors.setdefault(key, []).extend(messages)
        for protocol, sections in config.raw.items():
            for section, objects in sections.items():
                for name, body in objects.items():
                    _merge_object(merged, (protocol, section, name), body, config.container)
    raw: dict[str, Any] = {}
    for (protocol, section, name), body in merged.objects.items():
        raw.setdefault(protocol, {}).setdefault(section, {})[name] = body
    dynamic = _validate(raw, merged.errors)
    errors = {key: tuple(dict.fromkeys(messages)) for key, messages in merged.errors.items()}
    return ProviderUpdate(PROVIDER, dynamic, errors)


def _merge_object(merged: _Merged, key: tuple[str, str, str], body: Any, origin: str) -> None:
    existing = merged.objects.get(key)
    if existing is None:
        if key[1] == "services" and isinstance(body, dict):
            body = _own_servers(body)  # the cached per-container dict stays untouched
        merged.objects[key] = body
        merged.origin[key] = origin
        return
    if existing == body:
        return
    if key[1] == "services" and _servers_differ_only(existing, body):
        existing["loadBalancer"]["servers"].extend(body["loadBalancer"]["servers"])
        return
    message = f"defined differently by containers {merged.origin[key]!r} and {origin!r}"
    merged.errors.setdefault(".".join(key), []).append(message)


def _own_servers(body: dict[str, Any]) -> dict[str, Any]:
    balancer = body.get("loadBalancer")
    if not isinstance(balancer, dict) or not isinstance(balancer.get("servers"), list):
        return body
    return {**body, "loadBalancer": {**balancer, "servers": list(balancer["servers"])}}


def _servers_differ_only(left: Any, right: Any) -> bool:
    if not (isinstance(left, dict) and isinstance(right, dict)):
        return False
    a, b = left.get("loadBalancer"), right.get("loadBalancer")
    if not (isinstance(a, dict) and isinstance(b, dict)) or left.keys() != right.keys():
        return False
    rest = {k: v for k, v in a.items() if k != "servers"}
    return rest == {k: v for k, v in b.items() if k != "servers"} and isinstance(
        a.get("servers"), list
    )


def _validate(raw: dict[str, Any], errors: dict[str, list[str]]) -> DynamicConfig:
    """Validate everything at once; on failure, object by object (placeholders for the bad)."""
    try:
        return validate_dynamic(raw)
    except ConfigError:
        pass
    good: dict[str, Any] = {}
    for protocol, sections in raw.items():
        for section, objects in sections.items():
            for name, body in objects.items():
                single = {protocol: {section: {name: body}}}
                try:
                    validate_dynamic(single)
                except ConfigError as exc:
                    key = f"{protocol}.{section}.{name}"
                    errors.setdefault(key, []).extend(_messages(exc, name))
                    body = _PLACEHOLDERS.get(section, {"loadBalancer": {}})
                good.setdefault(protocol, {}).setdefault(section, {})[name] = body
    return validate_dynamic(good)


def _messages(error: ConfigError, name: str) -> list[str]:
    result = []
    for issue in error.issues:
        path = issue.path.split(f".{name}.", 1)[-1] if f".{name}." in issue.path else issue.path
        result.append(f"{path}: {issue.message}")
    return result
