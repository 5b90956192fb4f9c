"""The control plane's API server: aiohttp on a loopback port that only the workers use.

`ApiServer.start` listens on 127.0.0.1 port 0 and returns its origin, the URL the
internal services point at (proxynow/api/internal.py). Every path there starts with a
random secret (`/<token>/api/...`, `/<token>/ping/...`): the workers' requests carry it
through the services' `preservePath`, and a local process that finds the port but not
the token gets 404, so the API cannot be reached around the routers (and, later, the
middlewares) in front of `api@internal`. The token never appears in an answer: internal
services show no configuration (proxynow/api/shapes.py).

`publish(snapshot)` adds the internal routers and services to each snapshot the
aggregator makes and keeps the result, which is what the workers get; the control plane
also hands it the active health checks' down servers (`set_health`), and calls `drain()`
when it starts stopping, from which /ping answers the terminating status.

The handler is thin: it builds the `View` of the current state once per change (in a
thread, so that a large configuration does not hold the control plane's loop) and lets
proxynow/api/endpoints.py answer. Beside it: the dashboard's files and redirects
(proxynow/api/dashboard.py, for the services `dashboard@internal` and `api@internal`,
unless `api.dashboard: false`) and the live stream `<basePath>/api/stream`
(proxynow/api/stream.py), which `publish` and `set_health` wake and whose rates come
from the source the control plane hands over with `set_rates`.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from aiohttp import web

from proxynow.api.dashboard import Assets, dashboard_answer, is_dashboard_path
from proxynow.api.endpoints import Answer, answer, ping_answer
from proxynow.api.internal import Internals, api_prefix, base_path
from proxynow.api.shapes import View
from proxynow.api.stream import DEFAULT_MAX_CLIENTS, RateSource, StreamHub
from proxynow.config.static import StaticConfig
from proxynow.edge.upstream.health import HealthSet
from proxynow.snapshot import Snapshot

__all__ = ["ApiServer", "wanted"]

log = logging.getLogger(__name__)

# Prometheus text format 0.0.4 (what prometheus_client's exposition writes).
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_NOT_FOUND = Answer(404, b"404 page not found\n", "text/plain; charset=utf-8")
# A worker's keep-alive connections are closed at once on stop: nothing long runs here.
_SHUTDOWN_TIMEOUT = 1.0


def wanted(static: StaticConfig) -> bool:
    """Whether `static` asks for the API or /ping (else no server is started)."""
    prometheus = static.metrics.prometheus if static.metrics is not None else None
    return static.api is not None or static.ping is not None or prometheus is not None


class ApiServer:
    """The API and /ping, served to the workers on a private loopback address."""

    def __init__(
        self,
        static: StaticConfig,
        *,
        stream_clients: int = DEFAULT_MAX_CLIENTS,
        stream_interval: float = 1.0,
    ) -> None:
        self._static = static
        self._token = secrets.token_urlsafe(18)
        self._prefix = api_prefix(static)
        self._base = base_path(static)
        self._assets: Assets | None = None  # loaded at start when the dashboard is on
        self._terminating = static.ping.terminating_status_code if static.ping else 503
        self._started = datetime.now(UTC)
        self._snapshot = Snapshot.empty()
        self._internals = Internals()
        self._health: HealthSet | None = None
        self._draining = False
        self._view: tuple[tuple[object, object], View] | None = None
        self._building = asyncio.Lock()
        self._runner: web.AppRunner | None = None
        self._metrics: Callable[[], Awaitable[bytes]] | None = None
        self.stream = StreamHub(self.view, stream_clients, stream_interval)

    async def start(self) -> None:
        """Listen, and make the internal routers and services that lead here."""
        if self._static.api is not None and self._static.api.dashboard:
            self._assets = await asyncio.to_thread(Assets.load)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=_SHUTDOWN_TIMEOUT
        )
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", 0))
            site = web.SockSite(runner, sock)
            await site.start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        self._runner = runner
        port = sock.getsockname()[1]
        log.debug("API server on 127.0.0.1:%d", port)
        self._internals = Internals.build(self._static, f"http://127.0.0.1:{port}/{self._token}")

    @property
    def origin(self) -> str:
        """The private URL with the secret prefix (for in-process tests)."""
        service = self._internals.services.get("api@internal")
        assert service is not None and service.load_balancer is not None
        return service.load_balancer.servers[0].url.removesuffix("/api")

    async def close(self) -> None:
        await self.stream.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def publish(self, snapshot: Snapshot) -> Snapshot:
        """`snapshot` with the internal routers and services: what the workers serve."""
        self._snapshot = self._internals.apply(snapshot)
        self.stream.changed()
        return self._snapshot

    def set_metrics(self, render: Callable[[], Awaitable[bytes]]) -> None:
        """Serve `/metrics` (`prometheus@internal`) with what `render` scrapes."""
        self._metrics = render

    def set_health(self, health: HealthSet) -> None:
        self._health = health
        self.stream.changed()

    def set_rates(self, source: RateSource) -> None:
        """The per-second rates the stream sends (proxynow/observe/rates.py)."""
        self.stream.rates = source

    def drain(self) -> None:
        """From now on /ping answers the terminating status."""
        self._draining = True

    async def view(self) -> View:
        """The view of the current snapshot and health, built once per change."""
        async with self._building:
            snapshot, health = self._snapshot, self._health
            known = self._view
            if known is None or known[0][0] is not snapshot or known[0][1] is not health:
                view = await asyncio.to_thread(
                    View.build, self._static, snapshot, health, self._started
                )
                known = self._view = ((snapshot, health), view)
            return known[1]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        token, service, path = _split(request.rel_url.raw_path)
        stream = f"{self._prefix}/stream"
        secret = hmac.compare_digest(token.encode(), self._token.encode())
        if secret and service == "api" and path == stream and request.method == "GET":
            return await self.stream.serve(request)
        result = await self._answer(request)
        response = web.Response(
            status=result.status, body=result.body, content_type=None, headers=result.headers
        )
        response.headers["Content-Type"] = result.content_type
        response.headers["Server"] = "proxynow"  # not aiohttp's, which names versions
        return response

    async def _answer(self, request: web.Request) -> Answer:
        token, service, path = _split(request.rel_url.raw_path)
        if not hmac.compare_digest(token.encode(), self._token.encode()):
            return _NOT_FOUND
        if service == "ping":
            return ping_answer(self._draining, self._terminating)
        if service == "metrics" and self._metrics is not None:
            return Answer(200, await self._metrics(), METRICS_CONTENT_TYPE)
        if self._assets is not None and (
            service == "dashboard" or (service == "api" and is_dashboard_path(self._base, path))
        ):
            if request.method not in ("GET", "HEAD"):
                return Answer(405, b"", "text/plain; charset=utf-8")
            return dashboard_answer(self._assets, self._base, path)
        if service != "api":
            return _NOT_FOUND
        query = {key: request.query.getone(key) for key in request.query}
        now = datetime.now(UTC)
        return answer(await self.view(), request.method, path, query, self._prefix, now)


def _split(raw_path: str) -> tuple[str, str, str]:
    """`/<token>/<service><original path>` → (token, service, original path)."""
    _, _, rest = raw_path.partition("/")
    token, _, rest = rest.partition("/")
    service, slash, path = rest.partition("/")
    return token, service, slash + path
