"""`GET /metrics` through the data plane: `prometheus@internal` on its entrypoint, as Traefik.

With `metrics.prometheus` the control plane's exposition is the internal service
`prometheus@internal`; its router puts `/metrics` on `metrics.prometheus.entryPoint`
(`traefik`), unless `manualRouting`, when only a user router reaches it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.proc import HttpBackend, ProxynowProcess, http_get, poll, proxynow_factory

__all__ = ["proxynow_factory"]

Start = Callable[..., ProxynowProcess]
ENTRYPOINTS = {"web": {"address": "127.0.0.1:0"}, "traefik": {"address": "127.0.0.1:0"}}


@pytest.fixture
def backend() -> Iterator[HttpBackend]:
    with HttpBackend("b") as server:
        yield server


def app_routes(backend: HttpBackend, **extra_routers: dict[str, object]) -> dict[str, object]:
    routers = {"app": {"rule": "Host(`app.test`)", "service": "app", "entryPoints": ["web"]}}
    return {
        "http": {
            "routers": {**routers, **extra_routers},
            "services": {"app": {"loadBalancer": {"servers": [{"url": backend.url}]}}},
        }
    }


def app_requests(text: str) -> float:
    """proxynow_entrypoint_requests_total of the `web` entrypoint, all codes."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "proxynow_entrypoint_requests_total"
        and sample.labels.get("entrypoint") == "web"
    )


def test_metrics_are_served_on_the_traefik_entrypoint(
    proxynow_factory: Start, backend: HttpBackend
) -> None:
    static = {"entryPoints": ENTRYPOINTS, "metrics": {"prometheus": {}}}
    proxy = proxynow_factory(static, app_routes(backend), workers=1)
    for _ in range(3):
        assert http_get(proxy.ports["web"], host="app.test") == (200, b"b /")

    def scraped() -> str | None:
        status, body = http_get(proxy.ports["traefik"], "/metrics", host="127.0.0.1")
        text = body.decode()
        return text if status == 200 and app_requests(text) == 3 else None

    text = poll(scraped, what="the three requests in /metrics")
    assert "proxynow_config_reloads_total" in text
    # Not on the other entrypoint: the internal router names `traefik` only.
    assert http_get(proxy.ports["web"], "/metrics", host="app.test")[1] == b"b /metrics"


def test_manual_routing_serves_metrics_only_through_a_user_router(
    proxynow_factory: Start, backend: HttpBackend
) -> None:
    static = {"entryPoints": ENTRYPOINTS, "metrics": {"prometheus": {"manualRouting": True}}}
    mine = {"rule": "Host(`metrics.test`)", "service": "prometheus@internal"}
    proxy = proxynow_factory(static, app_routes(backend, mine=mine), workers=1)
    _, body = poll(
        lambda: (
            (answer := http_get(proxy.ports["web"], "/metrics", host="metrics.test"))[0] == 200
            and answer
        ),
        what="/metrics through the user's router",
    )
    assert b"proxynow_open_connections" in body
    assert http_get(proxy.ports["traefik"], "/metrics", host="127.0.0.1")[0] == 404
