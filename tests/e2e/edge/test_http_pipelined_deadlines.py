"""A pipelined request must not move the deadline of the response in flight before it.

Go (and so Traefik) reads request N+1 only after answering request N, so readTimeout
never runs while a response is pending. proxynow reads ahead; the head it reads ahead
must not put a read deadline on the connection while the earlier response is still
being waited for.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from tests.support.proc import HttpBackend, ProxynowProcess, proxynow_factory

__all__ = ["proxynow_factory"]

Start = Callable[..., ProxynowProcess]
READ_TIMEOUT = 1.0
TICK = 1.0  # the worker enforces deadlines on a once-a-second tick


@pytest.fixture
def backend() -> Iterator[HttpBackend]:
    with HttpBackend("b1") as server:
        yield server


def read_responses(sock: socket.socket, count: int) -> list[bytes]:
    """The status lines of `count` Content-Length responses (b"" once the peer closes)."""
    buffer, lines = b"", []
    while len(lines) < count:
        while b"\r\n\r\n" not in buffer:
            data = sock.recv(65536)
            if not data:
                return [*lines, b""]
            buffer += data
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(buffer) < length:
            buffer += sock.recv(65536)
        buffer = buffer[length:]
        lines.append(head.split(b"\r\n", 1)[0])
    return lines


def test_slow_response_with_a_pipelined_request_behind_it_outlives_read_timeout(
    proxynow_factory: Start, backend: HttpBackend
) -> None:
    static = {
        "entryPoints": {
            "web": {
                "address": "127.0.0.1:0",
                "transport": {"respondingTimeouts": {"readTimeout": f"{READ_TIMEOUT}s"}},
            }
        }
    }
    dynamic = {
        "http": {
            "routers": {"app": {"rule": "Host(`app.test`)", "service": "app"}},
            "services": {"app": {"loadBalancer": {"servers": [{"url": backend.url}]}}},
        }
    }
    proxy = proxynow_factory(static, dynamic, workers=1)
    with socket.create_connection(("127.0.0.1", proxy.ports["web"]), timeout=30) as sock:
        sock.sendall(
            b"GET /slow HTTP/1.1\r\nHost: app.test\r\n\r\n"
            b"GET /fast HTTP/1.1\r\nHost: app.test\r\n\r\n"
        )
        assert backend.arrived.wait(30)
        # Not a readiness wait: the response must stay pending past readTimeout (plus
        # the tick that enforces it) for the bug to show.
        threading.Event().wait(READ_TIMEOUT + 2 * TICK)
        backend.release.set()
        assert read_responses(sock, 2) == [b"HTTP/1.1 200 OK", b"HTTP/1.1 200 OK"]
