"""The Prometheus endpoint: scrape the workers, accumulate, render Traefik's families.

`PrometheusExporter.render()` is one scrape: it asks every worker for its counters
(`Supervisor.collect`), folds the answers into the restart-safe `Accumulator`
(proxynow/observe/totals.py), and renders `families(...)` (proxynow/observe/families.py)
in the Prometheus text format 0.0.4, which is what Traefik's handler serves. Nothing is
kept per request or per label between scrapes except the accumulator's last totals.

`metrics_routes(exporter)` gives the aiohttp route (`GET /metrics`) that the control
plane's internal app mounts as `prometheus@internal`: on `metrics.prometheus.entryPoint`
(default `traefik`), or, with `manualRouting: true`, only behind a user's router to
`prometheus@internal`.

`metrics.prometheus.headerLabels`: the workers count per header-value combination id, and the
accumulator turns the ids into label values under the same cap (observe/totals.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client.core import Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from proxynow.config.static import Prometheus
from proxynow.observe.control import ControlStats
from proxynow.observe.families import families
from proxynow.observe.totals import Accumulator, Totals

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["CONTENT_TYPE", "PrometheusExporter", "metrics_routes"]


CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

Collect = Callable[[], Awaitable[list[dict[str, Any]]]]


class _Families:
    """A prometheus_client collector over one scrape's families."""

    __slots__ = ("_metrics",)

    def __init__(self, metrics: Iterator[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self._metrics


class PrometheusExporter:
    """One `proxynow run`'s Prometheus view of its workers and control plane."""

    __slots__ = ("_accumulator", "_alive", "_collect", "_servers", "control", "options")

    def __init__(
        self,
        options: Prometheus,
        collect: Collect,
        alive: Callable[[], Iterable[int]],
        servers: Callable[[], Mapping[tuple[str, str], bool]] = dict,
        control: ControlStats | None = None,
    ) -> None:
        """`collect`: `Supervisor.collect`; `alive`: the pids of the worker processes that
        exist now; `servers`: (service, url) -> up, for the servers health checks probe."""
        self.options = options
        self.control = control if control is not None else ControlStats()
        self._collect = collect
        self._alive = alive
        self._servers = servers
        self._accumulator = Accumulator(options.header_labels)

    async def totals(self) -> Totals:
        """One scrape of the workers, accumulated."""
        answers = await self._collect()
        return self._accumulator.update(answers, self._alive())

    async def render(self) -> bytes:
        """The text exposition of every family, after one scrape."""
        totals = await self.totals()
        metrics = families(totals, self.control, self._servers(), self.options)
        return generate_latest(_Families(metrics))


def metrics_routes(exporter: PrometheusExporter) -> list[web.RouteDef]:
    """`GET /metrics` for an aiohttp app (the internal service `prometheus@internal`)."""
    from aiohttp import web  # the control plane imports aiohttp only where it serves

    async def handle(request: web.Request) -> web.Response:
        body = await exporter.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    return [web.get("/metrics", handle)]
