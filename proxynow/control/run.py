"""The control plane of `proxynow run`: static config in, a serving proxy out.

It wires the pieces together and owns their lifetimes: logging, the entrypoint address
reservations (`proxynow.ipc.listen.reserve`), the API server (proxynow/api/, when
`api` or `ping` is configured), the supervisor and its workers, the aggregator and the
providers. Every snapshot the aggregator publishes gets the internal routers and services
(`ApiServer.publish`) and goes to the supervisor, which pushes it to every worker.
SIGTERM or SIGINT stops the providers and drains the workers (while /ping answers 503);
`run` returns 0 after a clean drain, 1 when it cannot start (an address in use, a worker
that cannot listen), with the reason on stderr.

The control socket: when the environment variable `PROXYNOW_CONTROL_SOCKET` names a
path, the control plane answers one JSON request per line on that unix socket:
`{"op": "status"}` → `{"version", "workers": [{"id", "pid", "ready", "version",
"restarts", "applied", "stall_ms_max", "stall_ms_recent"}]}` (the stalls: how long
applying a change held the worker's loop), `{"op": "metrics"}` → `{"workers":
[{"worker", "pid", "metrics"}]}`, and with `metrics.prometheus` configured `{"op":
"prometheus"}` → `{"text": <the /metrics exposition>}` (proxynow/observe/prometheus.py).
Tests and local tooling use it to wait for "every worker serves version ≥ v" and to
read per-worker counters; the metrics endpoint is built on the same `collect()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import uvloop

from proxynow.api.internal import (
    api_prefix,
    base_path,
    effective_static,
    internal_services,
    router_entry_points,
)
from proxynow.api.server import ApiServer, wanted
from proxynow.config.static import StaticConfig
from proxynow.control.aggregator import Aggregator
from proxynow.control.healthcheck import HealthChecker
from proxynow.control.supervisor import Supervisor, WorkerStartError
from proxynow.edge.upstream.health import HealthSet
from proxynow.ipc import priority
from proxynow.ipc.listen import AddressInUse, ListenAddress, display_url, reserve
from proxynow.logs import configure_logging, reopen_logging
from proxynow.observe.rates import RateSampler
from proxynow.observe.views import with_views
from proxynow.providers.base import Provider
from proxynow.snapshot import Snapshot

if TYPE_CHECKING:
    from proxynow.acme.manager import AcmeManager
    from proxynow.observe.prometheus import PrometheusExporter

__all__ = ["CONTROL_SOCKET_ENV", "control_request", "run"]

log = logging.getLogger(__name__)

CONTROL_SOCKET_ENV = "PROXYNOW_CONTROL_SOCKET"

EXIT_OK = 0
EXIT_START_FAILED = 1
START_TIMEOUT = 60.0


def run(static: StaticConfig) -> int:
    """Serve until SIGTERM/SIGINT; the process exit code."""
    configure_logging(static.log)
    return uvloop.run(_ControlPlane(static).run())


class _ControlPlane:
    def __init__(self, static: StaticConfig) -> None:
        self._static = effective_static(static)  # with the `traefik` entrypoint if needed
        self._reserved: list[socket.socket] = []
        self._stop = asyncio.Event()

    async def run(self) -> int:
        try:
            addresses = self._reserve()
        except (AddressInUse, OSError, ValueError) as exc:
            _say(f"proxynow: cannot start: {_reason(exc)}")
            return EXIT_START_FAILED
        api = ApiServer(self._static) if wanted(self._static) else None
        try:
            if api is not None:
                await api.start()
            return await self._serve(addresses, api)
        finally:
            if api is not None:
                await api.close()
            for sock in self._reserved:
                sock.close()

    def _reserve(self) -> dict[str, ListenAddress]:
        """Bind every entrypoint address once (port 0 resolved) before any worker starts."""
        addresses: dict[str, ListenAddress] = {}
        for name, entrypoint in self._static.entry_points.items():
            wanted = ListenAddress(entrypoint.host, entrypoint.port, entrypoint.protocol)
            if wanted.transport == "udp":
                log.error("entrypoint %s: UDP is not supported yet; not listening", name)
                continue
            try:
                address, sockets = reserve(wanted)
            except AddressInUse as exc:
                raise AddressInUse(exc.errno, f"entrypoint {name}: {exc.strerror}") from exc
            self._reserved.extend(sockets)
            addresses[name] = address
        return addresses

    async def _serve(self, addresses: dict[str, ListenAddress], api: ApiServer | None) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stop.set)
        initial = api.publish(Snapshot.empty()) if api is not None else Snapshot.empty()
        supervisor = Supervisor(self._static, addresses, initial)
        loop.add_signal_handler(signal.SIGUSR1, _reopen_logs, supervisor)
        # Importing the ACME client takes ~0.15 s: do it in a thread while the workers start.
        acme_loading = asyncio.ensure_future(
            asyncio.to_thread(_acme_manager, self._static, supervisor)
        )
        try:
            started = await self._start(supervisor)
        except WorkerStartError as exc:
            _say(f"proxynow: cannot start: {exc}")
            return EXIT_START_FAILED
        finally:
            acme = await acme_loading
        if not started:
            return EXIT_OK
        nice = priority.lower_process()
        log.debug("control plane runs at nice %d, below its workers", nice)
        self._announce(addresses)
        health = HealthChecker(self._static, _health_publisher(supervisor, api))
        prometheus = _prometheus(self._static, supervisor, health)
        if prometheus is not None and api is not None:
            api.set_metrics(prometheus.render)
        if api is not None:  # the stream's rates: sampled only while a client watches
            api.set_rates(RateSampler(supervisor.collect))
        aggregator = Aggregator(
            router_entry_points(self._static),
            _publisher(supervisor, acme, health, api, prometheus),
            throttle=self._static.providers.providers_throttle_duration,
            internal_services=internal_services(self._static),
        )
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(aggregator.run(), name="aggregator")]
                for provider in [*_providers(self._static), *([acme] if acme else [])]:
                    tasks.append(
                        group.create_task(
                            _run_provider(provider, aggregator), name=f"provider {provider.name}"
                        )
                    )
                control = await _control_server(supervisor, prometheus)
                await self._stop.wait()
                log.info("stopping: draining the workers")
                if api is not None:
                    api.drain()
                for task in tasks:
                    task.cancel()
                if control is not None:
                    control.close()
        finally:
            await health.close()
            await supervisor.stop()
        return EXIT_OK

    async def _start(self, supervisor: Supervisor) -> bool:
        """Start the workers; False if a signal asked us to stop first."""
        starting = asyncio.ensure_future(supervisor.start())
        stopping = asyncio.ensure_future(self._wait_stop())
        done, _ = await asyncio.wait(
            {starting, stopping}, timeout=START_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
        )
        stopping.cancel()
        if starting in done:
            starting.result()
            return True
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
        if stopping in done:
            return False
        raise WorkerStartError(f"the workers were not ready after {START_TIMEOUT:.0f}s")

    async def _wait_stop(self) -> None:
        await self._stop.wait()

    def _announce(self, addresses: dict[str, ListenAddress]) -> None:
        """Say what is served where, even at the default ERROR log level (stderr)."""
        for name, address in addresses.items():
            entrypoint = self._static.entry_points[name]
            scheme = "https" if entrypoint.http.tls is not None else "http"
            protocol = scheme.upper()
            url = display_url(address, scheme)
            _say(f"proxynow: serving {protocol} on {url} (entrypoint {name})")
        api = self._static.api
        if api is not None and api.insecure and "traefik" in addresses:
            origin = display_url(addresses["traefik"], "http")
            _say(f"proxynow: API on {origin}{api_prefix(self._static)}/ (entrypoint traefik)")
            if api.dashboard:
                dashboard = f"{origin}{base_path(self._static)}/dashboard/"
                _say(f"proxynow: dashboard on {dashboard} (entrypoint traefik)")
        log.info("%d workers serving %d entrypoints", self._static.workers, len(addresses))


def _providers(static: StaticConfig) -> list[Provider]:
    """The configured providers."""
    providers: list[Provider] = []
    if static.providers.file is not None:
        from proxynow.providers.file import FileProvider

        providers.append(FileProvider.from_config(static.providers.file))
    if static.providers.docker is not None:
        from proxynow.providers.docker import DockerProvider  # the docker SDK only when used

        providers.append(DockerProvider(static.providers.docker))
    return providers


def _acme_manager(static: StaticConfig, supervisor: Supervisor) -> AcmeManager | None:
    """The ACME manager when an ACME resolver is configured (a provider named `acme`)."""
    if not any(r.acme for r in static.certificates_resolvers.values()):
        return None
    from proxynow.acme.manager import AcmeManager  # the acme library only when needed

    return AcmeManager(static, supervisor.publish_challenges)


def _prometheus(
    static: StaticConfig, supervisor: Supervisor, health: HealthChecker
) -> PrometheusExporter | None:
    """The Prometheus exporter when `metrics.prometheus` is configured (its routes are
    `proxynow.observe.prometheus.metrics_routes(exporter)`)."""
    options = static.metrics.prometheus if static.metrics is not None else None
    if options is None:
        return None
    from proxynow.observe.prometheus import PrometheusExporter  # prometheus_client if used

    return PrometheusExporter(options, supervisor.collect, supervisor.live_pids, health.servers)


def _publisher(
    supervisor: Supervisor,
    acme: AcmeManager | None,
    health: HealthChecker,
    api: ApiServer | None,
    prometheus: PrometheusExporter | None = None,
) -> Callable[[Snapshot], None]:
    """Every snapshot gets the internal routers and services (the API's, which keeps it)
    and goes to the workers, then to the health checker (its probers), the ACME manager
    (for its domains) and the metrics (a reload, its certificates)."""

    def publish(snapshot: Snapshot) -> None:
        if api is not None:
            snapshot = api.publish(snapshot)
        supervisor.publish(snapshot)
        health.on_snapshot(snapshot)
        if acme is not None:
            acme.on_snapshot(snapshot)
        if prometheus is not None:
            prometheus.control.on_snapshot(snapshot)

    return publish


def _health_publisher(supervisor: Supervisor, api: ApiServer | None) -> Callable[[HealthSet], None]:
    """Down servers go to the workers and to the API (`serverStatus`)."""

    def publish(health: HealthSet) -> None:
        supervisor.publish_health(health)
        if api is not None:
            api.set_health(health)

    return publish


async def _run_provider(provider: Provider, aggregator: Aggregator) -> None:
    """Run one provider; if it fails, log it and keep the rest of the proxy serving."""
    try:
        await provider.run(aggregator)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("provider %s stopped", provider.name)


async def _control_server(
    supervisor: Supervisor, prometheus: PrometheusExporter | None = None
) -> asyncio.AbstractServer | None:
    path = os.environ.get(CONTROL_SOCKET_ENV)
    if not path:
        return None
    handlers: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
        "status": lambda: _status(supervisor),
        "metrics": lambda: _metrics(supervisor),
    }
    if prometheus is not None:
        handlers["prometheus"] = lambda: _exposition(prometheus)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.closing(writer):
            while line := await reader.readline():
                try:
                    op = json.loads(line)["op"]
                    reply = await handlers[op]()
                except (ValueError, KeyError, TypeError) as exc:
                    reply = {"error": f"bad request: {exc!r}"}
                writer.write(json.dumps(reply).encode() + b"\n")
                await writer.drain()

    # Listening before the path exists: a client that waits for the file to appear is
    # never refused (bind creates the file, and listen comes after it).
    temporary = f"{path}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(temporary)
        sock.listen(128)
        os.replace(temporary, path)
    except OSError:
        sock.close()
        raise
    return await asyncio.start_unix_server(handle, sock=sock)


def control_request(path: str | os.PathLike[str], op: str, timeout: float = 10.0) -> dict[str, Any]:
    """Send one request to a running control plane's control socket; its JSON reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(os.fspath(path))
        sock.sendall(json.dumps({"op": op}).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    reply: dict[str, Any] = json.loads(data)
    return reply


async def _status(supervisor: Supervisor) -> dict[str, Any]:
    return {
        "version": supervisor.version,
        "workers": [info.as_dict() for info in supervisor.workers],
    }


async def _metrics(supervisor: Supervisor) -> dict[str, Any]:
    answers = await supervisor.collect()
    return {"workers": [{**a, "metrics": with_views(a["metrics"])} for a in answers]}


async def _exposition(prometheus: PrometheusExporter) -> dict[str, Any]:
    return {"text": (await prometheus.render()).decode()}


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _reopen_logs(supervisor: Supervisor) -> None:
    """SIGUSR1 (logrotate): reopen our log file and have every worker reopen theirs."""
    reopen_logging()
    supervisor.signal_workers(signal.SIGUSR1)
