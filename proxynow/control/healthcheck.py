"""Active health checks (`loadBalancer.healthCheck`), run by the control plane.

`HealthChecker.on_snapshot` is called with every published snapshot: it keeps one prober
task per (service, server URL) whose load balancer has a `healthCheck`, starting the new
ones and stopping those whose service left or whose check or servers transport changed
(an unchanged one keeps its state and schedule). A prober waits an interval (`interval`
while the server is up, `unhealthyInterval` while it is down; every server starts up, as in
Traefik), sends one request with aiohttp and judges the answer (`judge`). Probes of one
server never overlap: one that outlasts the interval makes the next start at the following
tick instead of stacking.

Only transitions matter: each is logged once (up -> down with the reason, down -> up), and
the set of down servers is handed to `publish` (`Supervisor.publish_health`) as a
`HealthSet`, which reaches the workers without a graph rebuild (edge/upstream/health.py).

The request follows Traefik's `checkHealthHTTP`: the check's `path` (with any query) is
resolved against the server URL, `scheme` and `port` replace the server's, `hostname` is
sent as Host, `headers` are added, `method` (GET) is used, redirects are followed unless
`followRedirects: false`, and the answer is healthy when its status equals `status`, or
without one when it is 2xx or 3xx; `timeout` (5s) bounds the whole exchange. https uses
the TLS settings of the service's serversTransport, as its requests do (`rootCAs`,
`insecureSkipVerify`, `serverName`, client `certificates`, versions and ciphers, through
edge/upstream/tls.py; the static `serversTransport` without one). `mode: grpc` is not
supported: it is logged as an error once and its servers are left up.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit, urlunsplit

from proxynow.config.dynamic import DynamicConfig, HealthCheck
from proxynow.config.static import StaticConfig
from proxynow.edge.upstream.health import HealthSet
from proxynow.edge.upstream.tls import client_context
from proxynow.edge.upstream.transport import TransportOptions, resolve_transport
from proxynow.snapshot import Snapshot

if TYPE_CHECKING:
    import aiohttp

__all__ = ["HealthChecker", "ProbeTarget", "judge", "probe_request"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    """What one prober checks; a prober restarts when this changes."""

    service: str
    url: str
    check: HealthCheck
    tls: TransportOptions  # only its TLS settings are used


@dataclass(frozen=True, slots=True)
class ProbeRequest:
    method: str
    url: str
    headers: Mapping[str, str]


def probe_request(server_url: str, check: HealthCheck) -> ProbeRequest:
    """The request that checks `server_url` (Go's `url.Parse` reference resolution)."""
    parts = urlsplit(urljoin(server_url, check.path))
    scheme = check.scheme or parts.scheme
    netloc = parts.netloc
    if check.port:
        host = parts.hostname or ""
        netloc = f"[{host}]:{check.port}" if ":" in host else f"{host}:{check.port}"
    url = urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))
    headers = dict(check.headers)
    if check.hostname:
        headers["Host"] = check.hostname
    return ProbeRequest(check.method or "GET", url, headers)


def judge(status: int, expected: int) -> str | None:
    """Why an answer with `status` is unhealthy, or None when it is healthy."""
    if expected:
        if status != expected:
            return f"received status {status}, expected {expected}"
        return None
    if not 200 <= status < 400:
        return f"received error status {status}"
    return None


class HealthChecker:
    """The control plane's probers, and the down servers they found."""

    def __init__(self, static: StaticConfig, publish: Callable[[HealthSet], None]) -> None:
        self._static = static
        self._publish = publish
        self._probers: dict[tuple[str, str], tuple[ProbeTarget, asyncio.Task[None]]] = {}
        self._down: dict[str, frozenset[str]] = {}
        # The tables last seen: an unchanged pair (same objects) needs no work.
        self._tables: tuple[object, object] = (None, None)
        self._contexts: dict[TransportOptions, ssl.SSLContext] = {}
        self._session: aiohttp.ClientSession | None = None
        self._grpc_warned: set[str] = set()

    @property
    def probing(self) -> frozenset[tuple[str, str]]:
        """The (service, server URL) pairs being checked."""
        return frozenset(self._probers)

    def servers(self) -> dict[tuple[str, str], bool]:
        """(service, server URL) -> up, for every server being checked (the metrics'
        `service_server_up`)."""
        return {
            (service, url): url not in self._down.get(service, frozenset())
            for service, url in self._probers
        }

    def on_snapshot(self, snapshot: Snapshot) -> None:
        """Start, keep or stop probers so that they match `snapshot`'s services."""
        config = snapshot.config
        tables = (config.http.services, config.http.servers_transports)
        if tables[0] is self._tables[0] and tables[1] is self._tables[1]:
            return
        self._tables = tables
        wanted = self._targets(config)
        for key in [k for k, (target, _) in self._probers.items() if wanted.get(k) != target]:
            self._stop_prober(key)
        for key, target in wanted.items():
            if key not in self._probers:
                self._start_prober(key, target)
        self._forget_down(wanted)

    async def close(self) -> None:
        """Stop every prober and close the HTTP client."""
        tasks = [task for _, task in self._probers.values()]
        self._probers.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- what to probe

    def _targets(self, config: DynamicConfig) -> dict[tuple[str, str], ProbeTarget]:
        targets: dict[tuple[str, str], ProbeTarget] = {}
        for name, service in config.http.services.items():
            lb = service.load_balancer
            if lb is None or lb.health_check is None:
                continue
            if lb.health_check.mode == "grpc":
                if name not in self._grpc_warned:
                    self._grpc_warned.add(name)
                    log.error(
                        "service %s: healthCheck mode grpc is not supported; "
                        "its servers are not checked",
                        name,
                    )
                continue
            tls = self._tls(config, lb.servers_transport)
            for server in lb.servers:
                targets[name, server.url] = ProbeTarget(name, server.url, lb.health_check, tls)
        return targets

    def _tls(self, config: DynamicConfig, transport: str) -> TransportOptions:
        return resolve_transport(self._static, config.http.servers_transports, transport)

    def _forget_down(self, wanted: Mapping[tuple[str, str], ProbeTarget]) -> None:
        """Servers that are no longer probed are no longer down."""
        kept = {
            service: frozenset(url for url in urls if (service, url) in wanted)
            for service, urls in self._down.items()
        }
        kept = {service: urls for service, urls in kept.items() if urls}
        if kept != self._down:
            self._down = kept
            self._publish(HealthSet(kept))

    # -- probers

    def _start_prober(self, key: tuple[str, str], target: ProbeTarget) -> None:
        task = asyncio.get_running_loop().create_task(
            self._run(target), name=f"health check {target.service} {target.url}"
        )
        task.add_done_callback(_log_failure)
        self._probers[key] = (target, task)

    def _stop_prober(self, key: tuple[str, str]) -> None:
        _, task = self._probers.pop(key)
        task.cancel()

    async def _run(self, target: ProbeTarget) -> None:
        loop = asyncio.get_running_loop()
        check = target.check
        interval = check.interval if check.interval > 0 else 30.0
        unhealthy = check.unhealthy_interval
        unhealthy = interval if unhealthy is None or unhealthy <= 0 else unhealthy
        up = target.url not in self._down.get(target.service, frozenset())
        while True:
            period = interval if up else unhealthy
            await asyncio.sleep(period)
            started = loop.time()
            reason = await self.probe(target)
            up = self._record(target, reason)
            # A probe slower than the period: the next one waits for the following tick.
            late = loop.time() - started
            if late > period:
                await asyncio.sleep(period - late % period)

    async def probe(self, target: ProbeTarget) -> str | None:
        """One check of `target`: None when healthy, else why not."""
        import aiohttp  # ~0.2 s to import: only once a health check is configured

        request = probe_request(target.url, target.check)
        timeout = target.check.timeout if target.check.timeout > 0 else 5.0
        https = request.url.startswith("https:")
        try:
            async with self._client().request(
                request.method,
                request.url,
                headers=request.headers,
                allow_redirects=target.check.follow_redirects,
                timeout=aiohttp.ClientTimeout(total=timeout),
                ssl=self._context(target.tls) if https else True,
                server_hostname=(target.tls.server_name or None) if https else None,
            ) as response:
                return judge(response.status, target.check.status)
        except TimeoutError:
            return f"no answer within {timeout:g}s"
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return f"request failed: {exc or type(exc).__name__}"

    def _record(self, target: ProbeTarget, reason: str | None) -> bool:
        """Note the result; log and publish only a change. True when the server is up."""
        down = self._down.get(target.service, frozenset())
        was_up = target.url not in down
        if (reason is None) == was_up:
            return was_up
        if reason is None:
            log.warning("service %s: server %s is back up", target.service, target.url)
            down = down - {target.url}
        else:
            log.warning("service %s: server %s is down: %s", target.service, target.url, reason)
            down = down | {target.url}
        if down:
            self._down[target.service] = down
        else:
            self._down.pop(target.service, None)
        self._publish(HealthSet(self._down))
        return reason is None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            import aiohttp

            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
            )
        return self._session

    def _context(self, options: TransportOptions) -> ssl.SSLContext:
        context = self._contexts.get(options)
        if context is None:  # raises on unreadable files: the probe fails with the reason
            context = self._contexts[options] = client_context(options)
        return context


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("%s stopped", task.get_name(), exc_info=task.exception())
