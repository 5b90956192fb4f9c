"""The Docker provider's I/O shell: list, watch events, inspect, submit.

It talks to the Docker API read-only (list, inspect, events) through the `docker` SDK,
whose calls block; every one runs in a thread, never on the control plane's loop. A
session is: connect, start the events stream in a thread (before listing, so nothing
that happens during the listing is missed), list the containers once (the running ones,
and the stopped ones labelled `docker.allownonrunning`), submit, then for each burst of
events inspect only the containers that changed, update the per-container cache, rebuild
them and the containers sharing their network namespace (`network_mode: container:X`
takes X's address), and submit. Bursts are coalesced by draining whatever is queued,
without any fixed wait: the first event of a quiet period is served at once, and the
aggregator's throttle coalesces the rest.

When the daemon goes away (restart, socket removed) the events stream ends, the last
submitted configuration keeps serving, and the provider reconnects with capped
exponential backoff. It logs and reports the outage once, not per retry, and clears the
error when a new session has resynchronised.

A container left out for a bad label (build.py) is a provider error too, naming the
container: the provider's error list is the outage (if any) and those, reported whenever
it changes, so the aggregator logs each once and the API lists them. Warnings (a network
fallback, a deprecated label) are logged here when a container's build first has them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

# The docker SDK ships no type information (types-docker is not a project dependency).
import docker  # type: ignore[import-untyped]
import docker.errors  # type: ignore[import-untyped]
import docker.tls  # type: ignore[import-untyped]

from proxynow.config.static import DockerProvider as DockerProviderConfig
from proxynow.providers.base import ConfigSink
from proxynow.providers.docker.build import (
    PROVIDER,
    BuildOptions,
    Container,
    ContainerConfig,
    allows_nonrunning,
    container_config,
    container_errors,
    merge,
    network_owner_ref,
)
from proxynow.providers.docker.constraints import ConstraintError, compile_constraints

__all__ = ["DockerProvider", "from_inspect", "from_listing", "listed_containers"]

log = logging.getLogger(__name__)

MINIMUM_API = "1.24"
DEFAULT_API = "1.45"  # the newest the SDK knows
BACKOFF_START = 0.1
BACKOFF_MAX = 5.0
_MAX_OWNER_DEPTH = 8  # network_mode container:A → container:B → ...; a cycle stops here
# Container events that can change what we route; others (exec_*, attach, ...) are noise.
_REMOVE = frozenset({"die", "stop", "kill", "pause", "destroy", "oom"})
_INSPECT = frozenset({"start", "unpause", "rename", "restart", "update", "create"})


class _StreamClosed(Exception):
    """The events stream ended: the daemon went away."""


class DockerProvider:
    """Routes from container labels; one instance per `providers.docker`."""

    def __init__(self, config: DockerProviderConfig) -> None:
        self._config = config
        prefixes = ("proxynow", "traefik") if config.traefik_labels else ("proxynow",)
        self._options = BuildOptions(
            prefixes=prefixes,
            exposed_by_default=config.exposed_by_default,
            network=config.network,
            default_rule=config.default_rule,
            use_bind_port_ip=config.use_bind_port_ip,
            allow_empty_services=config.allow_empty_services,
        )
        self._config_error = ""
        try:
            self._options = replace(
                self._options, constraints=compile_constraints(config.constraints)
            )
        except ConstraintError as exc:
            self._config_error = f"docker: {exc}"
        self._containers: dict[str, Container] = {}
        self._configs: dict[str, ContainerConfig | None] = {}
        self._owner_ids: dict[str, str] = {}  # network owner reference (a name) → its id
        self._sharing: set[str] = set()  # containers with `network_mode: container:X`
        self._outage = ""  # the outage's error while the daemon is unreachable
        self._reported: tuple[str, ...] = ()
        self._synced = False

    @property
    def name(self) -> str:
        return PROVIDER

    async def run(self, sink: ConfigSink) -> None:
        if self._config_error:
            sink.report_errors(PROVIDER, [self._config_error])
            return  # nothing is routed from Docker until the constraints are fixed
        delay = BACKOFF_START
        while True:
            self._synced = False
            try:
                await self._session(sink)
            except (docker.errors.DockerException, OSError, _StreamClosed) as exc:
                self._report_outage(sink, exc)
            except Exception as exc:  # a payload we did not expect: keep watching anyway
                log.exception("docker: unexpected error, resynchronising")
                self._report_outage(sink, exc)
            if self._synced:
                delay = BACKOFF_START  # a new outage starts its backoff from the beginning
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    def _report_outage(self, sink: ConfigSink, exc: BaseException) -> None:
        if self._outage:
            return
        self._outage = (
            f"docker: cannot reach {self._config.endpoint}: {exc or type(exc).__name__};"
            " serving the last configuration, retrying"
        )
        self._report(sink)

    def _report(self, sink: ConfigSink) -> None:
        """Report the provider's errors when they change (the aggregator logs each new one
        once, and keeps the list for the API): the outage, then the containers left out."""
        errors = ((self._outage,) if self._outage else ()) + container_errors(
            self._configs.values()
        )
        if errors != self._reported:
            self._reported = errors
            sink.report_errors(PROVIDER, list(errors))

    async def _session(self, sink: ConfigSink) -> None:
        client = await asyncio.to_thread(self._client)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[dict[str, Any] | BaseException] = asyncio.Queue()
        reader = _EventReader(client, loop, queue) if self._config.watch else None
        try:
            if reader is not None:
                # Docker sends the events response headers only with the first event, so
                # the stream is opened in the reader thread, replaying from just before
                # the listing: nothing that happens while we list is missed.
                reader.start(since=datetime.now(UTC) - timedelta(seconds=1))
            # Every container, not only running ones: a stopped one labelled
            # `docker.allownonrunning` keeps its router (Traefik lists with All: true).
            listing = await asyncio.to_thread(client.api.containers, all=True)
            await self._resync(client, listed_containers(listing, self._options.prefixes))
            self._submit(sink)
            self._synced = True
            if self._outage:
                log.info("docker: connected again to %s, resynchronised", self._config.endpoint)
                self._outage = ""
                self._report(sink)
            if reader is None:
                await asyncio.Event().wait()  # watch: false, keep the one listing
            while True:
                events = [await queue.get()]
                while not queue.empty():
                    events.append(queue.get_nowait())
                await self._apply(client, events)
                self._submit(sink)
        finally:
            if reader is not None:
                reader.close()
            client.close()

    def _submit(self, sink: ConfigSink) -> None:
        kept = self._kept()
        log.debug("docker: %d containers, %d routed", len(self._containers), len(kept))
        sink.submit(merge(kept))
        self._report(sink)

    def _client(self) -> docker.DockerClient:
        """A client speaking the daemon's API version (negotiated here, not by the SDK,
        whose own negotiation leaks its socket when the daemon is unreachable)."""
        _check_unix_socket(self._config.endpoint)
        probe = self._new_client(MINIMUM_API)
        try:
            version = str(probe.api.version(api_version=False)["ApiVersion"])
        finally:
            probe.close()
        return self._new_client(min(version, DEFAULT_API, key=_version_key))

    def _new_client(self, version: str) -> docker.DockerClient:
        tls: docker.tls.TLSConfig | bool = False
        options = self._config.tls
        if options is not None:
            tls = docker.tls.TLSConfig(
                client_cert=(options.cert, options.key) if options.cert else None,
                ca_cert=options.ca or None,
                verify=bool(options.ca) and not options.insecure_skip_verify,
            )
        timeout = int(self._config.http_client_timeout) or 60
        client = docker.DockerClient(
            base_url=self._config.endpoint, version=version, tls=tls, timeout=timeout
        )
        if self._config.username:
            client.api.auth = (self._config.username, self._config.password)
        return client

    async def _resync(self, client: docker.DockerClient, containers: list[Container]) -> None:
        self._containers = {container.id: container for container in containers}
        self._owner_ids = {}
        self._sharing = {c.id for c in containers if network_owner_ref(c)}
        await self._fetch_owners(client, self._sharing)
        self._options = _with_own_networks(self._options, containers)
        previous, self._configs = self._configs, {}
        for identifier in self._containers:
            self._rebuild(identifier, previous.get(identifier))

    def _kept(self) -> list[ContainerConfig]:
        return [config for config in self._configs.values() if config is not None]

    def _rebuild(self, identifier: str, previous: ContainerConfig | None) -> None:
        """Build one container again; log the warnings its previous build did not have."""
        config = container_config(self._with_owner(self._containers[identifier], 0), self._options)
        self._configs[identifier] = config
        known = previous.warnings if previous is not None else ()
        for warning in config.warnings if config is not None else ():
            if warning not in known:
                log.warning("docker: %s", warning)

    def _with_owner(self, container: Container, depth: int) -> Container:
        """The container with the container whose network it shares attached (recursively:
        that one may share another's); build.py takes the address from it."""
        ref = network_owner_ref(container)
        owner = self._owner(ref) if ref and depth < _MAX_OWNER_DEPTH else None
        if owner is None:
            return container
        return replace(container, network_owner=self._with_owner(owner, depth + 1))

    def _owner(self, ref: str) -> Container | None:
        return self._containers.get(self._owner_ids.get(ref, ref))

    async def _fetch_owners(self, client: docker.DockerClient, dependents: set[str]) -> set[str]:
        """Inspect the network owners that are not cached: referred to by name, or not
        running (the listing has every running container already). The ids it added."""
        added: set[str] = set()
        pending = [network_owner_ref(self._containers[i]) for i in dependents]
        for _ in range(_MAX_OWNER_DEPTH):
            missing = {ref for ref in pending if ref and self._owner(ref) is None}
            pending = []
            for ref in missing:
                owner = await _inspect(client, ref)
                if owner is None:
                    continue
                self._owner_ids[ref] = owner.id
                if owner.id not in self._containers:
                    self._containers[owner.id] = owner
                    added.add(owner.id)
                    if network_owner_ref(owner):
                        self._sharing.add(owner.id)
                pending.append(network_owner_ref(owner))
            if not pending:
                break
        return added

    async def _apply(
        self, client: docker.DockerClient, events: list[dict[str, Any] | BaseException]
    ) -> None:
        """Inspect only the containers the events name (once each, in event order), then
        rebuild them and the containers that share their network."""
        latest: dict[str, str] = {}
        for event in events:
            if isinstance(event, BaseException):
                raise event
            action = str(event.get("Action") or event.get("status") or "").split(":")[0]
            identifier = str(event.get("id") or event.get("Actor", {}).get("ID", ""))
            if identifier and _relevant(action):
                latest[identifier] = action
        for identifier, action in latest.items():
            await self._refresh(client, identifier, action)
        added = await self._fetch_owners(client, self._sharing.intersection(latest))
        for identifier in self._containers.keys() & (latest.keys() | added):
            self._rebuild(identifier, self._configs.get(identifier))
        for identifier in self._sharing - latest.keys():
            ref = network_owner_ref(self._containers[identifier])
            if self._owner_ids.get(ref, ref) in latest:  # its network owner changed
                self._rebuild(identifier, self._configs.get(identifier))
        for identifier in latest.keys() - self._containers.keys():
            self._configs.pop(identifier, None)

    async def _refresh(self, client: docker.DockerClient, identifier: str, action: str) -> None:
        """Update the cached container after one event: a container that stopped is
        dropped without an inspect, unless its label keeps it when not running."""
        cached = self._containers.get(identifier)
        keep = (
            action != "destroy"
            and cached is not None
            and allows_nonrunning(cached.labels, self._options.prefixes)
        )
        container = None if action in _REMOVE and not keep else await _inspect(client, identifier)
        if container is None:
            self._containers.pop(identifier, None)
            self._sharing.discard(identifier)
            return
        self._containers[identifier] = container
        if network_owner_ref(container):
            self._sharing.add(identifier)
        else:
            self._sharing.discard(identifier)


def _check_unix_socket(endpoint: str) -> None:
    """Raise OSError when a unix endpoint does not accept connections.

    Checked with our own socket first: the SDK does not close its socket when the connect
    fails, and an outage retries every few seconds."""
    if not endpoint.startswith("unix://"):
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.connect(endpoint.removeprefix("unix://"))


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def _relevant(action: str) -> bool:
    return action in _REMOVE or action in _INSPECT or action.startswith("health_status")


def listed_containers(
    entries: Iterable[Mapping[str, Any]], prefixes: tuple[str, ...]
) -> list[Container]:
    """The containers of a listing that matter: running, or kept stopped by their label
    (checked on the raw entry, so a host with many stopped containers costs one label
    scan each). An entry that does not parse is logged and skipped: it costs only itself."""
    containers = []
    for entry in entries:
        try:
            if entry.get("State") == "running" or allows_nonrunning(
                entry.get("Labels") or {}, prefixes
            ):
                containers.append(from_listing(entry))
        except Exception:  # a payload we did not expect; the others are still listed
            log.exception("docker: skipping a listing entry that does not parse: %s", _id(entry))
    return containers


def _id(entry: object) -> str:
    found = entry.get("Id") if isinstance(entry, Mapping) else None
    return str(found)[:12] if found else "(no id)"


async def _inspect(client: docker.DockerClient, identifier: str) -> Container | None:
    try:
        data = await asyncio.to_thread(client.api.inspect_container, identifier)
    except docker.errors.NotFound:
        return None
    try:
        return from_inspect(data)
    except Exception:  # as in `listed_containers`: the container is treated as gone
        log.exception("docker: container %s: its inspect payload does not parse", identifier[:12])
        return None


class _EventReader:
    """Reads the blocking events stream in a thread and hands each event to the loop."""

    def __init__(
        self, client: Any, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Any]
    ) -> None:
        self._client = client
        self._loop = loop
        self._queue = queue
        self._stream: Any = None
        self._closed = threading.Event()

    def start(self, since: datetime) -> None:
        thread = threading.Thread(target=self._read, args=(since,), name="docker events")
        thread.daemon = True  # a stream that never got its headers cannot be interrupted
        thread.start()

    def close(self) -> None:
        self._closed.set()
        stream = self._stream
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()

    def _read(self, since: datetime) -> None:
        failure: BaseException = _StreamClosed("the events stream ended")
        try:
            self._stream = self._client.api.events(
                since=since, decode=True, filters={"type": "container"}
            )
            if self._closed.is_set():
                self._stream.close()
            for event in self._stream:
                self._put(event)
        except Exception as exc:  # the socket closing under us ends the session too
            failure = _StreamClosed(f"events stream: {exc}")
        self._put(failure)

    def _put(self, item: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: proxynow is exiting
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)


def _with_own_networks(options: BuildOptions, containers: list[Container]) -> BuildOptions:
    """Remember the networks of proxynow's own container (its hostname is its short id)."""
    hostname = socket.gethostname()
    for container in containers:
        if len(hostname) >= 12 and container.id.startswith(hostname):
            return replace(options, own_networks=frozenset(container.networks))
    return options


# ---------------------------------------------------------------- API data → Container


def from_listing(entry: Mapping[str, Any]) -> Container:
    """A container from one `GET /containers/json` entry (no inspect needed)."""
    status = str(entry.get("Status", ""))
    health = ""
    for marker, value in (("(health: starting)", "starting"), ("(unhealthy)", "unhealthy")):
        if marker in status:
            health = value
    if not health and "(healthy)" in status:
        health = "healthy"
    ports: set[int] = set()
    bindings: dict[int, tuple[str, int]] = {}
    for port in entry.get("Ports") or ():
        if port.get("Type", "tcp") != "tcp":
            continue
        ports.add(int(port["PrivatePort"]))
        if port.get("PublicPort") and ":" not in str(port.get("IP", "")):
            bindings[int(port["PrivatePort"])] = (str(port.get("IP", "")), int(port["PublicPort"]))
    names = entry.get("Names") or [entry["Id"][:12]]
    return Container(
        id=entry["Id"],
        name=str(names[0]).lstrip("/"),
        labels=dict(entry.get("Labels") or {}),
        state=str(entry.get("State", "running")),
        health=health,
        networks=_networks(entry.get("NetworkSettings", {}).get("Networks")),
        ports=tuple(sorted(ports)),
        bindings=bindings,
        network_mode=str(entry.get("HostConfig", {}).get("NetworkMode", "")),
    )


def from_inspect(data: Mapping[str, Any]) -> Container:
    """A container from `GET /containers/{id}/json`."""
    state = data.get("State") or {}
    config = data.get("Config") or {}
    settings = data.get("NetworkSettings") or {}
    ports = sorted(
        int(key.split("/")[0]) for key in (config.get("ExposedPorts") or {}) if key.endswith("/tcp")
    )
    bindings: dict[int, tuple[str, int]] = {}
    for key, bound in (settings.get("Ports") or {}).items():
        if key.endswith("/tcp") and bound:
            host = (str(bound[0].get("HostIp", "")), int(bound[0]["HostPort"]))
            bindings[int(key.split("/")[0])] = host
    status = str(state.get("Status", "running"))
    if state.get("Paused"):
        status = "paused"
    return Container(
        id=str(data["Id"]),
        name=str(data.get("Name", "")).lstrip("/"),
        labels=dict(config.get("Labels") or {}),
        state=status,
        health=str((state.get("Health") or {}).get("Status", "")),
        networks=_networks(settings.get("Networks")),
        ports=tuple(ports),
        bindings=bindings,
        network_mode=str((data.get("HostConfig") or {}).get("NetworkMode", "")),
    )


def _networks(networks: Mapping[str, Any] | None) -> dict[str, str]:
    return {
        name: str(settings.get("IPAddress") or "")
        for name, settings in (networks or {}).items()
        if settings
    }
