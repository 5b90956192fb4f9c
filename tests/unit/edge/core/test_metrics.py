"""Per-worker metrics: integer counters per target, merged into views when collected
(pure; tests/integration/edge/core/test_metrics_proxy.py counts through a real proxy)."""

from __future__ import annotations

import json
import pickle

import pytest

from proxynow.edge.core.metrics import (
    METHOD_BITS,
    METHODS,
    P_GRPC,
    P_GRPC_WEB,
    P_SSE,
    P_WEBSOCKET,
    EntryPointStats,
    TargetStats,
    TlsTable,
    WorkerMetrics,
    request_key,
    split_key,
)
from proxynow.edge.http.exchange import Exchange, validate
from proxynow.edge.message.headers import RequestHead
from proxynow.observe.views import with_views


def test_observe_and_collect() -> None:
    metrics = WorkerMetrics()
    a = metrics.target("web", "r1@f", "s@f")
    b = metrics.target("web", "r2@f", "s@f")
    assert metrics.target("web", "r1@f", "s@f") is a
    a.observe(request_key(200, b"GET"), 0.05, 10, 100)
    a.observe(request_key(404, b"GET"), 0.2, 0, 5)
    b.observe(request_key(503, b"BREW"), 7.0, 1, 2)
    b.retry()
    metrics.entrypoint("web").open_connections = 3
    metrics.entrypoint("web").unrouted.observe(request_key(400, b"POST"), 0.0, 0, 0)
    raw = metrics.collect()
    assert pickle.loads(pickle.dumps(raw)) == raw
    assert json.loads(json.dumps(raw)) == raw  # the control socket sends it as JSON
    data = with_views(raw)
    web = data["entrypoints"]["web"]
    assert web["requests"] == {
        "2xx": {"GET": 1},
        "4xx": {"GET": 1, "POST": 1},
        "5xx": {"EXTENSION_METHOD": 1},
    }
    assert web["codes"] == {"200": 1, "404": 1, "503": 1, "400": 1}
    assert web["duration"]["buckets"] == [2, 1, 0, 0, 1]
    assert web["duration"]["count"] == 4
    assert (web["bytes_in"], web["bytes_out"], web["open_connections"]) == (11, 107, 3)
    assert data["routers"]["r1@f"]["requests"] == {"2xx": {"GET": 1}, "4xx": {"GET": 1}}
    service = data["services"]["s@f"]
    assert service["retries"] == 1
    assert service["duration"]["count"] == 3


def test_one_method_index_for_every_label_and_unknown_methods_share_one() -> None:
    for label in METHODS[:-1]:
        assert split_key(METHOD_BITS[label.encode()])[1] == label
    size = len(METHOD_BITS)
    for unknown in (b"BREW", b"get", b""):
        assert split_key(METHOD_BITS[unknown])[1] == "EXTENSION_METHOD"
    assert len(METHOD_BITS) == size  # a miss adds nothing: clients cannot grow the table


def test_row_keys_carry_every_label() -> None:
    tls = TlsTable()
    bits = tls.bits("TLSv1.3", "TLS_AES_128_GCM_SHA256")
    assert tls.bits("TLSv1.3", "TLS_AES_128_GCM_SHA256") == bits
    assert tls.bits("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256") != bits
    for status in (0, 100, 200, 599, 999):
        for method in (b"GET", b"PRI", b"PATCH", b"PROPFIND"):
            for protocol, name in [(0, "http"), (P_WEBSOCKET, "websocket"), (P_SSE, "sse")]:
                key = request_key(status, method, protocol | bits)
                label = method.decode() if method != b"PROPFIND" else "EXTENSION_METHOD"
                assert split_key(key) == (status, label, name, 1)
    assert split_key(request_key(200, b"GET", P_GRPC)) == (200, "GET", "grpc", 0)
    assert split_key(request_key(200, b"GET", P_GRPC_WEB)) == (200, "GET", "grpc-web", 0)


@pytest.mark.parametrize(
    ("headers", "protocol"),
    [
        ([], "http"),
        ([(b"Accept", b"*/*")], "http"),
        ([(b"accept", b"text/html, Text/Event-Stream")], "sse"),
        ([(b"Accept", b"text/event-stream;q=1")], "http"),  # an item must equal it
        ([(b"Content-Type", b"application/grpc+proto")], "grpc"),
        ([(b"Content-Type", b"application/grpc-web-text")], "grpc-web"),
        ([(b"Content-Type", b"application/json")], "http"),
        ([(b"Content-Type", b"application/grpc"), (b"Accept", b"text/event-stream")], "sse"),
        ([(b"Accept", b"text/event-stream"), (b"Content-Type", b"application/grpc")], "sse"),
        ([(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade")], "websocket"),
        ([(b"Upgrade", b"h2c"), (b"Connection", b"Upgrade")], "http"),
        ([(b"Upgrade", b"websocket")], "http"),  # no Connection: upgrade
        (
            [
                (b"Accept", b"text/event-stream"),
                (b"Upgrade", b"WebSocket"),
                (b"Connection", b"x, upgrade"),
            ],
            "websocket",
        ),
    ],
)
def test_protocol_label_from_headers(headers: list[tuple[bytes, bytes]], protocol: str) -> None:
    """Traefik's order: websocket, then SSE, then gRPC-Web, then gRPC, else http."""
    head = RequestHead(trusted=False, bits=TlsTable().bits("TLSv1.3", "X"))
    for name, value in [(b"Host", b"a.example"), *headers]:
        head.add(name, value)
    ex = Exchange(head, 0.0, None)
    ex.target = b"/"
    validate(ex)
    assert split_key(request_key(200, b"GET", head.bits))[2:] == (protocol, 1)
    assert b"".join(head.lines).count(b"\r\n") == len(
        [h for h in headers if h[0].lower() not in (b"upgrade", b"connection")]
    )


def test_custom_buckets_and_bounds_inclusive() -> None:
    stats = TargetStats((0.5, 1.0, 2.0))
    key = request_key(200, b"GET")
    for duration in (0.5, 0.7, 1.0, 1.5, 2.0, 9.0):
        stats.observe(key, duration, 0, 0)
    [[got_key, count, total, bytes_in, bytes_out, *slow]] = stats.dump()
    # le is inclusive: 0.5 is in the first bucket, 1.0 in the second, 2.0 in the third.
    assert (got_key, count, bytes_in, bytes_out) == (key, 6, 0, 0)
    assert total == sum((0.5, 0.7, 1.0, 1.5, 2.0, 9.0))
    assert slow == [2, 2, 1]  # (0.5, 1], (1, 2], (2, +Inf]


def test_routing_lookups_are_sampled() -> None:
    stats = EntryPointStats()
    for seconds in (5e-7, 3e-6, 2e-3):
        stats.routed(seconds)
    # [count, sum, then (1e-6, 2.5e-6], (2.5e-6, 5e-6], ... (1e-4, 1e-3], +Inf]
    assert list(stats.routing) == [3, 5e-7 + 3e-6 + 2e-3, 0, 1, 0, 0, 0, 0, 0, 1]
