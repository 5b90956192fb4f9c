"""Upstream keep-alive pools, retries and the entrypoint's responding timeouts."""

from __future__ import annotations

from typing import Any

from proxynow.edge.upstream.connection import UpstreamConnection
from proxynow.edge.upstream.pool import PoolRegistry
from proxynow.edge.upstream.transport import PoolKey, TransportOptions
from tests.integration.support_http import (
    Backend,
    EntryPointRuntime,
    LoopThread,
    Proxy,
    RawBackend,
    RawConnection,
    is_closed,
    ok_response,
    read_response,
    simple_config,
    wait_for,
)


def get(proxy: Proxy, path: str = "/", method: bytes = b"GET", body: bytes = b"") -> int:
    with proxy.connect() as sock:
        length = b"Content-Length: %d\r\n" % len(body) if body else b""
        sock.sendall(
            b"%b %b HTTP/1.1\r\nHost: h\r\n%b\r\n%b" % (method, path.encode(), length, body)
        )
        return read_response(sock)[0]


def test_pool_is_lifo_and_skips_closed_connections() -> None:
    registry = PoolRegistry()
    pool = registry.get(PoolKey("http", "127.0.0.1", 80, TransportOptions()))
    a, b, c = (UpstreamConnection(pool) for _ in range(3))
    for conn in (a, b, c):
        pool.release(conn, now=0.0)
    c.closed = True
    assert pool.acquire() is b  # c was released last but is dead
    assert b.reused
    assert pool.acquire() is a
    assert pool.acquire() is None


def test_idle_connections_age_out_oldest_first() -> None:
    pool = PoolRegistry().get(PoolKey("http", "h", 80, TransportOptions(idle_conn_timeout=10)))
    old, new = UpstreamConnection(pool), UpstreamConnection(pool)
    pool.release(old, now=0.0)
    pool.release(new, now=5.0)
    pool.sweep(now=12.0)
    assert pool.idle == [new] and old.closed


def test_stale_pooled_connection_is_retried_on_a_fresh_one(lt: LoopThread) -> None:
    # The backend closes its first connection when the second request arrives on it,
    # without answering: the proxy must retry once on a new connection.
    def respond(conn: RawConnection, head: bytes) -> bytes | None:
        return None if conn.index == 0 and conn.requests == 2 else ok_response()

    raw = RawBackend(lt, respond)
    proxy = Proxy(lt, simple_config(raw.url))
    try:
        assert get(proxy) == 200
        assert get(proxy) == 200
        assert len(raw.connections) == 2
        assert proxy.metrics()["services"]["s@test"]["retries"] == 1
    finally:
        proxy.close()
        raw.close()


def test_request_with_body_sent_is_not_retried(lt: LoopThread) -> None:
    def respond(conn: RawConnection, head: bytes) -> bytes | None:
        return None if conn.requests == 2 else ok_response()

    raw = RawBackend(lt, respond)
    proxy = Proxy(lt, simple_config(raw.url))
    try:
        assert get(proxy) == 200
        assert get(proxy, method=b"POST", body=b"data") == 502
        assert len(raw.connections) == 1
    finally:
        proxy.close()
        raw.close()


def test_max_idle_conns_per_host_caps_the_pool(lt: LoopThread) -> None:
    backend = Backend(lt)
    config = simple_config(backend.url, serversTransport="t@test")
    config["http"]["serversTransports"] = {"t@test": {"maxIdleConnsPerHost": 1}}
    proxy = Proxy(lt, config)
    try:
        socks = [proxy.connect() for _ in range(3)]
        for sock in socks:  # three requests in flight at once: three upstream connections
            sock.sendall(b"GET /?delay=0.3 HTTP/1.1\r\nHost: h\r\n\r\n")
        assert [read_response(sock)[0] for sock in socks] == [200, 200, 200]
        for sock in socks:
            sock.close()

        def idle() -> list[int]:
            return [len(p.idle) for p in proxy.state.resources.pools.pools.values()]

        assert proxy.lt.call(idle) == [1]
    finally:
        proxy.close()
        backend.close()


def test_idle_upstream_connections_are_closed_after_idle_conn_timeout(lt: LoopThread) -> None:
    raw = RawBackend(lt, lambda conn, head: ok_response())
    config = simple_config(raw.url, serversTransport="t@test")
    config["http"]["serversTransports"] = {
        "t@test": {"forwardingTimeouts": {"idleConnTimeout": "0.2s"}}
    }
    proxy = Proxy(lt, config)
    try:
        assert get(proxy) == 200
        wait_for(lambda: proxy.lt.call(lambda: raw.closed == 1), "the idle connection to close")
        assert get(proxy) == 200
        assert len(raw.connections) == 2
    finally:
        proxy.close()
        raw.close()


def _proxy(lt: LoopThread, backend: Backend, **runtime: Any) -> Proxy:
    return Proxy(lt, simple_config(backend.url), EntryPointRuntime("web", **runtime))


def test_read_timeout_cuts_a_slowloris_client(lt: LoopThread) -> None:
    backend = Backend(lt)
    proxy = _proxy(lt, backend, read_timeout=0.3)
    try:
        with proxy.connect() as slow:
            slow.sendall(b"GET / HTTP/1.1\r\nHost: h\r\nX-Slow: ")  # and never more
            assert is_closed(slow)
        assert get(proxy) == 200  # others are served meanwhile
    finally:
        proxy.close()
        backend.close()


def test_idle_timeout_closes_kept_alive_clients(lt: LoopThread) -> None:
    backend = Backend(lt)
    proxy = _proxy(lt, backend, idle_timeout=0.3)
    try:
        with proxy.connect() as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            assert read_response(sock)[0] == 200
            assert is_closed(sock)
    finally:
        proxy.close()
        backend.close()


def test_shutdown_finishes_in_flight_then_closes(lt: LoopThread) -> None:
    backend = Backend(lt)
    proxy = _proxy(lt, backend)
    try:
        idle = proxy.connect()
        busy = proxy.connect()
        busy.sendall(b"GET /?delay=0.3 HTTP/1.1\r\nHost: h\r\n\r\n")
        wait_for(
            lambda: proxy.lt.call(lambda: any(c.active for c in proxy.state.connections)),
            "the request to be in flight",
        )

        def drain() -> None:
            for connection in list(proxy.state.connections):
                connection.shutdown()

        proxy.lt.call(drain)
        assert is_closed(idle)
        status, headers, _ = read_response(busy)
        assert (status, headers.get("connection")) == (200, "close")
        assert is_closed(busy)
        idle.close()
        busy.close()
    finally:
        proxy.close()
        backend.close()
