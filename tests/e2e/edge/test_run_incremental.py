"""Configuration changes through a real `proxynow run`: deltas reach the workers, what
changed takes effect, what did not keeps its state (the round-robin position of an
unchanged service), and every worker reports how long each apply stalled it."""

from __future__ import annotations

import http.client
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.proc import HttpBackend, ProxynowProcess, http_get, proxynow_factory

__all__ = ["proxynow_factory"]

Start = Callable[..., ProxynowProcess]
STATIC = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}}


@pytest.fixture
def backends() -> Iterator[tuple[HttpBackend, HttpBackend]]:
    with HttpBackend("one") as one, HttpBackend("two") as two:
        yield one, two


def dynamic(
    backends: tuple[HttpBackend, HttpBackend], routers: dict[str, str], redirect_port: str = ""
) -> dict[str, Any]:
    """Routers (name → rule) to the two-server service `app`; `redirect_port` adds router
    `moved` (host moved.test) behind a redirectScheme middleware to that port."""
    servers = [{"url": backend.url} for backend in backends]
    http: dict[str, Any] = {
        "routers": {name: {"rule": rule, "service": "app"} for name, rule in routers.items()},
        "services": {"app": {"loadBalancer": {"servers": servers}}},
    }
    if redirect_port:
        http["middlewares"] = {"up": {"redirectScheme": {"scheme": "https", "port": redirect_port}}}
        http["routers"]["moved"] = {
            "rule": "Host(`moved.test`)",
            "service": "app",
            "middlewares": ["up"],
        }
    return {"http": http}


def change(proxy: ProxynowProcess, config: dict[str, Any], version: int) -> int:
    proxy.write_dynamic(config)
    return proxy.wait_serving(version + 1)


def test_changes_take_effect_and_an_unchanged_service_keeps_its_cursor(
    proxynow_factory: Start, backends: tuple[HttpBackend, HttpBackend]
) -> None:
    routers = {"a": "Host(`a.test`)", "b": "Host(`b.test`)"}
    proxy = proxynow_factory(STATIC, dynamic(backends, routers, "8443"), workers=1)
    port = proxy.ports["web"]
    version = proxy.wait_serving(1)
    status, body = http_get(port, host="a.test")
    assert status == 200
    applied = proxy.status()["workers"][0]["applied"]

    # One router added, one removed: the service is unchanged, so round robin goes on.
    version = change(
        proxy, dynamic(backends, {"a": routers["a"], "c": "Host(`c.test`)"}, "8443"), version
    )
    following = http_get(port, host="a.test")
    assert following[0] == 200
    assert following[1] != body  # the other server: the balancer kept its position
    assert http_get(port, host="c.test")[0] == 200
    assert http_get(port, host="b.test")[0] == 404

    # A rule change and a middleware change.
    new_routers = {"a": "Host(`a2.test`)", "c": "Host(`c.test`)"}
    version = change(proxy, dynamic(backends, new_routers, "9443"), version)
    assert http_get(port, host="a.test")[0] == 404
    assert http_get(port, host="a2.test")[0] == 200
    assert redirect_location(port) == "https://moved.test:9443/"

    worker = proxy.status()["workers"][0]
    assert worker["version"] == version
    assert worker["applied"] >= applied + 2
    assert len(worker["stall_ms_recent"]) == worker["applied"]
    assert all(stall >= 0 for stall in worker["stall_ms_recent"])
    assert proxy.stop() == 0


def redirect_location(port: int) -> str | None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        connection.request("GET", "/", headers={"Host": "moved.test"})
        response = connection.getresponse()
        response.read()
        return response.getheader("Location")
    finally:
        connection.close()
