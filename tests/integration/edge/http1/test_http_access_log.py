"""The HTTP/1 front end with an access log, on real sockets: keep-alive requests one line
each, a client that leaves before any response (499), a WebSocket logged once at its end
(101), and no line at all from an entrypoint with `observability.accessLogs: false`."""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.sync.client import connect as ws_connect

from proxynow.config.static import AccessLog as AccessLogConfig
from proxynow.edge.http.access import AccessLog
from proxynow.edge.http.exchange import EntryPointRuntime
from tests.integration.support_http import (
    Backend,
    LoopThread,
    Proxy,
    RawBackend,
    RawConnection,
    read_response,
    simple_config,
    wait_for,
)


class Lines:
    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []
        self.dropped = 0
        self.error = ""

    def submit(self, lines: list[str], size: int) -> None:
        self.lines += [json.loads(line) for line in lines]

    def reopen(self) -> None: ...
    def close(self) -> None: ...


def logged_proxy(lt: LoopThread, url: str, runtime: EntryPointRuntime | None = None) -> Proxy:
    proxy = Proxy(lt, simple_config(url), runtime)
    proxy.sink = Lines()  # type: ignore[attr-defined]
    log = AccessLog(AccessLogConfig(format="json"), proxy.sink, proxy.state.metrics)  # type: ignore[attr-defined]
    proxy.state.access_log = log  # read by each new connection
    return proxy


def lines(proxy: Proxy) -> list[dict[str, Any]]:
    return list(proxy.lt.call(lambda: list(proxy.sink.lines)))  # type: ignore[attr-defined]


@pytest.fixture
def backend(lt: LoopThread) -> Iterator[Backend]:
    backend = Backend(lt)
    yield backend
    backend.close()


def test_keep_alive_requests_are_logged_once_each(lt: LoopThread, backend: Backend) -> None:
    proxy = logged_proxy(lt, backend.url)
    try:
        with proxy.connect() as sock:
            for i in range(3):
                sock.sendall(b"GET /k%d HTTP/1.1\r\nHost: app.test\r\n\r\n" % i)
                assert read_response(sock)[0] == 200
        wait_for(lambda: len(lines(proxy)) == 3, "three lines")
        got = lines(proxy)
        assert [line["RequestPath"] for line in got] == ["/k0", "/k1", "/k2"]
        assert {line["RouterName"] for line in got} == {"r@test"}
        assert len({line["ClientPort"] for line in got}) == 1  # one connection
        assert all(line["DownstreamContentSize"] == line["OriginContentSize"] > 0 for line in got)
    finally:
        proxy.close()


def test_a_client_that_leaves_before_the_response_is_logged_499(lt: LoopThread) -> None:
    def never(conn: RawConnection, head: bytes) -> bytes:
        return b""  # never answers

    raw = RawBackend(lt, never)
    proxy = logged_proxy(lt, raw.url)
    try:
        with proxy.connect() as sock:
            sock.sendall(b"GET /gone HTTP/1.1\r\nHost: app.test\r\n\r\n")
            wait_for(lambda: raw.heads, "the request at the backend")
            # A reset, not a half-close (after which the proxy still answers what it gets).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        wait_for(lambda: len(lines(proxy)) == 1, "the line")
        [line] = lines(proxy)
        assert (line["RequestPath"], line["DownstreamStatus"]) == ("/gone", 499)
    finally:
        proxy.close()
        raw.close()


def test_a_websocket_is_logged_once_when_its_tunnel_ends(lt: LoopThread, backend: Backend) -> None:
    proxy = logged_proxy(lt, backend.url)
    try:
        with ws_connect(f"ws://127.0.0.1:{proxy.port}/ws", open_timeout=10) as ws:
            ws.send("one")
            assert ws.recv(timeout=10) == "echo:one"
            assert lines(proxy) == []  # open: not logged yet
        wait_for(lambda: lines(proxy), "the tunnel's line")
        [line] = lines(proxy)
        assert (line["RequestPath"], line["DownstreamStatus"]) == ("/ws", 101)
    finally:
        proxy.close()


def test_an_entrypoint_with_access_logs_off_writes_nothing(
    lt: LoopThread, backend: Backend
) -> None:
    proxy = logged_proxy(lt, backend.url, EntryPointRuntime("web", access_logs=False))
    try:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
            assert read_response(sock)[0] == 200
        wait_for(lambda: lt.call(lambda: not proxy.state.connections), "the connection closed")
        assert lines(proxy) == []
    finally:
        proxy.close()
