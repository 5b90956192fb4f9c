"""Snapshot swaps under load lose nothing: the file is rewritten many times while clients
send requests; every request succeeds, and the newest route serves afterwards."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.proc import HttpBackend, ProxynowProcess, http_get, poll, proxynow_factory

__all__ = ["proxynow_factory"]

Start = Callable[..., ProxynowProcess]
REWRITES = 30


@pytest.fixture
def backend() -> Iterator[HttpBackend]:
    with HttpBackend("b1") as server:
        yield server


def dynamic(backend: HttpBackend, generation: int) -> dict[str, Any]:
    """Router `app` always; plus `gen<n>` for host gen<n>.test, so every rewrite differs."""
    service = {"loadBalancer": {"servers": [{"url": backend.url}]}}
    routers = {"app": {"rule": "Host(`app.test`)", "service": "app"}}
    if generation:
        routers[f"gen{generation}"] = {
            "rule": f"Host(`gen{generation}.test`)",
            "service": "app",
        }
    return {"http": {"routers": routers, "services": {"app": service}}}


class Load(threading.Thread):
    """GET / in a loop, alternating keep-alive batches and fresh connections."""

    def __init__(self, port: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.stop = stop
        self.ok = 0
        self.errors: list[object] = []

    def run(self) -> None:
        while not self.stop.is_set():
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
            try:
                for _ in range(10):
                    connection.request("GET", "/", headers={"Host": "app.test"})
                    response = connection.getresponse()
                    body = response.read()
                    if (response.status, body) == (200, b"b1 /"):
                        self.ok += 1
                    else:
                        self.errors.append((response.status, body))
            except (OSError, http.client.HTTPException) as exc:
                self.errors.append(exc)
            finally:
                connection.close()


def test_rewriting_the_file_under_load_loses_no_request(
    proxynow_factory: Start, backend: HttpBackend
) -> None:
    static = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}}
    proxy = proxynow_factory(static, dynamic(backend, 0), workers=2)
    port = proxy.ports["web"]
    first = proxy.wait_serving(1)
    stop = threading.Event()
    clients = [Load(port, stop) for _ in range(3)]
    for client in clients:
        client.start()
    try:
        for generation in range(1, REWRITES + 1):
            proxy.write_dynamic(dynamic(backend, generation))
            mark = sum(c.ok for c in clients)
            # Keep requests flowing between rewrites, so swaps happen mid-traffic.
            poll(lambda mark=mark: sum(c.ok for c in clients) >= mark + 5, 30, "progress")
        # The newest route serves (poll: the last rewrite may still be on its way).
        poll(
            lambda: http_get(port, host=f"gen{REWRITES}.test") == (200, b"b1 /"),
            30,
            "the newest route",
        )
        final = proxy.wait_serving(first + 1)
    finally:
        stop.set()
        for client in clients:
            client.join(30)
    assert [c.errors for c in clients] == [[], [], []]
    assert sum(c.ok for c in clients) > 0
    assert final > first
    # An older generation's route is gone.
    assert http_get(port, host="gen1.test")[0] == 404
    assert proxy.stop() == 0
