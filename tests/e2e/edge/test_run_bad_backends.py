"""`proxynow run` against backends that misbehave on purpose: odd status codes and an endless
response head, with a second client beside them that must keep being served.

One worker, so the bad backend and the good client share one event loop: a stall caused by
the bad response would show as a slow answer to the good client.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.proc import (
    HttpBackend,
    ProxynowProcess,
    ThreadedServer,
    http_get,
    proxynow_factory,
)

__all__ = ["proxynow_factory"]  # the fixture, re-exported for pytest

Start = Callable[..., ProxynowProcess]


def _answering(status: bytes) -> Callable[[socket.socket], None]:
    """A backend that answers every request on a connection with `status`."""

    def handle(conn: socket.socket) -> None:
        buffer = b""
        while True:
            data = conn.recv(65536)
            if not data:
                return
            buffer += data
            while b"\r\n\r\n" in buffer:
                _, _, buffer = buffer.partition(b"\r\n\r\n")
                conn.sendall(b"HTTP/1.1 %b Odd\r\nContent-Length: 2\r\n\r\nok" % status)

    return handle


def _endless_head(conn: socket.socket) -> None:
    """A response head that never ends: 64 MiB of one header, written until cut off."""
    conn.recv(65536)
    try:
        conn.sendall(b"HTTP/1.1 200 OK\r\nX-Huge: ")
        block = b"v" * (1 << 20)
        for _ in range(64):
            conn.sendall(block)
    except OSError:
        return


@pytest.fixture
def good() -> Iterator[HttpBackend]:
    with HttpBackend("good") as backend:
        yield backend


def start(proxynow_factory: Start, good: HttpBackend, bad: ThreadedServer) -> ProxynowProcess:
    static = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}}
    servers = {
        "good": {"loadBalancer": {"servers": [{"url": good.url}]}},
        "bad": {"loadBalancer": {"servers": [{"url": f"http://{bad.address}"}]}},
    }
    routers = {
        "good": {"rule": "Host(`good.test`)", "service": "good"},
        "bad": {"rule": "Host(`bad.test`)", "service": "bad"},
    }
    return proxynow_factory(static, {"http": {"routers": routers, "services": servers}}, workers=1)


def raw_get(port: int, host: str, close: bool = False) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        extra = b"Connection: close\r\n" if close else b""
        sock.sendall(b"GET / HTTP/1.1\r\nHost: %b\r\n%b\r\n" % (host.encode(), extra))
        data = b""
        while b"\r\n\r\n" not in data or (not close and not data.endswith(b"ok")):
            piece = sock.recv(65536)
            if not piece:
                break
            data += piece
        return data


class Poller:
    """Requests to the good router, one after another, timing each (a background thread)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.stop = threading.Event()
        self.times: list[float] = []
        self.failures: list[Any] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            began = time.monotonic()
            answer = http_get(self.port, host="good.test")
            self.times.append(time.monotonic() - began)
            if answer != (200, b"good /"):
                self.failures.append(answer)

    def finish(self) -> list[float]:
        self.stop.set()
        self.thread.join(30)
        return self.times


@pytest.mark.parametrize("status", [b"600", b"999"])
def test_a_status_over_599_is_relayed_and_drain_is_not_held(
    proxynow_factory: Start, good: HttpBackend, status: bytes
) -> None:
    with ThreadedServer(_answering(status)) as bad:
        proxy = start(proxynow_factory, good, bad)
        port = proxy.ports["web"]
        assert raw_get(port, "bad.test").startswith(b"HTTP/1.1 %b " % status)
        answer = raw_get(port, "bad.test", close=True)
        assert answer.startswith(b"HTTP/1.1 %b " % status)
        with socket.create_connection(("127.0.0.1", port), timeout=20) as idle:
            idle.sendall(b"GET / HTTP/1.1\r\nHost: bad.test\r\n\r\n")
            assert idle.recv(65536).startswith(b"HTTP/1.1 %b " % status)
            began = time.monotonic()
            assert proxy.stop() == 0  # the kept-alive connection closes at once on drain
            assert time.monotonic() - began < 8  # well inside the 10 s grace period


@pytest.mark.parametrize("status", [b"000", b"099"])
def test_a_status_under_100_is_a_bare_502(
    proxynow_factory: Start, good: HttpBackend, status: bytes
) -> None:
    with ThreadedServer(_answering(status)) as bad:
        proxy = start(proxynow_factory, good, bad)
        answer = raw_get(proxy.ports["web"], "bad.test", close=True)
        assert answer.startswith(b"HTTP/1.1 502 Bad Gateway\r\n")
        assert b"Odd" not in answer and b"ok" not in answer.partition(b"\r\n\r\n")[2]


def test_an_endless_response_head_is_cut_with_a_502_while_others_are_served(
    proxynow_factory: Start, good: HttpBackend
) -> None:
    with ThreadedServer(_endless_head) as bad:
        proxy = start(proxynow_factory, good, bad)
        port = proxy.ports["web"]
        poller = Poller(port)
        began = time.monotonic()
        answer = raw_get(port, "bad.test", close=True)
        took = time.monotonic() - began
        times = poller.finish()
        assert answer.startswith(b"HTTP/1.1 502 ")
        assert took < 5  # the whole 64 MiB took 5.4 s of CPU before the limit
        assert poller.failures == [] and times
        assert max(times) < 1.0, f"the good router stalled for {max(times):.3f} s"
