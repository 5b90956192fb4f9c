"""`contentType` end to end from a file: a real backend that sends no Content-Type, a real
`proxynow run`; the type a client sees is sniffed from the body on the middleware's
routers only; a huge body whose first byte is slow to come is streamed, typed, and holds
nobody else up."""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.proc import ProxynowProcess, ThreadedServer, proxynow_factory
from tests.support.typeless import BODIES, TypelessBackend

__all__ = ["proxynow_factory"]  # the fixture, re-exported for pytest

Start = Callable[..., ProxynowProcess]
HUGE = 64 << 20  # bytes of the slow body


@pytest.fixture
def backend() -> Iterator[TypelessBackend]:
    served = TypelessBackend()
    yield served
    served.close()


class SlowHuge:
    """A backend whose head comes at once and whose 64 MiB HTML body starts only when
    `release` is set."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.server = ThreadedServer(self.handle)
        self.url = f"http://{self.server.address}"

    def handle(self, conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % HUGE)
        if not self.release.wait(30):
            return
        piece = b"<html>" + b"x" * ((1 << 20) - 6)
        sent = 0
        while sent < HUGE:
            chunk = piece[: min(len(piece), HUGE - sent)]
            conn.sendall(chunk)
            sent += len(chunk)
            piece = b"y" * (1 << 20)


def config(*urls: str) -> tuple[dict[str, Any], dict[str, Any]]:
    static = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}}
    services = {
        f"b{i}": {"loadBalancer": {"servers": [{"url": url}]}} for i, url in enumerate(urls)
    }
    dynamic = {
        "http": {
            "middlewares": {"sniff": {"contentType": {}}},
            "routers": {
                "s": {"rule": "Host(`s.test`)", "service": "b0", "middlewares": ["sniff"]},
                "p": {"rule": "Host(`p.test`)", "service": "b0"},
                "h": {"rule": "Host(`h.test`)", "service": "b1", "middlewares": ["sniff"]},
            },
            "services": services,
        }
    }
    return static, dynamic


def get(port: int, host: str, path: str, version: int = 11) -> tuple[int, str | None, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    if version == 10:
        connection._http_vsn, connection._http_vsn_str = 10, "HTTP/1.0"  # type: ignore[attr-defined]
    try:
        connection.request("GET", path, headers={"Host": host})
        response = connection.getresponse()
        body = response.read()
        return response.status, response.getheader("Content-Type"), body
    finally:
        connection.close()


def test_the_type_is_sniffed_on_the_routers_with_the_middleware(
    proxynow_factory: Start, backend: TypelessBackend
) -> None:
    port = proxynow_factory(*config(backend.url, backend.url), workers=1).ports["web"]
    assert get(port, "s.test", "/html") == (200, "text/html; charset=utf-8", BODIES["/html"])
    assert get(port, "s.test", "/png")[1] == "image/png"
    assert get(port, "s.test", "/json")[1] == "text/plain; charset=utf-8"
    assert get(port, "s.test", "/binary")[1] == "application/octet-stream"
    assert get(port, "s.test", "/typed")[1] == "application/json"
    assert get(port, "s.test", "/empty") == (200, None, b"")
    assert get(port, "s.test", "/chunked")[1:] == (None, BODIES["/chunked"])
    assert get(port, "s.test", "/html", version=10)[1] == "text/html; charset=utf-8"
    assert get(port, "p.test", "/html")[1] is None  # no middleware: left alone (Traefik v3)


def test_a_slow_huge_body_is_typed_streamed_and_blocks_nobody(
    proxynow_factory: Start, backend: TypelessBackend
) -> None:
    slow = SlowHuge()
    try:
        port = proxynow_factory(*config(backend.url, slow.url), workers=1).ports["web"]
        result: list[Any] = []
        reader = threading.Thread(target=lambda: result.append(get(port, "h.test", "/")))
        reader.start()
        # The slow response's head is held (its first body bytes decide the type): the
        # worker serves another client meanwhile.
        for _ in range(5):
            assert get(port, "s.test", "/html")[1] == "text/html; charset=utf-8"
        slow.release.set()
        reader.join(60)
        status, media, body = result[0]
        assert (status, media, len(body)) == (200, "text/html; charset=utf-8", HUGE)
    finally:
        slow.release.set()
        slow.server.close()
