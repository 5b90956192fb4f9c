"""`proxynow run` end to end: `metrics.prometheus.headerLabels` over two workers.

Real requests through two workers carry an `X-Tenant` header (or none); the exposition
must count exactly what was sent per value at the entrypoint, router and service levels,
an empty value for the requests without the header (as Traefik), a huge value cut to
`VALUE_LIMIT` bytes, nothing going back when a worker is killed and replaced, and, when
a client sends 10,000 distinct values, no more than `LABEL_CAP` series of values plus the
overflow one (`other`), with every request still counted, each worker's table bounded and
a bystander served promptly meanwhile.
"""

from __future__ import annotations

import http.client
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from proxynow.edge.core.metrics import LABEL_CAP, OVERFLOW_VALUE, VALUE_LIMIT
from tests.support.proc import HttpBackend, ProxynowProcess, poll, proxynow_factory

__all__ = ["proxynow_factory"]

Start = Callable[..., ProxynowProcess]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def backend() -> Iterator[HttpBackend]:
    with HttpBackend() as server:  # it answers every GET 200, without Nagle's delays
        yield server


def _send(port: int, tenants: list[str | None], host: str = "app.test") -> None:
    """Each request on a new connection (so that both workers get some)."""
    for tenant in tenants:
        headers = {"Host": host, "Connection": "close"}
        if tenant is not None:
            headers["X-Tenant"] = tenant
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        try:
            connection.request("GET", "/", headers=headers)
            response = connection.getresponse()
            response.read()
            assert response.status in (200, 404), response.status
        finally:
            connection.close()


def _flood(port: int, count: int, connections: int = 8) -> None:
    """`count` requests with distinct X-Tenant values over a few keep-alive connections."""
    clients = [
        http.client.HTTPConnection("127.0.0.1", port, timeout=20) for _ in range(connections)
    ]
    try:
        for i in range(count):
            client = clients[i % connections]
            client.request("GET", "/", headers={"Host": "app.test", "X-Tenant": f"t{i}"})
            response = client.getresponse()
            response.read()
            assert response.status == 200
    finally:
        for client in clients:
            client.close()


def _samples(proxy: ProxynowProcess) -> Samples:
    text = proxy.request("prometheus")["text"]
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return found


def _tenants(samples: Samples, level: str) -> Counter[str]:
    """requests_total of one level by tenant label value (label sets summed)."""
    counts: Counter[str] = Counter()
    for (name, labels), value in samples.items():
        if name == f"proxynow_{level}_requests_total" and value:
            counts[dict(labels)["tenant"]] += int(value)
    return counts


def _expect(proxy: ProxynowProcess, routed: Counter[str], unrouted: Counter[str]) -> Samples:
    def matches() -> Samples | None:
        samples = _samples(proxy)
        ok = (
            _tenants(samples, "entrypoint") == routed + unrouted
            and _tenants(samples, "router") == routed
            and _tenants(samples, "service") == routed
        )
        return samples if ok else None

    return poll(matches, 20, f"the exposition to count {routed} routed, {unrouted} unrouted")


def test_header_labels_count_exactly_bounded_and_across_a_restart(
    proxynow_factory: Start, backend: HttpBackend
) -> None:
    static = {
        "entryPoints": {"web": {"address": "127.0.0.1:0"}},
        "metrics": {
            "prometheus": {"addRoutersLabels": True, "headerLabels": {"tenant": "X-Tenant"}}
        },
    }
    dynamic = {
        "http": {
            "routers": {"app": {"rule": "Host(`app.test`)", "service": "app"}},
            "services": {"app": {"loadBalancer": {"servers": [{"url": backend.url}]}}},
        }
    }
    proxy = proxynow_factory(static, dynamic, workers=2)
    port = proxy.ports["web"]
    huge = "h" * 8000
    sent: list[str | None] = ["a"] * 6 + ["b"] * 4 + [None] * 5 + [huge] * 3
    _send(port, sent)
    _send(port, ["a", "a", None], host="nowhere.test")  # no router: the entrypoint only
    cut = "h" * VALUE_LIMIT
    routed = Counter({"a": 6, "b": 4, "": 5, cut: 3})
    unrouted = Counter({"a": 2, "": 1})
    before = _expect(proxy, routed, unrouted)
    # The TLS-less request families all carry the label; durations too.
    assert any(
        name == "proxynow_router_request_duration_seconds_count" and dict(labels)["tenant"] == "b"
        for name, labels in before
    )
    per_worker = {w["pid"]: _served(w) for w in proxy.metrics()}
    assert len(per_worker) == 2 and all(per_worker.values()), per_worker

    # Kill the busier worker; its replacement starts from zero, nothing may go back.
    victim = max(per_worker, key=lambda pid: per_worker[pid])
    os.kill(victim, signal.SIGKILL)

    def replaced() -> bool:
        workers = proxy.status()["workers"]
        return victim not in {w["pid"] for w in workers} and all(w["ready"] for w in workers)

    poll(replaced, 30, "the killed worker to be replaced")
    after = _expect(proxy, routed, unrouted)
    _never_less(before, after)
    _send(port, ["b", None])
    routed += Counter({"b": 1, "": 1})
    later = _expect(proxy, routed, unrouted)
    _never_less(after, later)

    # An attacker's 10,000 distinct values: bounded series, every request still counted.
    flood = 10_000
    with ThreadPoolExecutor(1) as pool:
        flooding = pool.submit(_flood, port, flood)
        # A bystander is served meanwhile, promptly, every time.
        bystander = 0
        while not flooding.done():
            started = time.monotonic()
            _send(port, ["bystander"])
            assert time.monotonic() - started < 5
            bystander += 1
        flooding.result()
    assert bystander >= 1
    routed["bystander"] += bystander
    total = sum(routed.values()) + flood

    def bounded() -> Counter[str] | None:
        counts = _tenants(_samples(proxy), "service")
        return counts if sum(counts.values()) == total else None

    counts = poll(bounded, 30, f"the service level to count {total} requests")
    named = {value for value in counts if value not in ("", OVERFLOW_VALUE)}
    assert len(named) == LABEL_CAP, len(named)
    assert counts[OVERFLOW_VALUE] >= flood - LABEL_CAP
    assert (counts["a"], counts["b"], counts[cut], counts[""]) == (6, 5, 3, 6)
    for worker in proxy.metrics():
        assert len(worker["metrics"]["labels"]["values"]) <= LABEL_CAP
    _never_less(later, _samples(proxy))
    assert proxy.stop() == 0


def _served(worker: dict[str, Any]) -> int:
    router = worker["metrics"]["routers"].get("app@file", {"codes": {}})
    return sum(router["codes"].values())


def _never_less(before: Samples, after: Samples) -> None:
    """No counter sample of `before` is lower (or missing) in `after`."""
    for key, value in before.items():
        name = key[0]
        if (
            name.endswith(("_total", "_count", "_sum", "_bucket"))
            and "open_connections" not in name
        ):
            assert after.get(key, 0.0) >= value, (key, value, after.get(key))
