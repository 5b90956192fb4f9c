"""`metrics_routes`: GET /metrics on an aiohttp app, scraping through the exporter."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from proxynow.config.static import Prometheus
from proxynow.edge.core.metrics import WorkerMetrics, request_key
from proxynow.observe.prometheus import CONTENT_TYPE, PrometheusExporter, metrics_routes


async def test_metrics_route_serves_the_exposition() -> None:
    worker = WorkerMetrics()
    stats = worker.target("web", "app@file", "app@file")
    pids = [41]

    async def collect() -> list[dict[str, Any]]:
        return [{"worker": 0, "pid": pids[0], "metrics": worker.collect()}]

    exporter = PrometheusExporter(Prometheus(), collect, lambda: pids)
    app = web.Application()
    app.add_routes(metrics_routes(exporter))
    async with TestClient(TestServer(app)) as client:
        stats.observe(request_key(200, b"GET"), 0.01, 0, 5)
        first = await client.get("/metrics")
        assert first.status == 200
        assert first.headers["Content-Type"] == CONTENT_TYPE
        labels = 'code="200",method="GET",protocol="http",service="app@file"'
        line = f"proxynow_service_requests_total{{{labels}}}"
        assert f"{line} 1.0" in await first.text()
        # The worker is replaced (new pid, counters from zero): the total stays, then grows.
        pids[0] = 42
        worker = WorkerMetrics()
        second = await (await client.get("/metrics")).text()
        assert f"{line} 1.0" in second
        worker.target("web", "app@file", "app@file").observe(request_key(200, b"GET"), 0, 0, 5)
        third = await (await client.get("/metrics")).text()
        assert f"{line} 2.0" in third
