"""Middlewares in front of backends that misbehave, through `proxynow run`: a worker keeps
serving other clients meanwhile (one worker, so the bystander shares it).

- compress with a slow chunked backend (a small chunk every 50 ms, never ending) and an
  endless one (16 KiB chunks as fast as they go): the compressed stream flows to the
  client while the backend is still sending, never held whole;
- retry and circuitBreaker in front of servers whose dials all fail, flooded by many
  clients at once: every request is answered (502 from retry, 503 once the breaker
  opens), none hangs.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.support.proc import HttpBackend, ProxynowProcess, ThreadedServer, proxynow_factory

__all__ = ["proxynow_factory"]  # the fixture, re-exported for pytest

Start = Callable[..., ProxynowProcess]
PROMPT = 2.0  # seconds a bystander may wait at most
TEXT = b"".join(b"line %05d of a compressible body\n" % i for i in range(500))


def _chunked(conn: socket.socket, piece: bytes, pause: float) -> None:
    conn.recv(65536)  # the request head (small, one read)
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    frame = b"%x\r\n%b\r\n" % (len(piece), piece)
    try:
        while True:  # never ends: the proxy closes when its client goes
            conn.sendall(frame)
            if pause:
                time.sleep(pause)  # the backend's pace, not a wait for readiness
    except OSError:
        return


@pytest.fixture
def refusing() -> Iterator[list[str]]:
    """URLs of ports bound but not listening: every dial is refused, and no other
    process can take the port while the test runs."""
    sockets = [socket.socket() for _ in range(2)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    yield [f"http://127.0.0.1:{sock.getsockname()[1]}" for sock in sockets]
    for sock in sockets:
        sock.close()


def bystander(port: int) -> float:
    """Seconds for the healthy router's answer (asserted 200)."""
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/by", headers={"Host": "ok.test"})
        response = connection.getresponse()
        assert response.status == 200
        response.read()
    finally:
        connection.close()
    return time.monotonic() - started


def lb(*urls: str) -> dict[str, Any]:
    return {"loadBalancer": {"servers": [{"url": url} for url in urls]}}


def read_gzip(port: int, host: str, wanted: int) -> bytes:
    """Read the compressed stream until `wanted` decompressed bytes; close."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/", headers={"Host": host, "Accept-Encoding": "gzip"})
        response = connection.getresponse()
        assert response.status == 200 and response.getheader("Content-Encoding") == "gzip"
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        got = b""
        while len(got) < wanted:
            data = response.read1(65536)
            assert data, "the stream ended"
            got += inflate.decompress(data)
        return got
    finally:
        connection.close()


def test_compress_streams_slow_and_endless_backends_while_others_are_served(
    proxynow_factory: Start,
) -> None:
    slow = ThreadedServer(lambda conn: _chunked(conn, TEXT[:200], 0.05))
    endless = ThreadedServer(lambda conn: _chunked(conn, TEXT[:16384], 0.0))
    with HttpBackend("ok") as healthy:
        routers = {
            "slow": {"rule": "Host(`slow.test`)", "service": "slow", "middlewares": ["gz"]},
            "endless": {
                "rule": "Host(`endless.test`)",
                "service": "endless",
                "middlewares": ["gz"],
            },
            "ok": {"rule": "Host(`ok.test`)", "service": "ok"},
        }
        services = {
            "slow": lb(f"http://{slow.address}"),
            "endless": lb(f"http://{endless.address}"),
            "ok": lb(healthy.url),
        }
        dynamic = {
            "http": {
                "routers": routers,
                "services": services,
                "middlewares": {"gz": {"compress": {}}},
            }
        }
        static = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}}
        port = proxynow_factory(static, dynamic, workers=1).ports["web"]
        with ThreadPoolExecutor(4) as pool:
            streams = [
                pool.submit(read_gzip, port, "slow.test", 4000),
                pool.submit(read_gzip, port, "endless.test", 8 << 20),
                pool.submit(read_gzip, port, "endless.test", 8 << 20),
            ]
            waits = [bystander(port) for _ in range(10)]
            results = [stream.result(60) for stream in streams]
        assert max(waits) < PROMPT, waits
        assert results[0].startswith(TEXT[:200])  # flowed while the backend went on
        assert all(len(result) >= 8 << 20 for result in results[1:])
    slow.close()
    endless.close()


def test_a_flood_of_failing_dials_through_retry_and_circuit_breaker(
    proxynow_factory: Start, refusing: list[str]
) -> None:
    with HttpBackend("ok") as healthy:
        middlewares = {
            "again": {"retry": {"attempts": 3, "initialInterval": "1ms"}},
            "breaker": {"circuitBreaker": {"expression": "NetworkErrorRatio() > 0.5"}},
        }
        routers = {
            "dead": {
                "rule": "Host(`dead.test`)",
                "service": "dead",
                "middlewares": ["breaker", "again"],
            },
            "ok": {"rule": "Host(`ok.test`)", "service": "ok"},
        }
        services = {"dead": lb(*refusing), "ok": lb(healthy.url)}
        dynamic = {"http": {"routers": routers, "services": services, "middlewares": middlewares}}
        static = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}}
        port = proxynow_factory(static, dynamic, workers=1).ports["web"]
        statuses: list[int] = []
        lock = threading.Lock()

        def flood() -> None:
            for _ in range(20):
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                try:
                    connection.request("GET", "/", headers={"Host": "dead.test"})
                    response = connection.getresponse()
                    response.read()
                    with lock:
                        statuses.append(response.status)
                finally:
                    connection.close()

        with ThreadPoolExecutor(20) as pool:
            floods = [pool.submit(flood) for _ in range(20)]
            waits = [bystander(port) for _ in range(10)]
            for done in floods:
                done.result(60)
        assert max(waits) < PROMPT, waits
        assert len(statuses) == 400
        assert set(statuses) <= {502, 503} and 503 in statuses, sorted(set(statuses))
