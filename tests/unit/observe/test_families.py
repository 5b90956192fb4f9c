"""Traefik's metric families under proxynow_: names, labels, options, histogram buckets."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from proxynow.certs import self_signed
from proxynow.config.dynamic import DynamicConfig
from proxynow.config.static import Prometheus
from proxynow.edge.core.metrics import P_WEBSOCKET, WorkerMetrics, request_key
from proxynow.observe.control import ControlStats
from proxynow.observe.families import families, go_float
from proxynow.observe.prometheus import _Families
from proxynow.observe.totals import Totals
from proxynow.snapshot import Snapshot

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _totals(buckets: tuple[float, ...] = (0.1, 0.3, 1.2, 5.0)) -> Totals:
    metrics = WorkerMetrics(buckets)
    app = metrics.target("web", "app@file", "app@file")
    tls = metrics.tls.bits("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256")
    app.observe(request_key(200, b"GET", tls), 0.05, 0, 100)
    app.observe(request_key(200, b"GET", tls), 0.2, 0, 100)
    app.observe(request_key(404, b"PROPFIND"), 2.0, 7, 9)
    app.observe(request_key(101, b"GET", P_WEBSOCKET), 9.0, 0, 0)
    app.retry()
    metrics.target("web", "dash@internal", "api@internal").observe(
        request_key(200, b"GET"), 0, 0, 1
    )
    metrics.entrypoint("web").unrouted.observe(request_key(404, b"GET"), 0.0, 0, 19)
    metrics.entrypoint("web").open_connections = 2
    metrics.entrypoint("web").tcp_open_connections = 1
    return Totals.from_worker(metrics.collect())


def _render(totals: Totals, options: Prometheus, control: ControlStats | None = None) -> str:
    servers = {("app@file", "http://10.0.0.1"): True, ("app@file", "http://10.0.0.2"): False}
    metrics = families(totals, control or ControlStats(), servers, options)
    return generate_latest(_Families(metrics)).decode()


def _samples(text: str) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return found


def _get(samples: Samples, name: str, **labels: str) -> float:
    return samples[name, tuple(sorted(labels.items()))]


def test_entrypoint_and_service_families_by_default() -> None:
    text = _render(_totals(), Prometheus())
    samples = _samples(text)
    ep = {"entrypoint": "web", "protocol": "http"}
    assert _get(samples, "proxynow_entrypoint_requests_total", code="200", method="GET", **ep) == 3
    assert _get(samples, "proxynow_entrypoint_requests_total", code="404", method="GET", **ep) == 1
    assert (
        _get(
            samples,
            "proxynow_entrypoint_requests_total",
            code="404",
            method="EXTENSION_METHOD",
            **ep,
        )
        == 1
    )
    ws = {"entrypoint": "web", "protocol": "websocket", "code": "101", "method": "GET"}
    assert _get(samples, "proxynow_entrypoint_requests_total", **ws) == 1
    assert (
        _get(samples, "proxynow_entrypoint_responses_bytes_total", code="404", method="GET", **ep)
        == 19
    )
    assert (
        _get(
            samples,
            "proxynow_entrypoint_requests_bytes_total",
            code="404",
            method="EXTENSION_METHOD",
            **ep,
        )
        == 7
    )
    tls = {"tls_version": "1.2", "tls_cipher": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}
    assert _get(samples, "proxynow_entrypoint_requests_tls_total", entrypoint="web", **tls) == 2
    assert _get(samples, "proxynow_service_requests_tls_total", service="app@file", **tls) == 2
    svc = {"service": "app@file", "protocol": "http", "code": "200", "method": "GET"}
    assert _get(samples, "proxynow_service_requests_total", **svc) == 2  # internal left out
    assert _get(samples, "proxynow_service_retries_total", service="app@file") == 1
    assert (
        _get(samples, "proxynow_service_server_up", service="app@file", url="http://10.0.0.1") == 1
    )
    assert (
        _get(samples, "proxynow_service_server_up", service="app@file", url="http://10.0.0.2") == 0
    )
    assert _get(samples, "proxynow_open_connections", entrypoint="web", protocol="TCP") == 3
    assert _get(samples, "proxynow_config_reloads_total") == 0
    assert not any(name.startswith("proxynow_router_") for name, _ in samples)
    assert "proxynow_service_requests_total{" in text  # Traefik's exact names, _total kept
    assert "# TYPE proxynow_entrypoint_request_duration_seconds histogram" in text


def test_histogram_buckets_as_traefik_writes_them() -> None:
    text = _render(_totals(), Prometheus())
    samples = _samples(text)
    labels = {"entrypoint": "web", "protocol": "http", "code": "200", "method": "GET"}
    name = "proxynow_entrypoint_request_duration_seconds"
    got = {
        le: _get(samples, f"{name}_bucket", le=le, **labels)
        for le in ("0.1", "0.3", "1.2", "5", "+Inf")
    }
    # 0.05 and 0 (the internal one) are <= 0.1, 0.2 is <= 0.3.
    assert got == {"0.1": 2, "0.3": 3, "1.2": 3, "5": 3, "+Inf": 3}
    assert _get(samples, f"{name}_count", **labels) == 3
    assert _get(samples, f"{name}_sum", **labels) == pytest.approx(0.25)
    assert 'le="5"' in text and 'le="5.0"' not in text
    ws = {"entrypoint": "web", "protocol": "websocket", "code": "101", "method": "GET"}
    assert _get(samples, f"{name}_bucket", le="5", **ws) == 0
    assert _get(samples, f"{name}_bucket", le="+Inf", **ws) == 1


def test_custom_buckets() -> None:
    text = _render(_totals((0.25, 1.0, 10.0)), Prometheus(buckets=[0.25, 1.0, 10.0]))
    samples = _samples(text)
    labels = {
        "service": "app@file",
        "protocol": "http",
        "code": "404",
        "method": "EXTENSION_METHOD",
    }
    name = "proxynow_service_request_duration_seconds_bucket"
    assert [_get(samples, name, le=le, **labels) for le in ("0.25", "1", "10", "+Inf")] == [
        0,
        0,
        1,
        1,
    ]


def test_label_options() -> None:
    options = Prometheus(
        add_entry_points_labels=False, add_routers_labels=True, add_services_labels=False
    )
    samples = _samples(_render(_totals(), options))
    names = {name for name, _ in samples}
    assert not any(n.startswith(("proxynow_entrypoint_", "proxynow_service_")) for n in names)
    router = {"router": "app@file", "service": "app@file", "protocol": "http"}
    assert _get(samples, "proxynow_router_requests_total", code="200", method="GET", **router) == 2
    assert (
        _get(
            samples,
            "proxynow_router_request_duration_seconds_bucket",
            code="200",
            method="GET",
            le="0.1",
            **router,
        )
        == 1
    )
    assert "proxynow_router_requests_tls_total" in names
    assert "proxynow_open_connections" in names  # not tied to a level


def test_reloads_and_certificates() -> None:
    cert, key = self_signed(
        "app.example", ["app.example", "www.app.example"], valid_for=datetime.timedelta(days=30)
    )
    config = DynamicConfig.model_validate(
        {"tls": {"certificates": [{"certFile": cert.decode(), "keyFile": key.decode()}]}}
    )
    control = ControlStats(clock=lambda: 1700000000.0)
    control.on_snapshot(Snapshot(1, DynamicConfig()))
    control.on_snapshot(Snapshot(2, config))
    samples = _samples(_render(_totals(), Prometheus(), control))
    assert _get(samples, "proxynow_config_reloads_total") == 2
    assert _get(samples, "proxynow_config_last_reload_success") == 1700000000.0
    parsed = x509.load_pem_x509_certificate(cert)
    labels = {
        "cn": "app.example",
        "serial": str(parsed.serial_number),
        "sans": "app.example,www.app.example",
    }
    assert (
        _get(samples, "proxynow_tls_certs_not_after", **labels)
        == parsed.not_valid_after_utc.timestamp()
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.1, "0.1"),
        (5.0, "5"),
        (1.2, "1.2"),
        (10.0, "10"),
        (0.0005, "0.0005"),
        (1e-05, "1e-05"),
        (float("inf"), "+Inf"),
    ],
)
def test_go_float(value: float, text: str) -> None:
    assert go_float(value) == text


def test_routing_duration_histogram() -> None:
    metrics = WorkerMetrics()
    for seconds in (3e-6, 3e-6, 2e-4):
        metrics.entrypoint("web").routed(seconds)
    samples = _samples(_render(Totals.from_worker(metrics.collect()), Prometheus()))
    name = "proxynow_routing_duration_seconds"
    assert _get(samples, f"{name}_bucket", entrypoint="web", le="2.5e-06") == 0
    assert _get(samples, f"{name}_bucket", entrypoint="web", le="5e-06") == 2
    assert _get(samples, f"{name}_bucket", entrypoint="web", le="0.0001") == 2
    assert _get(samples, f"{name}_bucket", entrypoint="web", le="0.001") == 3
    assert _get(samples, f"{name}_count", entrypoint="web") == 3
