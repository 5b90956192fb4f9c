"""The upstream side and the worker of the in-memory front-end suite.

The client side is in memory (tests/transport/client.py); the upstream side is real: the
protocol dials aiohttp backends on 127.0.0.1:0 served by the test's own event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

from aiohttp import web

from proxynow.config.dynamic import DynamicConfig
from proxynow.config.static import StaticConfig
from proxynow.edge.graph.state import WorkerState
from proxynow.edge.http.exchange import entrypoint_runtime
from proxynow.snapshot import Snapshot
from tests.transport.client import Connection
from tests.transport.front_ends import FrontEnd

__all__ = ["Backend", "Proxied", "echoed", "routes"]

CHUNK = 64 << 10


class Backend:
    """An aiohttp server on 127.0.0.1:0 that tells what it received.

    `/stream` answers `first`, then waits for `release` before `second` (a response the
    proxy must forward as it comes); `/big?size=N` sends N bytes and keeps its transport
    in `big_transport` (to see it stall); anything else is echoed as JSON.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.requests = 0
        self.release = asyncio.Event()
        self.big_transport: asyncio.BaseTransport | None = None
        self.big_sent = 0
        app = web.Application()
        app.router.add_get("/stream", self._stream)
        app.router.add_get("/big", self._big)
        app.router.add_route("*", "/{tail:.*}", self._echo)
        self.runner = web.AppRunner(app, access_log=None)
        self.url = ""

    async def start(self) -> None:
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        host, port = self.runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def _echo(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = await request.read()
        info = {
            "server": self.name,
            "method": request.method,
            "path": request.path_qs,
            "headers": [[k, v] for k, v in request.headers.items()],
            "body_len": len(body),
            "body_sha": hashlib.sha256(body).hexdigest(),
            "chunked": request.headers.get("Transfer-Encoding", "").lower() == "chunked",
        }
        return web.json_response(info, headers={"X-Server": self.name})

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b"first")
        await self.release.wait()
        await response.write(b"second")
        await response.write_eof()
        return response

    async def _big(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        size = int(request.query["size"])
        response = web.StreamResponse()
        response.content_length = size
        await response.prepare(request)
        self.big_transport = request.transport
        block = b"x" * CHUNK
        while self.big_sent < size:
            part = block[: size - self.big_sent]
            await response.write(part)  # waits while the proxy does not read
            self.big_sent += len(part)
        await response.write_eof()
        return response

    def backlog(self) -> int:
        """What `/big` wrote that its socket could not take yet."""
        transport = self.big_transport
        return transport.get_write_buffer_size() if isinstance(transport, asyncio.Transport) else 0


def routes(one: Backend, two: Backend, dead: str) -> dict[str, Any]:
    """Host-based routers: app.test and one.test to `one`, two.test to `two`, dead.test to
    a port that refuses connections; any other host has no router (404)."""

    def service(url: str) -> dict[str, Any]:
        return {"loadBalancer": {"servers": [{"url": url}]}}

    return {
        "http": {
            "routers": {
                "app@test": {"rule": "Host(`app.test`) || Host(`one.test`)", "service": "one@test"},
                "two@test": {"rule": "Host(`two.test`)", "service": "two@test"},
                "dead@test": {"rule": "Host(`dead.test`)", "service": "dead@test"},
            },
            "services": {
                "one@test": service(one.url),
                "two@test": service(two.url),
                "dead@test": service(dead),
            },
        }
    }


class Proxied:
    """A worker state serving the routes through one front end; `connect` opens a client
    connection to it."""

    def __init__(self, front_end: FrontEnd, config: dict[str, Any]) -> None:
        self.front_end = front_end
        entrypoint = {"address": ":80", **front_end.entrypoint}
        static = StaticConfig.model_validate({"entryPoints": {"web": entrypoint}})
        self.state = WorkerState(tick_interval=0.05)
        self.state.load(Snapshot(version=1, config=DynamicConfig.model_validate(config)), static)
        runtime = entrypoint_runtime("web", static.entry_points["web"])
        self.factory = front_end.factory(self.state, runtime)
        self.connections: list[Connection] = []

    def connect(self) -> Connection:
        connection = Connection(self.factory(), self.front_end.codec())
        self.connections.append(connection)
        return connection

    async def close(self) -> None:
        for connection in self.connections:
            connection.close()
        await asyncio.sleep(0)  # the transports' connection_lost callbacks run
        self.state.stop()
        for connection in self.connections:
            assert connection.codec.errors == [], connection.codec.errors


def echoed(body: bytes | bytearray) -> dict[str, Any]:
    """The echo backend's account of a request, from its response body."""
    info: dict[str, Any] = json.loads(bytes(body))
    info["headers"] = {name.lower(): value for name, value in info["headers"]}
    return info
