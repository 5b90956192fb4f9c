"""A worker killed under load is replaced; the other worker keeps serving.

What is asserted, honestly: clients whose connection lived on the killed worker (or
was waiting in its accept queue, or reached its listener while the process was dying)
lose that request with a connection error. A connection opened after the replacement
was seen never fails. No request ever gets a non-200
answer, the killed worker is replaced with a new process serving the latest snapshot,
and that new process then serves requests.
"""

from __future__ import annotations

import http.client
import os
import signal
import threading
from collections.abc import Callable, Iterator

import pytest

from tests.support.proc import HttpBackend, ProxynowProcess, poll, proxynow_factory

__all__ = ["proxynow_factory"]

Start = Callable[..., ProxynowProcess]
CLIENTS = 6


class Client(threading.Thread):
    """Sends GET / in a loop on a keep-alive connection, reconnecting every 5 requests
    (so that new connections keep reaching every worker) or after a failure."""

    def __init__(self, port: int, stop: threading.Event, replaced: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.stop = stop
        self.replaced = replaced
        self.ok = 0
        # (error, whether its connection was opened after the replacement was seen)
        self.failures: list[tuple[BaseException, bool]] = []
        self.bad_status: list[int] = []

    def run(self) -> None:
        while not self.stop.is_set():
            opened_after = self.replaced.is_set()
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
            try:
                for _ in range(5):
                    connection.request("GET", "/", headers={"Host": "app.test"})
                    response = connection.getresponse()
                    response.read()
                    if response.status == 200:
                        self.ok += 1
                    else:
                        self.bad_status.append(response.status)
            except (OSError, http.client.HTTPException) as exc:
                self.failures.append((exc, opened_after))
            finally:
                connection.close()


@pytest.fixture
def backend() -> Iterator[HttpBackend]:
    with HttpBackend("b1") as server:
        yield server


def test_killed_worker_is_replaced_and_the_others_keep_serving(
    proxynow_factory: Start, backend: HttpBackend
) -> None:
    static = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}}
    dynamic = {
        "http": {
            "routers": {"app": {"rule": "Host(`app.test`)", "service": "app"}},
            "services": {"app": {"loadBalancer": {"servers": [{"url": backend.url}]}}},
        }
    }
    proxy = proxynow_factory(static, dynamic, workers=2)
    version = proxy.wait_serving(1)
    stop = threading.Event()
    seen_replaced = threading.Event()
    clients = [Client(proxy.ports["web"], stop, seen_replaced) for _ in range(CLIENTS)]
    for client in clients:
        client.start()
    try:
        try:
            poll(lambda: all(c.ok >= 10 for c in clients), 30, "load on every client")
        except AssertionError:
            raise AssertionError([(c.ok, c.failures, c.is_alive()) for c in clients]) from None
        victim = proxy.status()["workers"][0]
        proxy_pids_before = set(proxy.worker_pids())
        os.kill(victim["pid"], signal.SIGKILL)

        def replaced() -> bool:
            worker = proxy.status()["workers"][0]
            return worker["pid"] != victim["pid"] and worker["ready"] and worker["restarts"] == 1

        poll(replaced, 30, "the killed worker to be replaced")
        seen_replaced.set()
        new_pid = proxy.status()["workers"][0]["pid"]
        assert new_pid not in proxy_pids_before
        assert proxy.wait_serving(version) == version
        marks = [c.ok for c in clients]
        poll(
            lambda: all(c.ok >= m + 20 for c, m in zip(clients, marks, strict=True)),
            30,
            "every client to keep being served",
        )
        poll(lambda: served_by(proxy, new_pid) > 0, 30, "the new worker to serve requests")
    finally:
        stop.set()
        for client in clients:
            client.join(30)
    assert [c.bad_status for c in clients] == [[]] * CLIENTS
    late = [failure for c in clients for failure in c.failures if failure[1]]
    assert late == [], late
    assert "exited with -9; restarting it" in proxy.stderr()
    assert proxy.stop() == 0


def served_by(proxy: ProxynowProcess, pid: int) -> int:
    for worker in proxy.metrics():
        if worker["pid"] == pid:
            router = worker["metrics"]["routers"].get("app@file", {"requests": {}})
            count: int = router["requests"].get("2xx", {}).get("GET", 0)
            return count
    return 0
