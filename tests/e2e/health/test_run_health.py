"""Health checks and failover end to end: a real `proxynow run`, real backends, real clients.

Backends answer `<name> <path>`; their /health answers `healthy` (200) or not (503) as
the test flips it. Intervals are 100 ms; every wait polls for what a user would see
(which backend answered) with a deadline.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.proc import HttpBackend, ProxynowProcess, http_get, poll, proxynow_factory

__all__ = ["proxynow_factory"]  # the fixture, re-exported for pytest

Start = Callable[..., ProxynowProcess]
STATIC = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}, "log": {"level": "WARN"}}
CHECK = {"path": "/health", "interval": "100ms", "timeout": "1s"}


@pytest.fixture
def backends() -> Iterator[tuple[HttpBackend, HttpBackend]]:
    a, b = HttpBackend("a"), HttpBackend("b")
    yield a, b
    a.close()
    b.close()


def answers(proxy: ProxynowProcess, n: int = 10) -> list[str]:
    """Who answered each of `n` requests on new connections ("503", "502" for errors)."""
    result = []
    for _ in range(n):
        status, body = http_get(proxy.ports["web"])
        result.append(body.decode().split()[0] if status == 200 else str(status))
    return result


def settle(proxy: ProxynowProcess, expected: set[str], what: str) -> None:
    """Poll until a batch of requests is answered by exactly `expected`."""
    poll(lambda: set(answers(proxy)) == expected, 20, what)


def config(services: dict[str, Any], service: str = "app") -> dict[str, Any]:
    router = {"rule": "Host(`app.test`)", "service": service}
    return {"http": {"routers": {"app": router}, "services": services}}


def lb(*urls: str, **options: Any) -> dict[str, Any]:
    return {"loadBalancer": {"servers": [{"url": url} for url in urls], **options}}


def test_an_unhealthy_server_stops_getting_traffic_and_comes_back(
    proxynow_factory: Start, backends: tuple[HttpBackend, HttpBackend]
) -> None:
    a, b = backends
    proxy = proxynow_factory(STATIC, config({"app": lb(a.url, b.url, healthCheck=CHECK)}))
    settle(proxy, {"a", "b"}, "both backends serving")
    b.healthy = False
    settle(proxy, {"a"}, "traffic to leave b")
    b.healthy = True
    settle(proxy, {"a", "b"}, "b to come back")
    a.healthy = b.healthy = False
    settle(proxy, {"503"}, "503 with every server down")
    log = proxy.stderr()
    # Transitions are logged once each, not per probe: b went down twice, a once.
    assert log.count(f"server {b.url} is down: received error status 503") == 2
    assert log.count(f"server {b.url} is back up") == 1
    assert log.count(f"server {a.url} is down") == 1


def test_a_restarted_worker_starts_with_the_current_health(
    proxynow_factory: Start, backends: tuple[HttpBackend, HttpBackend]
) -> None:
    a, b = backends
    dynamic = config({"app": lb(a.url, b.url, healthCheck=CHECK)})
    proxy = proxynow_factory(STATIC, dynamic, workers=1)
    b.healthy = False
    settle(proxy, {"a"}, "traffic to leave b")
    [old] = proxy.worker_pids()
    os.kill(old, signal.SIGKILL)
    poll(lambda: proxy.worker_pids() != [old], 20, "a new worker")
    proxy.wait_serving()
    # No new health message is coming (b stays down): the new worker must have it already.
    assert set(answers(proxy, 20)) == {"a"}


def test_the_passive_check_takes_a_refused_server_out(
    proxynow_factory: Start, backends: tuple[HttpBackend, HttpBackend]
) -> None:
    a, _ = backends
    with socket.socket() as bound:  # bound, not listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{bound.getsockname()[1]}"
        passive = {"failureWindow": "1m", "maxFailedAttempts": 1}
        service = lb(a.url, refused, passiveHealthCheck=passive)
        proxy = proxynow_factory(STATIC, config({"app": service}), workers=2)
        first = answers(proxy, 20)
        # Each worker (two) dials the refused server at most once before it leaves.
        assert set(first) <= {"a", "502"} and first.count("502") <= 2, first
        assert set(answers(proxy, 20)) == {"a"}
    assert "is down for 60s after 1 failed attempt(s)" in proxy.stderr()


def test_failover_serves_the_fallback_while_main_is_down(
    proxynow_factory: Start, backends: tuple[HttpBackend, HttpBackend]
) -> None:
    a, b = backends
    services = {
        "app": {"failover": {"service": "main", "fallback": "spare"}},
        "main": lb(a.url, healthCheck=CHECK),
        "spare": lb(b.url),
    }
    proxy = proxynow_factory(STATIC, config(services))
    assert set(answers(proxy)) == {"a"}
    a.healthy = False
    settle(proxy, {"b"}, "the fallback to serve")
    a.healthy = True
    settle(proxy, {"a"}, "the main service to serve again")


def test_weighted_health_check_propagates(
    proxynow_factory: Start, backends: tuple[HttpBackend, HttpBackend]
) -> None:
    a, b = backends
    services = {
        "app": {
            "weighted": {
                "services": [{"name": "one", "weight": 1}, {"name": "two", "weight": 1}],
                "healthCheck": {},
            }
        },
        "one": lb(a.url, healthCheck=CHECK),
        "two": lb(b.url, healthCheck=CHECK),
    }
    proxy = proxynow_factory(STATIC, config(services))
    settle(proxy, {"a", "b"}, "both children serving")
    a.healthy = False
    # Without propagation half the requests would get one's 503.
    settle(proxy, {"b"}, "the weighted service to skip the child without live servers")
    a.healthy = True
    settle(proxy, {"a", "b"}, "the child to come back")
