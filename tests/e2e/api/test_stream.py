"""The live stream `/api/stream`: Server-Sent Events through the data plane, exact rates,
the client cap, slow clients, and no sampling while nobody watches.

The first tests run a real `proxynow run` and read the stream through the `traefik`
entrypoint, as the dashboard does; they also check that the HTTP/1 proxy relays a body of
unknown length as it comes (re-framed chunked, one chunk per read), which is what makes
the stream live. The last one drives the control plane's `ApiServer` in process, with a
rate source that counts its samples, to see the bounds.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from proxynow.api.server import ApiServer
from proxynow.api.stream import QUEUE_FRAMES, parse_events
from proxynow.config.static import StaticConfig
from proxynow.snapshot import Snapshot
from tests.support.proc import (
    HttpBackend,
    ProxynowProcess,
    ThreadedServer,
    http_get,
    proxynow_factory,
)

__all__ = ["proxynow_factory"]

Start = Callable[..., ProxynowProcess]

STATIC = {
    "entryPoints": {"web": {"address": "127.0.0.1:0"}, "traefik": {"address": "127.0.0.1:0"}},
    "api": {"insecure": True},
}


class ChunkedReader:
    """An HTTP/1.1 response read from a socket as it arrives: the head, then the decoded
    chunked body, so that a test sees each event when the proxy sends it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.raw = b""
        self.body = b""
        self.head = b""
        self.ended = False

    def _more(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise AssertionError(f"connection closed; body so far: {self.body!r}")
        self.raw += data

    def read_head(self) -> dict[str, str]:
        while b"\r\n\r\n" not in self.raw:
            self._more()
        self.head, _, self.raw = self.raw.partition(b"\r\n\r\n")
        lines = self.head.decode().split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:])
        return {"status": lines[0], **headers}

    def _decode(self) -> None:
        while not self.ended:
            size_line, crlf, rest = self.raw.partition(b"\r\n")
            if not crlf:
                return
            size = int(size_line, 16)
            if len(rest) < size + 2:
                return
            self.body += rest[:size]
            self.raw = rest[size + 2 :]
            self.ended = size == 0

    def read_until(self, marker: bytes) -> bytes:
        self._decode()
        while marker not in self.body:
            self._more()
            self._decode()
        return self.body


def open_stream(port: int, path: str = "/api/stream") -> tuple[socket.socket, ChunkedReader]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: dash.test\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    return sock, ChunkedReader(sock)


class Events:
    """The events of a stream, in order, read as needed."""

    def __init__(self, reader: ChunkedReader) -> None:
        self.reader = reader
        self.seen = 0

    def next(self, event: str) -> dict[str, Any]:
        """The next event named `event` (others are skipped)."""
        while True:
            text = self.reader.read_until(b"\n\n")
            blocks = text.decode().split("\n\n")
            complete = blocks[:-1]
            while self.seen < len(complete):
                block = complete[self.seen]
                self.seen += 1
                for name, data in parse_events(block + "\n\n"):
                    if name == event:
                        return dict(data)
            self.reader._more()
            self.reader._decode()


@pytest.fixture
def backend() -> Iterator[HttpBackend]:
    with HttpBackend("app") as server:
        yield server


def test_stream_is_sse_through_the_proxy_and_counts_exactly(
    proxynow_factory: Start, backend: HttpBackend
) -> None:
    dynamic = {
        "http": {
            "routers": {
                "app": {"rule": "Host(`app.test`)", "service": "app"},
                "down": {"rule": "Host(`down.test`)", "service": "down"},
            },
            "services": {
                "app": {"loadBalancer": {"servers": [{"url": backend.url}]}},
                "down": {"loadBalancer": {"servers": [{"url": "http://127.0.0.1:9"}]}},
            },
        }
    }
    proxy = proxynow_factory(STATIC, dynamic, workers=2)
    sock, reader = open_stream(proxy.ports["traefik"])
    with sock:
        head = reader.read_head()
        assert head["status"] == "HTTP/1.1 200 OK"
        assert head["Content-Type"] == "text/event-stream; charset=utf-8"
        assert head["Transfer-Encoding"] == "chunked" and "Content-Length" not in head
        assert head["Cache-Control"] == "no-cache"
        assert reader.read_until(b"\n\n").startswith(b"retry: 2000\n\n")
        events = Events(reader)
        first = events.next("status")
        assert first["overview"]["http"]["routers"]["total"] >= 2
        events.next("rates")  # measured from the baseline taken when we connected
        for _ in range(40):
            assert http_get(proxy.ports["web"], "/", "app.test")[0] == 200
        for _ in range(10):
            assert http_get(proxy.ports["web"], "/", "down.test")[0] == 502
        counted = {"app@file": 0, "down@file": 0}
        deadline = time.monotonic() + 20
        while counted != {"app@file": 40, "down@file": 10}:
            assert time.monotonic() < deadline, f"rates stopped at {counted}"
            frame = events.next("rates")
            for name, rates in frame["routers"].items():
                counted[name] += rates["requests"]
                # the interval is rounded to the millisecond in the frame
                assert rates["rps"] == pytest.approx(rates["requests"] / frame["interval"], 1e-2)
                expected_errors = 1.0 if name == "down@file" else 0.0
                assert rates["errorRate"] == expected_errors
            assert counted["app@file"] <= 40 and counted["down@file"] <= 10, counted
            assert frame["services"].get("app@file", {}).get("requests", 0) == frame["routers"].get(
                "app@file", {}
            ).get("requests", 0)
        # Nothing was sent since: the next frame has no requests (no double counting).
        assert events.next("rates")["routers"] == {}


def test_a_status_change_is_pushed(proxynow_factory: Start, backend: HttpBackend) -> None:
    dynamic: dict[str, Any] = {
        "http": {
            "routers": {"app": {"rule": "Host(`app.test`)", "service": "app"}},
            "services": {"app": {"loadBalancer": {"servers": [{"url": backend.url}]}}},
        }
    }
    proxy = proxynow_factory(STATIC, dynamic, workers=1)
    sock, reader = open_stream(proxy.ports["traefik"])
    with sock:
        reader.read_head()
        events = Events(reader)
        events.next("status")
        dynamic["http"]["routers"]["lost"] = {"rule": "Host(`l.test`)", "service": "nope"}
        proxy.write_dynamic(dynamic)
        change = events.next("status")
        assert [(c["kind"], c["name"]) for c in change["changed"]] == [
            ("http/routers", "lost@file")
        ]
        item = change["changed"][0]["item"]
        assert item["status"] == "disabled"
        assert item["error"] == ["service nope@file does not exist"]
        assert change["overview"]["http"]["routers"]["errors"] == 1


@pytest.mark.parametrize("framing", ["close-delimited", "chunked"])
def test_a_body_of_unknown_length_is_relayed_as_it_comes(
    proxynow_factory: Start, framing: str
) -> None:
    """The backend sends `first`, then waits until the client has it before `second`: a
    proxy that buffered the body would never let the client see `first` in time."""
    release = threading.Event()

    def handle(conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(4096)
        chunked = framing == "chunked"
        framing_header = b"Transfer-Encoding: chunked\r\n" if chunked else b""
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n" + framing_header)
        conn.sendall(b"\r\n")

        def send(payload: bytes) -> None:
            conn.sendall(b"%x\r\n%b\r\n" % (len(payload), payload) if chunked else payload)

        send(b"data: first\n\n")
        release.wait(20)
        send(b"data: second\n\n")
        if chunked:
            conn.sendall(b"0\r\n\r\n")
        conn.close()

    with ThreadedServer(handle) as server:
        dynamic = {
            "http": {
                "routers": {"sse": {"rule": "Host(`sse.test`)", "service": "sse"}},
                "services": {
                    "sse": {"loadBalancer": {"servers": [{"url": f"http://{server.address}"}]}}
                },
            }
        }
        proxy = proxynow_factory(STATIC, dynamic, workers=1)
        sock = socket.create_connection(("127.0.0.1", proxy.ports["web"]), timeout=10)
        with sock:
            sock.sendall(b"GET /events HTTP/1.1\r\nHost: sse.test\r\n\r\n")
            reader = ChunkedReader(sock)
            head = reader.read_head()
            assert head["Transfer-Encoding"] == "chunked"  # re-framed for the client
            assert reader.read_until(b"first") == b"data: first\n\n"
            assert not release.is_set()
            release.set()
            assert reader.read_until(b"second").endswith(b"data: second\n\n")
            while not reader.ended:
                reader._more()
                reader._decode()


# ---------------------------------------------------------------- bounds, in process


class CountingRates:
    """A rate source that counts its samples and sends frames of `size` bytes."""

    def __init__(self, size: int = 100) -> None:
        self.samples = 0
        self.resets = 0
        self.size = size

    def reset(self) -> None:
        self.resets += 1

    async def sample(self) -> dict[str, Any] | None:
        self.samples += 1
        return {"time": 0.0, "interval": 1.0, "routers": {"x" * self.size: {}}}


def snapshot(version: int) -> Snapshot:
    empty = Snapshot.empty()
    return Snapshot(version, empty.config, empty.statuses, empty.disabled)


async def until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


async def connect(server: ApiServer, receive_buffer: int = 0) -> socket.socket:
    """A raw client of the stream on the server's private address (with its token)."""
    origin = urlsplit(server.origin)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, (origin.hostname, origin.port))
    request = f"GET {origin.path}/api/api/stream HTTP/1.1\r\nHost: x\r\n\r\n"
    await loop.sock_sendall(sock, request.encode())
    return sock


async def read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    loop = asyncio.get_running_loop()
    while marker not in data:
        chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), 10)
        assert chunk, f"closed before {marker!r}: {data[:300]!r}"
        data += chunk
    return data


async def test_client_cap_slow_clients_and_no_sampling_without_clients() -> None:
    server = ApiServer(StaticConfig.model_validate({"api": {}}), stream_clients=2)
    server.stream._interval = 0.01  # a frame every 10 ms, so that queues fill quickly
    rates = CountingRates(size=64 * 1024)
    server.set_rates(rates)
    await server.start()
    try:
        for version in range(3):  # changes while nobody watches cost nothing
            server.publish(snapshot(version + 1))
        assert (rates.samples, server.stream.running) == (0, False)

        slow = await connect(server, receive_buffer=4096)
        fast = await connect(server)
        for sock in (slow, fast):
            assert b"event: status" in await read_until(sock, b"event: status")
        refused = await connect(server)
        answer = await read_until(refused, b"too many stream clients")
        assert answer.startswith(b"HTTP/1.1 503")
        refused.close()

        # `fast` reads everything, `slow` reads nothing: only `slow` is dropped.
        loop = asyncio.get_running_loop()
        received = 0

        async def drain() -> None:
            nonlocal received
            while chunk := await loop.sock_recv(fast, 1 << 20):
                received += len(chunk)

        reading = asyncio.ensure_future(drain())
        await until(lambda: server.stream.dropped == 1, "the slow client dropped")
        assert server.stream.clients == 1
        before = received
        await until(lambda: received > before + QUEUE_FRAMES * 64 * 1024, "frames to the fast one")
        slow.close()

        fast.close()
        reading.cancel()
        await until(lambda: not server.stream.running, "the loop to stop with no client")
        samples = rates.samples
        assert samples > QUEUE_FRAMES and rates.resets == 1
        server.publish(snapshot(9))
        assert (rates.samples, server.stream.running) == (samples, False)
    finally:
        await server.close()
