"""p2c and leasttime through the HTTP data plane: real backends and clients on 127.0.0.1.

A fast aiohttp backend and a raw one that answers after 50 ms sit behind one service per
strategy: concurrent clients must mostly reach the fast one. Then every way an exchange
can end (a backend that closes, a 504 from responseHeaderTimeout, a client leaving
mid-response or before it, a WebSocket tunnel) must bring the in-flight counts back to
zero: they are read on the proxy's loop and polled, never waited for by sleeping.
"""

from __future__ import annotations

import http.client
import socket
import struct
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.sync.client import connect as ws_connect

from proxynow.config.dynamic import DynamicConfig
from proxynow.control.checks import _unapplied_options
from proxynow.edge.balance.least import Tracked
from proxynow.edge.balance.sticky import sha256_value
from tests.integration.support_http import (
    DEADLINE,
    Backend,
    LoopThread,
    Proxy,
    RawBackend,
    RawConnection,
    ok_response,
    read_response,
    wait_for,
)

SLOW = 0.05
PARTIAL = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nX-Server: partial\r\n\r\npartial"


class Backends:
    """The fast, slow and misbehaving backends, on the proxy's loop."""

    def __init__(self, lt: LoopThread) -> None:
        self.fast = Backend(lt, "fast")
        self.slow = RawBackend(lt, self._slow)
        self.closing = RawBackend(lt, lambda conn, head: None)  # closes on each request
        self.silent = RawBackend(lt, lambda conn, head: b"")  # never answers
        self.partial = RawBackend(lt, lambda conn, head: PARTIAL)  # 7 bytes of 100000
        self.lt = lt

    def _slow(self, conn: RawConnection, head: bytes) -> bytes:
        assert conn.transport is not None
        answer = ok_response(b"slow", b"X-Server: slow\r\n")
        self.lt.loop.call_later(SLOW, conn.transport.write, answer)
        return b""

    def close(self) -> None:
        self.fast.close()
        for raw in (self.slow, self.closing, self.silent, self.partial):
            raw.close()


def lb(strategy: str, *urls: str, **options: Any) -> dict[str, Any]:
    servers = [{"url": url} for url in urls]
    return {"loadBalancer": {"servers": servers, "strategy": strategy, **options}}


def config(b: Backends) -> dict[str, Any]:
    services = {
        "p2c@test": lb("p2c", b.fast.url, b.slow.url),
        "lt@test": lb("leasttime", b.fast.url, b.slow.url),
        "closing@test": lb("p2c", b.closing.url, b.fast.url),
        "silent@test": lb("leasttime", b.silent.url, serversTransport="t@test"),
        "partial@test": lb("p2c", b.partial.url),
        "ws@test": lb("p2c", b.fast.url),
        "sp2c@test": lb("p2c", b.fast.url, b.slow.url, sticky={"cookie": {"name": "lb"}}),
        "slt@test": lb("leasttime", b.fast.url, b.slow.url, sticky={"cookie": {"name": "lb"}}),
    }
    routers = {
        f"{name}@test": {"rule": f"PathPrefix(`/{name}`)", "service": f"{name}@test"}
        for name in ("p2c", "lt", "closing", "silent", "partial", "ws", "sp2c", "slt")
    }
    transports = {"t@test": {"forwardingTimeouts": {"responseHeaderTimeout": "200ms"}}}
    return {"http": {"routers": routers, "services": services, "serversTransports": transports}}


@pytest.fixture
def backends(lt: LoopThread) -> Iterator[Backends]:
    b = Backends(lt)
    yield b
    b.close()


@pytest.fixture
def proxy(lt: LoopThread, backends: Backends) -> Iterator[Proxy]:
    p = Proxy(lt, config(backends))
    yield p
    p.close()


def in_flight(proxy: Proxy, service: str) -> list[int]:
    def read() -> list[int]:
        balancer = proxy.state.resources.balancers.find(service)
        assert isinstance(balancer, Tracked), service
        return balancer.in_flight()

    return proxy.lt.call(read)


def idle(proxy: Proxy, service: str) -> bool:
    return not any(in_flight(proxy, service))


def burst(port: int, path: str, clients: int = 8, each: int = 15) -> Counter[str]:
    """`clients` keep-alive connections sending `each` requests at once; who answered."""
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=DEADLINE)
        try:
            for _ in range(each):
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                with lock:
                    counts[response.getheader("X-Server") or str(response.status)] += 1
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE * 3)
    assert not any(thread.is_alive() for thread in threads)
    return counts


@pytest.mark.parametrize("path", ["/p2c", "/lt"])
def test_concurrent_requests_favour_the_fast_backend(proxy: Proxy, path: str) -> None:
    counts = burst(proxy.port, path)
    assert sum(counts.values()) == 120 and set(counts) <= {"fast", "slow"}, counts
    assert counts["fast"] > 3 * counts["slow"], counts
    service = path.strip("/") + "@test"
    wait_for(lambda: idle(proxy, service), "no request in flight")


def test_a_backend_that_closes_gives_502s_and_leaves_nothing_in_flight(proxy: Proxy) -> None:
    counts = burst(proxy.port, "/closing", clients=4, each=10)
    assert counts["502"] > 0 and set(counts) <= {"502", "fast"}, counts
    wait_for(lambda: idle(proxy, "closing@test"), "no request in flight")


def test_a_504_from_response_header_timeout_ends_the_count(proxy: Proxy) -> None:
    counts = burst(proxy.port, "/silent", clients=3, each=2)
    assert counts == {"504": 6}
    wait_for(lambda: idle(proxy, "silent@test"), "no request in flight")


def test_a_client_leaving_before_the_response_ends_the_count(proxy: Proxy) -> None:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=DEADLINE) as sock:
        sock.sendall(b"GET /silent HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_for(lambda: in_flight(proxy, "silent@test") == [1], "the request in flight")
    wait_for(lambda: idle(proxy, "silent@test"), "no request in flight")


def test_a_client_leaving_mid_response_ends_the_count(proxy: Proxy) -> None:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=DEADLINE) as sock:
        sock.sendall(b"GET /partial HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, _ = read_response(sock, head_only=True)
        assert (status, headers["x-server"]) == (200, "partial")
        assert in_flight(proxy, "partial@test") == [1]  # the body is still coming
        # A reset, not a FIN: after a FIN the proxy still owes the client the response.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    wait_for(lambda: idle(proxy, "partial@test"), "no request in flight")


def test_a_websocket_counts_in_flight_until_it_closes(proxy: Proxy) -> None:
    with ws_connect(f"ws://127.0.0.1:{proxy.port}/ws", open_timeout=DEADLINE) as ws:
        ws.send("one")
        assert ws.recv(timeout=DEADLINE) == "echo:one"
        assert in_flight(proxy, "ws@test") == [1]
    wait_for(lambda: idle(proxy, "ws@test"), "no request in flight")


def test_leasttime_measures_the_slow_backend(proxy: Proxy) -> None:
    burst(proxy.port, "/lt", clients=2, each=10)

    def means() -> list[float]:
        balancer = proxy.state.resources.balancers.find("lt@test")
        assert isinstance(balancer, Tracked)
        return [load.mean for load in balancer.loads]

    fast, slow = proxy.lt.call(means)
    # Whole milliseconds, from the request's start; a loop timer may fire a little early.
    assert slow >= SLOW * 1000 - 2 and fast < slow / 5


@pytest.mark.parametrize("path", ["/sp2c", "/slt"])
def test_a_sticky_cookie_keeps_the_client_on_the_slow_server(
    proxy: Proxy, backends: Backends, path: str
) -> None:
    # As in Traefik, the cookie wins over the strategy while its server is live.
    value = sha256_value(backends.slow.url)
    service = path.strip("/") + "@test"
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=DEADLINE)
    try:
        for _ in range(3):
            conn.request("GET", path, headers={"Cookie": f"lb={value}"})
            response = conn.getresponse()
            assert (response.read(), response.getheader("Set-Cookie")) == (b"slow", None)
        conn.request("GET", path)  # no cookie: balanced, and told where it went
        response = conn.getresponse()
        response.read()
        assert (response.getheader("Set-Cookie") or "").startswith("lb=")
    finally:
        conn.close()
    wait_for(lambda: idle(proxy, service), "no request in flight")


@pytest.mark.parametrize("strategy", ["p2c", "leasttime"])
def test_the_strategies_carry_no_status_warning(strategy: str) -> None:
    config = DynamicConfig.model_validate(
        {"http": {"services": {"s": lb(strategy, "http://127.0.0.1:1")}}}
    )
    assert _unapplied_options(config.http.services["s"]) == []
