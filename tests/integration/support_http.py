"""Test harness for the HTTP data plane: a uvloop thread serving the proxy and backends.

The proxy's protocol (`http_protocol_factory`) and the backends run on a uvloop loop in a
background thread, so tests can be plain functions with real blocking clients (raw sockets,
`http.client`, curl, `websockets`). Everything binds 127.0.0.1 port 0; state is read by
running a function on the proxy's loop (`LoopThread.call`), never by sleeping.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, TypeVar, cast

import uvloop
from aiohttp import web

from proxynow.config.dynamic import DynamicConfig
from proxynow.config.static import StaticConfig
from proxynow.edge.graph.state import WorkerState
from proxynow.edge.http1.factory import http_protocol_factory
from proxynow.edge.http1.protocol import EntryPointRuntime
from proxynow.observe.views import with_views
from proxynow.snapshot import Snapshot

T = TypeVar("T")
DEADLINE = 10.0
NAME = web.AppKey("name", str)


class LoopThread:
    """A uvloop event loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = uvloop.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="proxy-loop", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Awaitable[T]) -> T:
        async def wrap() -> T:
            return await coro

        return asyncio.run_coroutine_threadsafe(wrap(), self.loop).result(DEADLINE)

    def call(self, fn: Callable[[], T]) -> T:
        future: Future[T] = Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the waiting test
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(run)
        return future.result(DEADLINE)

    def stop(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(cancel_all())
        self.run(asyncio.sleep(0.01))  # let transports finish closing
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(DEADLINE)
        self.loop.close()


def wait_for(condition: Callable[[], T], what: str, deadline: float = DEADLINE) -> T:
    """Poll `condition` until it returns something truthy (never a fixed sleep)."""
    end = time.monotonic() + deadline
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


# ---------------------------------------------------------------- backends


async def _echo(request: web.Request) -> web.StreamResponse:
    """Echo what arrived; query parameters ask for other behaviour."""
    query = request.query
    body = await request.read()
    if "delay" in query:
        await asyncio.sleep(float(query["delay"]))
    status = int(query.get("status", "200"))
    if "download" in query:
        return await _download(request, int(query["download"]), "chunked" in query)
    info = {
        "method": request.method,
        "path": request.path_qs,
        "raw_path": request.raw_path,
        "version": f"{request.version.major}.{request.version.minor}",
        "headers": [[k, v] for k, v in request.headers.items()],
        "body_len": len(body),
        "body_sha": hashlib.sha256(body).hexdigest(),
        "server": request.app[NAME],
    }
    if status in (204, 304):
        return web.Response(status=status, headers={"X-Server": request.app[NAME]})
    response = web.json_response(info, status=status)
    response.headers["X-Server"] = request.app[NAME]
    for name in query.getall("hop", []):
        response.headers[name] = "hop"
    if "chunked" in query:
        response.enable_chunked_encoding()
    return response


async def _download(request: web.Request, size: int, chunked: bool) -> web.StreamResponse:
    response = web.StreamResponse()
    if chunked:
        response.enable_chunked_encoding()
    else:
        response.content_length = size
    await response.prepare(request)
    block = b"x" * 65536
    sent = 0
    while sent < size:
        piece = block[: min(len(block), size - sent)]
        await response.write(piece)
        sent += len(piece)
    await response.write_eof()
    return response


async def _ws(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for message in ws:
        await ws.send_str("echo:" + message.data)
    return ws


class Backend:
    """An aiohttp backend on the proxy's loop."""

    def __init__(self, lt: LoopThread, name: str = "a", ssl: Any = None) -> None:
        self.lt = lt
        self.name = name
        self.ssl = ssl
        app = web.Application(client_max_size=64 << 20)
        app[NAME] = name
        app.router.add_get("/ws", _ws)
        app.router.add_route("*", "/{tail:.*}", _echo)
        self.runner = web.AppRunner(app, access_log=None)
        self.port = lt.run(self._start())

    async def _start(self) -> int:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0, ssl_context=self.ssl)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.base_events.Server | uvloop.Loop) or server is not None
        sock = server.sockets[0]  # type: ignore[union-attr]
        port: int = sock.getsockname()[1]
        return port

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl else 'http'}://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.lt.run(self.runner.cleanup())


Responder = Callable[["RawConnection", bytes], bytes | None]


class RawConnection(asyncio.Protocol):
    """One connection to a `RawBackend`: reads request heads (no bodies), answers each."""

    def __init__(self, backend: RawBackend) -> None:
        self.backend = backend
        self.buffer = b""
        self.index = len(backend.connections)
        self.requests = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.backend.connections.append(self)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
            self.backend.heads.append(head)
            self.requests += 1
            answer = self.backend.responder(self, head)
            assert self.transport is not None
            if answer is None:
                self.transport.close()
                return
            self.transport.write(answer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.backend.closed += 1


class RawBackend:
    """A backend whose bytes are written by the test (for framing and failure cases)."""

    def __init__(self, lt: LoopThread, responder: Responder) -> None:
        self.lt = lt
        self.responder = responder
        self.heads: list[bytes] = []
        self.connections: list[RawConnection] = []
        self.closed = 0
        self.server = lt.run(lt.loop.create_server(lambda: RawConnection(self), "127.0.0.1", 0))
        self.port: int = self.server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        def stop() -> None:
            self.server.close()
            for conn in self.connections:
                if conn.transport is not None:
                    conn.transport.abort()

        self.lt.call(stop)


def ok_response(body: bytes = b"hello", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%b\r\n%b" % (len(body), extra, body)


# ---------------------------------------------------------------- the proxy


def simple_config(*urls: str, **lb_options: Any) -> dict[str, Any]:
    """One catch-all router to one load-balanced service."""
    return {
        "http": {
            "routers": {"r@test": {"rule": "PathPrefix(`/`)", "service": "s@test"}},
            "services": {
                "s@test": {"loadBalancer": {"servers": [{"url": u} for u in urls], **lb_options}}
            },
        }
    }


class Proxy:
    """`http_protocol_factory` served on 127.0.0.1:0 by the loop thread."""

    def __init__(
        self,
        lt: LoopThread,
        config: dict[str, Any],
        runtime: EntryPointRuntime | None = None,
        static: dict[str, Any] | None = None,
    ) -> None:
        self.lt = lt
        self.static = StaticConfig.model_validate(
            static or {"entryPoints": {"web": {"address": ":80"}}}
        )
        self.runtime = runtime or EntryPointRuntime("web")
        self.state = lt.call(lambda: WorkerState(tick_interval=0.05))
        self.load(config)
        factory = http_protocol_factory(self.state, self.runtime)
        self.server = lt.run(lt.loop.create_server(factory, "127.0.0.1", 0))
        self.port: int = self.server.sockets[0].getsockname()[1]

    def load(self, config: dict[str, Any], version: int = 1) -> None:
        snapshot = Snapshot(version=version, config=DynamicConfig.model_validate(config))
        self.lt.call(lambda: self.state.load(snapshot, self.static))

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=DEADLINE)
        return sock

    def metrics(self) -> dict[str, Any]:
        return with_views(self.lt.call(self.state.metrics.collect))

    def close(self) -> None:
        def stop() -> None:
            self.server.close()
            for connection in list(self.state.connections):
                connection.abort()
            self.state.stop()

        self.lt.call(stop)


@contextmanager
def loop_thread() -> Iterator[LoopThread]:
    lt = LoopThread()
    try:
        yield lt
    finally:
        lt.stop()


# ---------------------------------------------------------------- raw clients


def read_response(
    sock: socket.socket, head_only: bool = False
) -> tuple[int, dict[str, str], bytes]:
    """Read one response (Content-Length, chunked or until EOF) from a blocking socket."""
    reader = sock.makefile("rb")
    try:
        return _read_response(reader, head_only)
    finally:
        reader.close()


def _read_response(reader: Any, head_only: bool) -> tuple[int, dict[str, str], bytes]:
    status_line = reader.readline()
    if not status_line:
        raise ConnectionError("connection closed before a response")
    status = int(status_line.split()[1])
    headers: dict[str, str] = {}
    while True:
        line = reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        key = name.strip().lower()
        headers[key] = (headers[key] + ", " if key in headers else "") + value.strip()
    if head_only or status < 200 or status in (204, 304):
        return status, headers, b""
    if "content-length" in headers:
        return status, headers, reader.read(int(headers["content-length"]))
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int(reader.readline().strip(), 16)
            chunk = reader.read(size + 2)
            if size == 0:
                return status, headers, body
            body += chunk[:-2]
    return status, headers, reader.read()


def is_closed(sock: socket.socket) -> bool:
    """True once the peer closed (reads EOF); waits up to the deadline."""
    sock.settimeout(DEADLINE)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def exchange(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes, bool]:
    """Send raw bytes on a new connection; read one response; report if it then closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as sock:
        sock.sendall(raw)
        reader = sock.makefile("rb")
        status, headers, body = _read_response(reader, False)
        reader.close()
        return status, headers, body, is_closed(sock)


def echo_info(body: bytes) -> dict[str, Any]:
    info: dict[str, Any] = json.loads(body)
    return info


def header(info: dict[str, Any], name: str) -> list[str]:
    return [v for k, v in info["headers"] if k.lower() == name.lower()]
