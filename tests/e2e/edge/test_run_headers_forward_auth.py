"""`headers` and `forwardAuth` through a running `proxynow run` (two workers), from a file:
a real aiohttp auth server on 127.0.0.1 decides, a real backend echoes what it received;
the client sees status, headers and body as Traefik would give them."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiohttp import web

from tests.support.proc import ProxynowProcess, ThreadedServer, proxynow_factory

__all__ = ["proxynow_factory"]


class AuthApp:
    """An aiohttp auth server in a thread of its own: `Authorization: good` passes."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.seen: list[dict[str, str]] = []
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self.ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/auth", self.auth)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port: int = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def auth(self, request: web.Request) -> web.Response:
        self.seen.append(dict(request.headers))
        if request.headers.get("Authorization") == "good":
            return web.Response(text="ok", headers={"X-Auth-User": "alice"})
        return web.Response(status=403, text="go away", headers={"X-Reason": "bad token"})

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def _echo(conn: socket.socket) -> None:
    """Answer every request on the connection with the headers it carried, as JSON."""
    reader = conn.makefile("rb")
    while True:
        line = reader.readline()
        if not line:
            return
        got: dict[str, str] = {}
        while (line := reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            got[name.strip().lower()] = value.strip()
        body = json.dumps(got).encode()
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nServer: backend\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%b" % (len(body), body)
        )


@pytest.fixture
def auth() -> Iterator[AuthApp]:
    server = AuthApp()
    yield server
    server.close()


@pytest.fixture
def proxy(
    auth: AuthApp, proxynow_factory: Callable[..., ProxynowProcess]
) -> Iterator[ProxynowProcess]:
    with ThreadedServer(_echo) as backend:
        service = {"loadBalancer": {"servers": [{"url": f"http://{backend.address}"}]}}
        dynamic = {
            "http": {
                "routers": {
                    "open": {
                        "rule": "PathPrefix(`/open`)",
                        "service": "echo",
                        "middlewares": ["hdr"],
                    },
                    "closed": {
                        "rule": "PathPrefix(`/closed`)",
                        "service": "echo",
                        "middlewares": ["hdr", "auth"],
                    },
                },
                "middlewares": {
                    "hdr": {
                        "headers": {
                            "customRequestHeaders": {"X-From-Proxy": "1"},
                            "customResponseHeaders": {"Server": "", "X-Served": "yes"},
                            "accessControlAllowOriginList": ["https://app.test"],
                            "accessControlAllowMethods": ["GET"],
                            "frameDeny": True,
                        }
                    },
                    "auth": {
                        "forwardAuth": {
                            "address": f"http://127.0.0.1:{auth.port}/auth",
                            "authResponseHeaders": ["X-Auth-User"],
                        }
                    },
                },
                "services": {"echo": service},
            }
        }
        yield proxynow_factory({"entryPoints": {"web": {"address": "127.0.0.1:0"}}}, dynamic)


def request(
    proxy: ProxynowProcess, method: str, path: str, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", proxy.ports["web"], timeout=10)
    try:
        conn.request(method, path, headers={"Host": "site.test", **headers})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_headers_through_the_running_proxy(proxy: ProxynowProcess) -> None:
    status, headers, body = request(proxy, "GET", "/open", {"Origin": "https://app.test"})
    assert status == 200
    assert json.loads(body)["x-from-proxy"] == "1"
    assert "server" not in headers and headers["x-served"] == "yes"
    assert headers["x-frame-options"] == "DENY"
    assert headers["access-control-allow-origin"] == "https://app.test"
    preflight = {"Origin": "https://app.test", "Access-Control-Request-Method": "GET"}
    status, headers, body = request(proxy, "OPTIONS", "/open", preflight)
    assert (status, body) == (200, b"")
    assert headers["access-control-allow-methods"] == "GET"
    assert "x-served" not in headers and "x-frame-options" not in headers  # not the backend's


def test_forward_auth_through_the_running_proxy(proxy: ProxynowProcess, auth: AuthApp) -> None:
    status, headers, body = request(proxy, "GET", "/closed?a=1", {"Authorization": "good"})
    assert status == 200
    got: dict[str, Any] = json.loads(body)
    assert got["x-auth-user"] == "alice" and got["x-from-proxy"] == "1"
    assert headers["x-served"] == "yes"
    assert auth.seen[-1]["X-Forwarded-Uri"] == "/closed?a=1"
    assert auth.seen[-1]["X-Forwarded-Host"] == "site.test"
    status, headers, body = request(proxy, "GET", "/closed", {"Authorization": "bad"})
    assert (status, body) == (403, b"go away")
    assert headers["x-reason"] == "bad token"
    # The answer passes the headers middleware around forwardAuth, as in Traefik.
    assert headers["x-served"] == "yes" and headers["x-frame-options"] == "DENY"
