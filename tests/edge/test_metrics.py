"""Per-worker metrics: integer counters per target, merged into views when collected."""

from __future__ import annotations

import pickle

from proxynow.edge.metrics import WorkerMetrics, method_index
from tests.edge.support_http import (
    Backend,
    LoopThread,
    Proxy,
    read_response,
    simple_config,
    wait_for,
)


def test_observe_and_collect() -> None:
    metrics = WorkerMetrics()
    a = metrics.target("web", "r1@f", "s@f")
    b = metrics.target("web", "r2@f", "s@f")
    assert metrics.target("web", "r1@f", "s@f") is a
    a.observe(method_index(b"GET"), 200, 0.05, 10, 100)
    a.observe(method_index(b"GET"), 404, 0.2, 0, 5)
    b.observe(method_index(b"BREW"), 503, 7.0, 1, 2)
    b.retry()
    metrics.entrypoint("web").open_connections = 3
    metrics.entrypoint("web").unrouted.observe(method_index(b"POST"), 400, 0.0, 0, 0)
    data = metrics.collect()
    assert pickle.loads(pickle.dumps(data)) == data
    web = data["entrypoints"]["web"]
    assert web["requests"] == {"2xx": {"GET": 1}, "4xx": {"GET": 1, "POST": 1}, "5xx": {"OTHER": 1}}
    assert web["duration"]["buckets"] == [2, 1, 0, 0, 1]
    assert web["duration"]["count"] == 4
    assert (web["bytes_in"], web["bytes_out"], web["open_connections"]) == (11, 107, 3)
    assert data["routers"]["r1@f"]["requests"] == {"2xx": {"GET": 1}, "4xx": {"GET": 1}}
    service = data["services"]["s@f"]
    assert service["retries"] == 1
    assert service["duration"]["count"] == 3


def test_proxy_counts_requests(lt: LoopThread) -> None:
    backend = Backend(lt)
    config = simple_config(backend.url)
    config["http"]["routers"]["r@test"]["rule"] = "Host(`known.example`)"
    proxy = Proxy(lt, config)
    try:
        with proxy.connect() as sock:
            for method, host in [(b"GET", b"known"), (b"POST", b"known"), (b"GET", b"other")]:
                sock.sendall(
                    b"%b /?status=201 HTTP/1.1\r\nHost: %b.example\r\nContent-Length: 2\r\n\r\nhi"
                    % (method, host)
                )
                read_response(sock)
                if host == b"known":
                    gauge = proxy.metrics()["entrypoints"]["web"]["open_connections"]
            during = proxy.metrics()
        wait_for(
            lambda: proxy.metrics()["entrypoints"]["web"]["open_connections"] == 0,
            "the connection gauge to drop",
        )
    finally:
        proxy.close()
        backend.close()
    assert gauge == 1
    router = during["routers"]["r@test"]
    assert router["requests"] == {"2xx": {"GET": 1, "POST": 1}}
    assert router["bytes_in"] == 4 and router["bytes_out"] > 0
    assert during["services"]["s@test"]["requests"] == {"2xx": {"GET": 1, "POST": 1}}
    web = during["entrypoints"]["web"]
    assert web["requests"] == {"2xx": {"GET": 1, "POST": 1}, "4xx": {"GET": 1}}
    assert web["duration"]["count"] == 3
