"""Entrypoint transport limits through a real `proxynow run`, with raw-socket clients.

Traefik v3.7: `transport.keepAliveMaxRequests` answers the N-th request of a connection
with `Connection: close` and closes; `transport.keepAliveMaxTime` does that for the first
request once the connection is older than the limit; `respondingTimeouts.writeTimeout`
cuts a connection whose response is not written within the limit of its request head
(a slow backend, a client that stops reading). Timeouts are small, deadlines generous;
a worker enforces deadlines on a once-a-second tick, so a cut may come a second late.
The last tests drive the protocol with a fake transport for the deadline bookkeeping that
sockets cannot make deterministic (a finished response still in the send buffer).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from proxynow.config.static import EntryPoint
from proxynow.edge.graph.state import WorkerState
from proxynow.edge.http.exchange import EntryPointRuntime, entrypoint_runtime
from proxynow.edge.http1 import protocol as http1
from proxynow.edge.http1.factory import http_protocol_factory
from proxynow.edge.http1.limits import LimitedHttpProxy
from proxynow.edge.http1.protocol import INF, HttpProxy
from tests.support.proc import (
    HttpBackend,
    ProxynowProcess,
    ThreadedServer,
    poll,
    proxynow_factory,
)

__all__ = ["proxynow_factory"]

Start = Callable[..., ProxynowProcess]
DEADLINE = 30.0  # for anything the proxy must do "eventually"
BIG = 256 << 20  # a body no socket buffers can hold


@pytest.fixture
def backend() -> Iterator[HttpBackend]:
    with HttpBackend("b1") as server:
        yield server


def start(factory: Start, url: str, transport: dict[str, Any]) -> int:
    """A one-worker proxynow with `web` configured with `transport`; the port of `web`."""
    static = {"entryPoints": {"web": {"address": "127.0.0.1:0", "transport": transport}}}
    dynamic = {
        "http": {
            "routers": {"app": {"rule": "Host(`app.test`)", "service": "app"}},
            "services": {"app": {"loadBalancer": {"servers": [{"url": url}]}}},
        }
    }
    proxy = factory(static, dynamic, workers=1)
    return proxy.ports["web"]


class Client:
    """A raw HTTP/1.1 client on one connection."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        self.buffer = b""

    def close(self) -> None:
        self.sock.close()

    def send(self, path: str = "/") -> None:
        self.sock.sendall(b"GET %b HTTP/1.1\r\nHost: app.test\r\n\r\n" % path.encode())

    def response(self) -> tuple[int, dict[bytes, bytes], bytes]:
        """(status, lower-cased headers, body) of the next Content-Length response."""
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status_line, *lines = head.split(b"\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers[b"content-length"])
        while len(self.buffer) < length:
            self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(status_line.split()[1]), headers, body

    def get(self, path: str = "/") -> tuple[int, dict[bytes, bytes], bytes]:
        self.send(path)
        return self.response()

    def ended(self) -> tuple[bool, int]:
        """Read until the connection ends: (whether it ended within DEADLINE, bytes read)."""
        received = len(self.buffer)
        self.buffer = b""
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            try:
                chunk = self.sock.recv(1 << 20)
            except ConnectionResetError:
                return True, received
            except TimeoutError:
                break
            if not chunk:
                return True, received
            received += len(chunk)
        return False, received

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed mid-response")
        self.buffer += chunk


def open_connections(proxy: ProxynowProcess) -> int:
    return sum(
        w["metrics"]["entrypoints"].get("web", {}).get("open_connections", 0)
        for w in proxy.metrics()
    )


# ---------------------------------------------------------------- which protocol


@pytest.mark.parametrize(
    ("transport", "limited"),
    [
        ({}, False),
        ({"respondingTimeouts": {"readTimeout": 5, "idleTimeout": 5}}, False),
        ({"respondingTimeouts": {"writeTimeout": "300ms"}}, True),
        ({"keepAliveMaxRequests": 3}, True),
        ({"keepAliveMaxTime": "1s"}, True),
    ],
)
def test_only_an_entrypoint_with_a_limit_gets_the_limited_protocol(
    transport: dict[str, Any], limited: bool
) -> None:
    ep = EntryPoint.model_validate({"address": ":80", "transport": transport})
    assert entrypoint_runtime("web", ep).limits_connections is limited


# ---------------------------------------------------------------- keep-alive limits


def test_nth_response_carries_connection_close_and_the_connection_ends(
    proxynow_factory: Start, backend: HttpBackend
) -> None:
    port = start(proxynow_factory, backend.url, {"keepAliveMaxRequests": 3})
    client = Client(port)
    try:
        answers = [client.get(f"/{i}") for i in range(3)]
        ended, extra = client.ended()
    finally:
        client.close()
    assert [(status, body) for status, _, body in answers] == [
        (200, b"b1 /0"),
        (200, b"b1 /1"),
        (200, b"b1 /2"),
    ]
    assert [headers.get(b"connection") for _, headers, _ in answers] == [None, None, b"close"]
    assert (ended, extra) == (True, 0)
    # The limit is per connection: a new one starts counting again.
    again = Client(port)
    try:
        assert again.get("/new")[1].get(b"connection") is None
    finally:
        again.close()


def test_pipelined_requests_past_the_limit_are_not_answered(
    proxynow_factory: Start, backend: HttpBackend
) -> None:
    port = start(proxynow_factory, backend.url, {"keepAliveMaxRequests": 2})
    client = Client(port)
    try:
        for i in range(4):
            client.send(f"/{i}")
        first, second = client.response(), client.response()
        ended, extra = client.ended()
    finally:
        client.close()
    assert first[1].get(b"connection") is None and first[2] == b"b1 /0"
    assert second[1].get(b"connection") == b"close" and second[2] == b"b1 /1"
    assert (ended, extra) == (True, 0)


def test_connection_older_than_keep_alive_max_time_closes_after_its_next_response(
    proxynow_factory: Start, backend: HttpBackend
) -> None:
    max_time = 1.0
    port = start(proxynow_factory, backend.url, {"keepAliveMaxTime": max_time})
    opened = time.monotonic()
    client = Client(port)
    try:
        deadline = opened + DEADLINE
        while True:
            status, headers, _ = client.get("/")
            assert status == 200
            if headers.get(b"connection") == b"close":
                closed_at = time.monotonic()
                break
            assert time.monotonic() < deadline, "no response ever carried Connection: close"
            time.sleep(0.05)  # pacing between requests, not waiting for readiness
        ended, extra = client.ended()
    finally:
        client.close()
    # A lower bound that cannot flake: the client connected before the proxy accepted.
    assert closed_at - opened >= max_time
    assert (ended, extra) == (True, 0)


# ---------------------------------------------------------------- writeTimeout


def test_slow_backend_past_write_timeout_cuts_the_connection_fast_responses_pass(
    proxynow_factory: Start, backend: HttpBackend
) -> None:
    port = start(proxynow_factory, backend.url, {"respondingTimeouts": {"writeTimeout": "300ms"}})
    kept = Client(port)
    slow = Client(port)
    try:
        assert kept.get("/before")[::2] == (200, b"b1 /before")
        slow.send("/slow")
        poll(backend.arrived.is_set, DEADLINE, "the slow request at the backend")
        ended, received = slow.ended()
        assert (ended, received) == (True, 0)  # cut: not a byte of a response
        # The kept-alive connection outlived its own (disarmed) write deadline: the tick
        # that cut the slow one came later than it.
        assert kept.get("/after")[::2] == (200, b"b1 /after")
    finally:
        backend.release.set()
        kept.close()
        slow.close()
    fresh = Client(port)
    try:
        status, headers, body = fresh.get("/fresh")
    finally:
        fresh.close()
    assert (status, body, headers.get(b"connection")) == (200, b"b1 /fresh", None)


class BigBackend:
    """Answers every request with a BIG body, written as fast as the proxy takes it."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.server = ThreadedServer(self._handle)
        self.url = f"http://{self.server.address}"

    def _handle(self, sock: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return
            data += chunk
        self.arrived.set()
        block = b"x" * (1 << 20)
        try:
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % BIG)
            for _ in range(BIG // len(block)):
                sock.sendall(block)
        except OSError:
            return  # the proxy gave up on this response


@pytest.fixture
def big() -> Iterator[BigBackend]:
    backend = BigBackend()
    try:
        yield backend
    finally:
        backend.server.close()


def test_client_that_stops_reading_is_cut_after_write_timeout(
    proxynow_factory: Start, big: BigBackend
) -> None:
    static = {
        "entryPoints": {
            "web": {
                "address": "127.0.0.1:0",
                "transport": {"respondingTimeouts": {"writeTimeout": "500ms"}},
            }
        }
    }
    dynamic = {
        "http": {
            "routers": {"app": {"rule": "Host(`app.test`)", "service": "app"}},
            "services": {"app": {"loadBalancer": {"servers": [{"url": big.url}]}}},
        }
    }
    proxy = proxynow_factory(static, dynamic, workers=1)
    client = Client(proxy.ports["web"])
    try:
        client.send("/big")  # ... and read nothing
        poll(big.arrived.is_set, DEADLINE, "the request at the backend")
        poll(lambda: open_connections(proxy) == 0, DEADLINE, "the worker to drop the client")
        ended, received = client.ended()
    finally:
        client.close()
    assert ended
    assert received < BIG


# ---------------------------------------------------------------- the deadline bookkeeping


class FakeTransport:
    """Records what the protocol does; `buffered` is what it would still hold unsent."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.buffered = 0
        self.closed = False
        self.aborted = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True


async def limited(**options: Any) -> tuple[Any, FakeTransport, WorkerState]:
    """A protocol on an entrypoint with `options` and no routes (every request is a 404)."""
    state = WorkerState()
    runtime = EntryPointRuntime("web", **options)
    protocol = http_protocol_factory(state, runtime)()
    transport = FakeTransport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport, state


REQUEST = b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n"


async def test_default_entrypoint_gets_the_plain_protocol() -> None:
    state = WorkerState()
    try:
        protocol = http_protocol_factory(state, EntryPointRuntime("web"))()
        assert type(protocol) is HttpProxy
        protocol = http_protocol_factory(state, EntryPointRuntime("web", write_timeout=1))()
        assert type(protocol) is LimitedHttpProxy
    finally:
        state.stop()


async def test_write_deadline_stays_armed_while_a_finished_response_is_still_buffered() -> None:
    proxy, transport, state = await limited(write_timeout=5.0, idle_timeout=100.0)
    try:
        transport.buffered = 1 << 20  # the client reads nothing
        proxy.data_received(REQUEST)
        assert transport.written and transport.written[0].startswith(b"HTTP/1.1 404")
        assert proxy.active is None and proxy.deadline == proxy.write_by < INF
        proxy.on_deadline(proxy.write_by)
        assert transport.aborted
    finally:
        state.stop()


async def test_write_deadline_passing_after_the_buffer_drained_restores_the_idle_deadline() -> None:
    proxy, transport, state = await limited(write_timeout=5.0, idle_timeout=100.0)
    try:
        transport.buffered = 1 << 20
        proxy.data_received(REQUEST)
        write_by = proxy.write_by
        transport.buffered = 0  # the client caught up
        proxy.on_deadline(write_by)
        assert not transport.aborted and not transport.closed
        assert write_by < proxy.deadline < INF and proxy.write_by == INF
    finally:
        state.stop()


@pytest.mark.patches_hot_path
async def test_a_request_dispatched_after_the_buffer_drained_gets_its_own_write_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy, transport, state = await limited(write_timeout=5.0, idle_timeout=100.0)
    try:
        transport.buffered = 1 << 20
        proxy.data_received(REQUEST)
        first = proxy.write_by  # the 404 is complete but still buffered
        transport.buffered = 0
        later = proxy.loop.time() + 3.0
        proxy.loop = FakeClock(later)
        # The next request stays in flight: its body is still coming (and no backend
        # is dialled); its deadline must be its own, not the drained response's.
        monkeypatch.setattr(http1, "route", lambda downstream, exchange: None)
        proxy.data_received(b"POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 9\r\n\r\n")
        assert proxy.active is not None
        assert proxy.deadline == proxy.write_by == later + 5.0 > first
    finally:
        state.stop()


async def test_keep_alive_max_requests_closes_after_the_nth_local_answer() -> None:
    proxy, transport, state = await limited(keep_alive_max_requests=2)
    try:
        proxy.data_received(REQUEST)
        assert not transport.closed and b"Connection: close" not in transport.written[0]
        proxy.data_received(REQUEST)
        assert transport.closed and b"Connection: close" in transport.written[1]
    finally:
        state.stop()


class FakeClock:
    """Stands in for the loop where the protocol only reads the time."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now
