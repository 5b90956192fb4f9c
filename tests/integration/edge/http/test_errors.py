"""The `errors` middleware through the HTTP/1 front end on real sockets: a backend's error
response replaced by the error service's page, with the backend's status or the rewritten
one; the backend's body drained and its connection reused; a missing page; no task per
replaced response once the connections are warm."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.support_http import (
    DEADLINE,
    LoopThread,
    Proxy,
    RawBackend,
    RawConnection,
    loop_thread,
    read_response,
    wait_for,
)


def config(backend: str, pages: str, errors: dict[str, Any]) -> dict[str, Any]:
    return {
        "http": {
            "routers": {
                "r@test": {
                    "rule": "PathPrefix(`/`)",
                    "service": "s@test",
                    "middlewares": ["e@test"],
                }
            },
            "services": {
                "s@test": {"loadBalancer": {"servers": [{"url": backend}]}},
                "pages@test": {"loadBalancer": {"servers": [{"url": pages}]}},
            },
            "middlewares": {"e@test": {"errors": {"service": "pages", **errors}}},
        }
    }


def backend_answer(conn: RawConnection, head: bytes) -> bytes:
    """`/<code>` answers that status with a body of 10000 bytes (to be drained)."""
    code = int(head.split(b" ")[1].strip(b"/").partition(b"?")[0] or b"200")
    body = b"b" * 10000
    return b"HTTP/1.1 %d X\r\nX-Backend: 1\r\nContent-Length: %d\r\n\r\n%b" % (
        code,
        len(body),
        body,
    )


def page_answer(conn: RawConnection, head: bytes) -> bytes:
    target = head.split(b" ")[1]
    body = b"page for " + target
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%b" % (
        len(body),
        body,
    )


@pytest.fixture
def lt() -> Iterator[LoopThread]:
    with loop_thread() as thread:
        yield thread


@pytest.fixture
def servers(lt: LoopThread) -> Iterator[tuple[RawBackend, RawBackend]]:
    backend, pages = RawBackend(lt, backend_answer), RawBackend(lt, page_answer)
    yield backend, pages
    backend.close()
    pages.close()


def get(sock: Any, target: str) -> tuple[int, dict[str, str], bytes]:
    sock.sendall(b"GET %s HTTP/1.1\r\nHost: site.test\r\nX-Client: c\r\n\r\n" % target.encode())
    return read_response(sock)


def test_error_page_replaces_the_response(
    lt: LoopThread, servers: tuple[RawBackend, RawBackend]
) -> None:
    backend, pages = servers
    errors = {"status": ["500-599", "404"], "query": "/err/{status}?from={originalStatus}&u={url}"}
    proxy = Proxy(lt, config(backend.url, pages.url, errors))
    try:
        with proxy.connect() as sock:
            status, headers, body = get(sock, "/503?a=b")
            assert status == 503
            assert body == b"page for /err/503?from=503&u=%2F503%3Fa%3Db"
            assert headers["content-type"] == "text/html" and "x-backend" not in headers
            assert b"X-Client: c" in pages.heads[-1] and b"Host: site.test" in pages.heads[-1]
            assert get(sock, "/404")[:1] == (404,)
            status, headers, body = get(sock, "/200")  # not listed: the backend's own
            assert (status, headers["x-backend"], len(body)) == (200, "1", 10000)
            status, _, body = get(sock, "/418")
            assert (status, len(body)) == (418, 10000)
        # Each backend response was drained and its connection reused.
        assert len(backend.connections) == 1 and backend.connections[0].requests == 4
        assert len(pages.connections) == 1
    finally:
        proxy.close()


def test_status_rewrites(lt: LoopThread, servers: tuple[RawBackend, RawBackend]) -> None:
    backend, pages = servers
    errors = {
        "status": ["500-503"],
        "statusRewrites": {"500-502": 503},
        "query": "/{status}-{originalStatus}",
    }
    proxy = Proxy(lt, config(backend.url, pages.url, errors))
    try:
        with proxy.connect() as sock:
            assert get(sock, "/500")[0::2] == (503, b"page for /503-500")
            assert get(sock, "/503")[0::2] == (503, b"page for /503-503")
    finally:
        proxy.close()


def test_error_service_down(lt: LoopThread, servers: tuple[RawBackend, RawBackend]) -> None:
    backend, pages = servers
    proxy = Proxy(lt, config(backend.url, pages.url, {"status": ["500"], "query": "/x"}))
    pages.close()
    lt.call(lambda: [c.transport.abort() for c in pages.connections if c.transport])
    try:
        with proxy.connect() as sock:
            status, _, body = get(sock, "/500")
            assert (status, body) == (500, b"Internal Server Error\n")
    finally:
        proxy.close()


def test_no_task_per_replaced_response(
    lt: LoopThread, servers: tuple[RawBackend, RawBackend]
) -> None:
    backend, pages = servers
    proxy = Proxy(lt, config(backend.url, pages.url, {"status": ["500"], "query": "/x"}))
    created = [0]

    def install() -> None:
        def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
            created[0] += 1
            return asyncio.Task(coro, loop=loop, **kwargs)

        lt.loop.set_task_factory(factory)  # type: ignore[arg-type]

    try:
        with proxy.connect() as sock:
            sock.settimeout(DEADLINE)
            assert get(sock, "/500")[0] == 500  # warm
            lt.call(install)
            for _ in range(10):
                assert get(sock, "/500")[0::2] == (500, b"page for /x")
        assert created[0] == 0
    finally:
        proxy.close()


def test_hostile_backend_and_page_service(lt: LoopThread, monkeypatch: pytest.MonkeyPatch) -> None:
    """An endless error body is not read to its end; a huge page is not held."""
    endless = b"HTTP/1.1 500 X\r\nContent-Length: 1000000000\r\n\r\n" + b"x" * (1 << 20)
    huge_page = b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n" + b"p" * (2 << 20)
    backend = RawBackend(lt, lambda conn, head: endless)
    pages = RawBackend(lt, lambda conn, head: huge_page)
    proxy = Proxy(lt, config(backend.url, pages.url, {"status": ["500"], "query": "/x"}))
    try:
        with proxy.connect() as sock:
            sock.settimeout(DEADLINE)
            status, _, body = get(sock, "/500")
            assert (status, body) == (500, b"Internal Server Error\n")  # the page was too large
        wait_for(lambda: backend.closed == 1, "the drained backend connection to be dropped")
        wait_for(lambda: pages.closed == 1, "the page connection to be dropped")
    finally:
        proxy.close()
        backend.close()
        pages.close()
