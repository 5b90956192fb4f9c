"""Per-worker metrics counted by the HTTP/1.1 proxy: real sockets, a real aiohttp backend."""

from __future__ import annotations

from tests.integration.support_http import (
    Backend,
    LoopThread,
    Proxy,
    read_response,
    simple_config,
    wait_for,
)


def test_proxy_counts_requests(lt: LoopThread) -> None:
    backend = Backend(lt)
    config = simple_config(backend.url)
    config["http"]["routers"]["r@test"]["rule"] = "Host(`known.example`)"
    proxy = Proxy(lt, config)
    try:
        with proxy.connect() as sock:
            for method, host in [(b"GET", b"known"), (b"POST", b"known"), (b"GET", b"other")]:
                sock.sendall(
                    b"%b /?status=201 HTTP/1.1\r\nHost: %b.example\r\nContent-Length: 2\r\n\r\nhi"
                    % (method, host)
                )
                read_response(sock)
                if host == b"known":
                    gauge = proxy.metrics()["entrypoints"]["web"]["open_connections"]
            during = proxy.metrics()
        wait_for(
            lambda: proxy.metrics()["entrypoints"]["web"]["open_connections"] == 0,
            "the connection gauge to drop",
        )
    finally:
        proxy.close()
        backend.close()
    assert gauge == 1
    router = during["routers"]["r@test"]
    assert router["requests"] == {"2xx": {"GET": 1, "POST": 1}}
    assert router["bytes_in"] == 4 and router["bytes_out"] > 0
    assert during["services"]["s@test"]["requests"] == {"2xx": {"GET": 1, "POST": 1}}
    web = during["entrypoints"]["web"]
    assert web["requests"] == {"2xx": {"GET": 1, "POST": 1}, "4xx": {"GET": 1}}
    assert web["duration"]["count"] == 3


def test_proxy_times_the_first_lookup_of_each_connection(lt: LoopThread) -> None:
    backend = Backend(lt)
    proxy = Proxy(lt, simple_config(backend.url))
    try:
        for _ in range(2):
            with proxy.connect() as sock:
                for _ in range(5):
                    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                    read_response(sock)
        routing = proxy.metrics()["routing"]["web"]
    finally:
        proxy.close()
        backend.close()
    assert routing[0] == 2
    assert 0 < routing[1] < 0.1
