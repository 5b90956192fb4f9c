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

A bad label costs only its own container (issue 18): an error that belongs to one object
disables that object (the placeholder above, one per section, each valid by itself); an
error no object can carry (a provider label such as `enable=maybe`, an unknown section)
leaves the whole container out with one error, which the provider reports as a provider
error; and an exception raised while building one container (a payload we did not
expect) does the same, so the other containers are always built.

Network choice is deterministic: the `<prefix>.docker.network` label, then
`providers.docker.network`, then a network shared with proxynow's own container, then the
first network by name. A chosen network the container is not on falls back to the next
choices with a warning, as Traefik's `getIPAddress` does ("defaulting to first available
network"). A container with `network_mode: container:X` is reached on
X's address (X's own network label first), as the provider attaches X to it. Port
choice: the `server.port` label, else the lowest exposed port, else an error on that
service.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from proxynow.config.dynamic import DynamicConfig, HTTPConfig, TCPConfig, UDPConfig
from proxynow.config.errors import ConfigError
from proxynow.config.loader import validate_dynamic
from proxynow.providers.base import SECTIONS, ProviderUpdate
from proxynow.providers.docker.constraints import Predicate
from proxynow.providers.docker.labels import (
    SERVER_KEY,
    Decoded,
    decode_labels,
    parse_bool,
    provider_label_errors,
    provider_labels,
)
from proxynow.providers.docker.template import TemplateError, TemplateValues, normalize, render

__all__ = [
    "BuildOptions",
    "Container",
    "ContainerConfig",
    "allows_nonrunning",
    "build_update",
    "container_config",
    "container_errors",
    "network_owner_ref",
]

log = logging.getLogger(__name__)

ObjectKey = tuple[str, str, str]  # ("http", "routers", "web")
PROVIDER = "docker"

COMPOSE_SERVICE = "com.docker.compose.service"
COMPOSE_PROJECT = "com.docker.compose.project"
HOST_NETWORK_IP = "127.0.0.1"
SHARED_NETWORK_PREFIX = "container:"
_MAX_SHARING_DEPTH = 8  # container:A → container:B → ... stops here (a cycle is an error)
_UNHEALTHY = frozenset({"starting", "unhealthy"})
# An inert stand-in per (protocol, section) for an object that does not validate: it
# carries the object's errors to the aggregator, which disables it. Each must validate
# alone (tests/unit/providers/docker/test_label_isolation.py checks every section).
PLACEHOLDERS: dict[tuple[str, str], dict[str, Any]] = {
    ("http", "routers"): {},
    ("http", "services"): {"loadBalancer": {}},
    ("http", "middlewares"): {"chain": {"middlewares": []}},
    ("http", "serversTransports"): {},
    ("tcp", "routers"): {},
    ("tcp", "services"): {"loadBalancer": {}},
    ("tcp", "middlewares"): {"ipAllowList": {"sourceRange": []}},  # as control/check.py
    ("tcp", "serversTransports"): {},
    ("udp", "routers"): {},
    ("udp", "services"): {"loadBalancer": {}},
}
_LEFT_OUT = "its routers, services and middlewares are left out"


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
    # `network_mode: container:X`: X as the provider found it (None: not found). Its
    # networks, not ours, give the address, as in Traefik.
    network_owner: Container | None = None


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
    """One kept container's validated objects and its errors per object key.

    `container_errors` not empty: the container is left out (no objects), and these
    say why, naming it; `warnings` are worth a log line but change nothing served."""

    container: str
    objects: dict[ObjectKey, Any]
    errors: dict[str, list[str]]
    container_errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def container_config(container: Container, options: BuildOptions) -> ContainerConfig | None:
    """The container's configuration, or None when the provider does not keep it.

    Never raises: whatever goes wrong costs this container only."""
    try:
        return _container_config(container, options)
    except Exception as exc:  # a bug or an odd payload must not drop the other containers
        name = container.name.lstrip("/")
        log.exception("docker: container %r: building its configuration failed", name)
        return _left_out(container, [f"internal error: {type(exc).__name__}: {exc}"])


def container_errors(configs: Iterable[ContainerConfig | None]) -> tuple[str, ...]:
    """The errors of the containers left out, for the provider's error list."""
    found = (config.container_errors for config in configs if config is not None)
    return tuple(dict.fromkeys(message for messages in found for message in messages))


def _container_config(container: Container, options: BuildOptions) -> ContainerConfig | None:
    labels = provider_labels(container.labels, options.prefixes)
    problems = provider_label_errors(labels)
    if problems:  # before `_kept`: a malformed `enable` cannot say whether to keep it
        return _left_out(container, problems)
    if not _kept(container, labels, options):
        return None
    decoded = decode_labels(labels)
    if decoded.container_errors:
        return _left_out(container, decoded.container_errors)
    name = service_name(container)
    if not options.use_bind_port_ip or container.network_mode == "host":
        container = replace(container, bindings={})
    # Starting/unhealthy (allowEmptyServices) and stopped (allownonrunning): no server.
    healthy = container.health not in _UNHEALTHY and container.state == "running"
    address = _address(container, labels, options)
    ip = address.ip if healthy else None
    _build_http(container, decoded, name, options, ip, address.error)
    for protocol in ("tcp", "udp"):
        _build_stream(protocol, name, container, decoded, (ip, address.error))
    objects, unplaced = _validated(decoded.raw, decoded.errors)
    if unplaced:
        return _left_out(container, unplaced)
    warnings = [*decoded.warnings, *([address.warning] if address.warning else [])]
    prefix = f"container {container.name.lstrip('/')!r}: "
    warned = tuple(prefix + warning for warning in warnings)
    return ContainerConfig(container.name, objects, decoded.errors, warnings=warned)


def _left_out(container: Container, problems: Iterable[str]) -> ContainerConfig:
    prefix = f"container {container.name.lstrip('/')!r}: "
    messages = tuple(f"{prefix}{problem}; {_LEFT_OUT}" for problem in problems)
    return ContainerConfig(container.name, {}, {}, container_errors=messages)


def service_name(container: Container) -> str:
    """Traefik's name: `<compose service>_<project>` normalised, else the container name."""
    service = container.labels.get(COMPOSE_SERVICE, "")
    project = container.labels.get(COMPOSE_PROJECT, "")
    if service and project:
        return normalize(f"{service}_{project}")
    return normalize(container.name.lstrip("/"))


def allows_nonrunning(labels: Mapping[str, str], prefixes: tuple[str, ...]) -> bool:
    """Whether `<prefix>.docker.allownonrunning` is true: the provider keeps such a
    container when it is not running (a router whose service has no server: 503)."""
    value = ""
    for key, text in provider_labels(labels, prefixes).items():
        if key.lower() == "docker.allownonrunning":
            value = text
    return parse_bool(value) is True


def network_owner_ref(container: Container) -> str:
    """X of `network_mode: container:X` (an id, or a name), else ""."""
    mode = container.network_mode
    return mode[len(SHARED_NETWORK_PREFIX) :] if mode.startswith(SHARED_NETWORK_PREFIX) else ""


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


@dataclass(frozen=True, slots=True)
class _Address:
    """The container's IP, or the error saying why it has none; a warning on a fallback."""

    ip: str
    error: str | None = None
    warning: str | None = None


def _address(container: Container, labels: Mapping[str, str], options: BuildOptions) -> _Address:
    """The container's IP on the chosen network (see the module docstring)."""
    return _address_on(container, _network_label(labels) or options.network, options, 0)


def _network_label(labels: Mapping[str, str]) -> str:
    """The `<prefix>.docker.network` label of prefix-stripped labels, or ""."""
    for key, value in labels.items():
        if key.lower() == "docker.network" and value:
            return value
    return ""


def _address_on(container: Container, wanted: str, options: BuildOptions, depth: int) -> _Address:
    if container.network_mode == "host":
        return _Address(HOST_NETWORK_IP)
    if network_owner_ref(container):
        return _shared_address(container, wanted, options, depth)
    if wanted and container.networks.get(wanted):
        return _Address(container.networks[wanted])
    candidates = sorted(
        (name for name, ip in container.networks.items() if ip),
        key=lambda name: (name not in options.own_networks, name),
    )
    if not candidates:
        return _Address(
            "", f"container {container.name.lstrip('/')!r} has no IP address on any network"
        )
    chosen = candidates[0]
    if not wanted:
        return _Address(container.networks[chosen])
    # A project prefix missing from the label is the usual cause; Traefik serves anyway.
    attached = ", ".join(sorted(container.networks))
    warning = f"network {wanted!r} is not attached (attached: {attached}); using {chosen!r}"
    return _Address(container.networks[chosen], warning=warning)


def _shared_address(
    container: Container, wanted: str, options: BuildOptions, depth: int
) -> _Address:
    """`network_mode: container:X`: X's address. X's own network label wins over the one
    asked for here (the dependent's label or `providers.docker.network`), as in Traefik."""
    owner = container.network_owner
    name = container.name.lstrip("/")
    if owner is None:
        ref = network_owner_ref(container)
        return _Address(
            "", f"container {name!r} shares the network of container {ref!r}, which was not found"
        )
    if depth >= _MAX_SHARING_DEPTH:
        return _Address("", f"container {name!r}: network_mode container: nested too deeply")
    owner_labels = provider_labels(owner.labels, options.prefixes)
    return _address_on(owner, _network_label(owner_labels) or wanted, options, depth + 1)


def _target(
    container: Container, ip: str, label_port: object, decoded: Decoded, key: str
) -> str | None:
    # useBindPortIP: the published HostIP:HostPort when bound to a specific address.
    """`ip:port` for the server, from the label or the lowest exposed port."""
    if label_port is not None and not isinstance(label_port, str):
        decoded.error(key, "server.port: expected a number, got sub-keys")
        return None
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


# ---------------------------------------------------------------- validation


def _validated(
    raw: dict[str, Any], errors: dict[str, list[str]]
) -> tuple[dict[ObjectKey, Any], list[str]]:
    """The container's objects as models, one that does not validate replaced by its
    section's placeholder; and the errors no placeholder could carry (none expected)."""
    try:
        # Label keys are already spelt as the models spell them (labels.py), so the
        # loader's normalisation pass is skipped here; names with `@` the aggregator reports.
        return _objects(DynamicConfig.model_validate(raw)), []
    except ValidationError:
        pass  # find the culprits, object by object, with the loader's messages
    objects: dict[ObjectKey, Any] = {}
    unplaced: list[str] = []
    for protocol, sections in raw.items():
        for section, bodies in sections.items():
            for name, body in bodies.items():
                single = _validated_one((protocol, section, name), body, errors, unplaced)
                if single is not None:
                    objects.update(_objects(single))
    return objects, unplaced


def _validated_one(
    key: ObjectKey, body: Any, errors: dict[str, list[str]], unplaced: list[str]
) -> DynamicConfig | None:
    """One object validated alone, else its placeholder with its errors recorded."""
    protocol, section, name = key
    try:
        return validate_dynamic({protocol: {section: {name: body}}})
    except ConfigError as exc:
        messages = _messages(exc, name)
    placeholder = _placeholder(protocol, section, name)
    if placeholder is None:
        unplaced.extend(f"{'.'.join(key)}: {message}" for message in messages)
    else:
        errors.setdefault(".".join(key), []).extend(messages)
    return placeholder


def _placeholder(protocol: str, section: str, name: str) -> DynamicConfig | None:
    body = PLACEHOLDERS.get((protocol, section))
    if body is None:
        return None
    try:
        return validate_dynamic({protocol: {section: {name: body}}})
    except ConfigError:
        return None  # a name the models refuse; the container is left out instead


def _objects(config: DynamicConfig) -> dict[ObjectKey, Any]:
    objects: dict[ObjectKey, Any] = {}
    for protocol, section, attribute in SECTIONS:
        for name, obj in getattr(getattr(config, protocol), attribute).items():
            objects[(protocol, section, name)] = obj
    return objects


def _messages(error: ConfigError, name: str) -> list[str]:
    result = []
    for issue in error.issues:
        path = issue.path.split(f".{name}.", 1)[-1] if f".{name}." in issue.path else issue.path
        result.append(f"{path}: {issue.message}")
    return result


# ---------------------------------------------------------------- all containers


def build_update(containers: Iterable[Container], options: BuildOptions) -> ProviderUpdate:
    """The provider's complete configuration for `containers`."""
    configs = (container_config(container, options) for container in containers)
    return merge(config for config in configs if config is not None)


def merge(configs: Iterable[ContainerConfig]) -> ProviderUpdate:
    """Merge containers' validated objects into one configuration (no validation here)."""
    objects: dict[ObjectKey, Any] = {}
    origin: dict[ObjectKey, str] = {}
    errors: dict[str, list[str]] = {}
    for config in configs:
        for error_key, messages in config.errors.items():
            errors.setdefault(error_key, []).extend(messages)
        for key, obj in config.objects.items():
            existing = objects.get(key)
            if existing is None:
                objects[key], origin[key] = obj, config.container
            elif existing != obj:
                combined = _combine(existing, obj) if key[1] == "services" else None
                if combined is not None:
                    objects[key] = combined
                else:
                    message = f"defined differently by containers {origin[key]!r} and"
                    errors.setdefault(".".join(key), []).append(f"{message} {config.container!r}")
    frozen = {key: tuple(dict.fromkeys(messages)) for key, messages in errors.items()}
    return ProviderUpdate(PROVIDER, _assemble(objects), frozen)


def _combine(left: Any, right: Any) -> Any:
    """Replicas: the same load balancer but for its servers → one with all the servers."""
    a, b = left.load_balancer, right.load_balancer
    if (
        a is None
        or b is None
        or left.model_copy(update={"load_balancer": None})
        != (right.model_copy(update={"load_balancer": None}))
    ):
        return None
    if a.model_copy(update={"servers": []}) != b.model_copy(update={"servers": []}):
        return None
    balancer = a.model_copy(update={"servers": [*a.servers, *b.servers]})
    return left.model_copy(update={"load_balancer": balancer})


def _assemble(objects: Mapping[ObjectKey, Any]) -> DynamicConfig:
    """A DynamicConfig from objects that were each validated already (no second pass)."""
    tables: dict[str, dict[str, dict[str, Any]]] = {p: {} for p in ("http", "tcp", "udp")}
    attributes = {(p, s): a for p, s, a in SECTIONS}
    for (protocol, section, name), obj in objects.items():
        attribute = attributes[(protocol, section)]
        tables[protocol].setdefault(attribute, {})[name] = obj
    return DynamicConfig.model_construct(
        http=HTTPConfig.model_construct(None, **tables["http"]),
        tcp=TCPConfig.model_construct(None, **tables["tcp"]),
        udp=UDPConfig.model_construct(None, **tables["udp"]),
    )
