"""Graceful drain on SIGTERM: in-flight requests finish, listeners close, exit 0.

Traefik's `transport.lifeCycle`: `requestAcceptGraceTimeout` keeps accepting for that
long after the signal, then the listeners close, and in-flight requests get up to
`graceTimeOut` to finish.
"""

from __future__ import annotations

import re
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.proc import (
    HttpBackend,
    ProxynowProcess,
    http_get,
    poll,
    proxynow_factory,
)

__all__ = ["proxynow_factory"]

Start = Callable[..., ProxynowProcess]


@pytest.fixture
def backend() -> Iterator[HttpBackend]:
    with HttpBackend("b1") as server:
        yield server


def config(backend: HttpBackend, **life_cycle: str) -> tuple[dict[str, Any], dict[str, Any]]:
    static = {
        "entryPoints": {"web": {"address": "127.0.0.1:0", "transport": {"lifeCycle": life_cycle}}},
        "log": {"level": "INFO"},
    }
    dynamic = {
        "http": {
            "routers": {"app": {"rule": "Host(`app.test`)", "service": "app"}},
            "services": {"app": {"loadBalancer": {"servers": [{"url": backend.url}]}}},
        }
    }
    return static, dynamic


def refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            return False
    except ConnectionRefusedError:
        return True


class InFlight:
    """A GET /slow on its own thread; `result` is (status, body) or the exception."""

    def __init__(self, port: int) -> None:
        self.result: Any = None
        self._thread = threading.Thread(target=self._run, args=(port,), daemon=True)
        self._thread.start()

    def _run(self, port: int) -> None:
        try:
            self.result = http_get(port, "/slow", timeout=60)
        except OSError as exc:
            self.result = exc

    def join(self) -> Any:
        self._thread.join(60)
        assert not self._thread.is_alive()
        return self.result


def test_in_flight_request_completes_after_sigterm_while_new_connections_are_refused(
    proxynow_factory: Start, backend: HttpBackend
) -> None:
    static, dynamic = config(backend, graceTimeOut="60s")
    proxy = proxynow_factory(static, dynamic)
    port = proxy.ports["web"]
    request = InFlight(port)
    assert backend.arrived.wait(20)
    proxy.signal(signal.SIGTERM)
    poll(lambda: refused(port), 20, "the listeners to close")
    # The backend still holds the response, so the request is still in flight.
    assert request.result is None
    backend.release.set()
    assert request.join() == (200, b"b1 /slow")
    assert proxy.wait_exit() == 0


def test_grace_timeout_ends_requests_that_do_not_finish(
    proxynow_factory: Start, backend: HttpBackend
) -> None:
    static, dynamic = config(backend, graceTimeOut="200ms")
    proxy = proxynow_factory(static, dynamic)
    request = InFlight(proxy.ports["web"])
    assert backend.arrived.wait(20)
    proxy.signal(signal.SIGTERM)
    # The backend never answers (until teardown): the worker gives up and exits cleanly.
    assert proxy.wait_exit() == 0
    outcome = request.join()
    assert isinstance(outcome, OSError), outcome


def test_request_accept_grace_timeout_keeps_accepting_after_sigterm(
    proxynow_factory: Start, backend: HttpBackend
) -> None:
    # Long enough that the request below lands inside it even on a loaded machine.
    static, dynamic = config(backend, requestAcceptGraceTimeout="5s", graceTimeOut="5s")
    proxy = proxynow_factory(static, dynamic, workers=2)
    port = proxy.ports["web"]
    proxy.signal(signal.SIGTERM)
    poll(
        lambda: len(re.findall(r"worker \d+: draining", proxy.stderr())) == 2,
        20,
        "both workers to start draining",
    )
    # Draining, yet still accepting new connections and serving them.
    assert http_get(port) == (200, b"b1 /")
    poll(lambda: refused(port), 30, "the listeners to close after the accept grace")
    assert proxy.wait_exit() == 0
