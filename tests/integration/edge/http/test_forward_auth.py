"""forwardAuth through the HTTP/1 front end on real loopback sockets: a real aiohttp auth
server decides, the backend echoes what it got; attacks from a raw auth server (a huge
body, endless headers, no answer); a slow auth server stalls nobody else and the
subrequest costs no task once the auth connection is warm."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from proxynow.edge.http.middlewares import forward_auth
from tests.integration.support_http import (
    DEADLINE,
    Backend,
    LoopThread,
    Proxy,
    RawBackend,
    RawConnection,
    echo_info,
    header,
    loop_thread,
    read_response,
    wait_for,
)


class AuthServer:
    """An aiohttp auth server: `Authorization: good` passes, anything else is refused."""

    def __init__(self, lt: LoopThread) -> None:
        self.lt = lt
        self.seen: list[dict[str, str]] = []
        self.release = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/auth", self.auth)
        app.router.add_get("/slow", self.slow)
        self.runner = web.AppRunner(app, access_log=None)
        self.port = lt.run(self._start())

    async def _start(self) -> int:
        self.release = asyncio.Event()
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port: int = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return port

    async def auth(self, request: web.Request) -> web.Response:
        self.seen.append({**request.headers, "method": request.method})
        if request.headers.get("Authorization") == "good":
            response = web.Response(text="ok")
            response.headers["X-Auth-User"] = "alice"
            response.headers["X-Auth-Role"] = "admin"
            response.headers["X-Other"] = "not copied"
            response.headers.add("Set-Cookie", "session=abc; Path=/")
            response.headers.add("Set-Cookie", "ignored=1")
            return response
        if request.headers.get("Authorization") == "redirect":
            return web.Response(status=302, headers={"Location": "/login?x=1"})
        return web.Response(
            status=401,
            text="denied",
            headers={"WWW-Authenticate": 'Basic realm="x"', "X-Why": "no"},
        )

    async def slow(self, request: web.Request) -> web.Response:
        await self.release.wait()
        return web.Response(text="late")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.lt.call(self.release.set)
        self.lt.run(self.runner.cleanup())


def config(backend: str, auth: dict[str, Any]) -> dict[str, Any]:
    return {
        "http": {
            "routers": {
                "r@test": {
                    "rule": "PathPrefix(`/`)",
                    "service": "s@test",
                    "middlewares": ["auth@test"],
                }
            },
            "services": {"s@test": {"loadBalancer": {"servers": [{"url": backend}]}}},
            "middlewares": {"auth@test": {"forwardAuth": auth}},
        }
    }


@pytest.fixture
def lt() -> Iterator[LoopThread]:
    with loop_thread() as thread:
        yield thread


@pytest.fixture
def backend(lt: LoopThread) -> Iterator[Backend]:
    server = Backend(lt)
    yield server
    server.close()


@pytest.fixture
def auth(lt: LoopThread) -> Iterator[AuthServer]:
    server = AuthServer(lt)
    yield server
    server.close()


def get(
    proxy: Proxy, target: str = "/app?q=1", extra: bytes = b"", method: bytes = b"GET"
) -> tuple[int, dict[str, str], bytes]:
    with proxy.connect() as sock:
        sock.sendall(
            b"%s %s HTTP/1.1\r\nHost: site.test\r\n%b\r\n" % (method, target.encode(), extra)
        )
        return read_response(sock)


def test_allowed_request_gets_auth_response_headers(
    lt: LoopThread, backend: Backend, auth: AuthServer
) -> None:
    options = {
        "address": auth.url("/auth"),
        "authResponseHeaders": ["X-Auth-User"],
        "authResponseHeadersRegex": "^X-Auth-R",
        "addAuthCookiesToResponse": ["session"],
    }
    proxy = Proxy(lt, config(backend.url, options))
    try:
        extra = b"Authorization: good\r\nX-Auth-User: forged\r\nX-Auth-Rogue: forged\r\n"
        status, headers, body = get(proxy, extra=extra)
        assert status == 200
        info = echo_info(body)
        assert header(info, "X-Auth-User") == ["alice"]
        assert header(info, "X-Auth-Role") == ["admin"]
        assert header(info, "X-Auth-Rogue") == []  # matched the regexp: stripped
        assert header(info, "X-Other") == []
        assert headers["set-cookie"] == "session=abc; Path=/"  # `ignored` is not listed
        seen = auth.seen[-1]
        assert seen["method"] == "GET"
        assert seen["X-Forwarded-Method"] == "GET"
        assert seen["X-Forwarded-Proto"] == "http"
        assert seen["X-Forwarded-Host"] == "site.test"
        assert seen["X-Forwarded-Uri"] == "/app?q=1"
        assert seen["X-Forwarded-For"] == "127.0.0.1"
        assert seen["Host"] == f"127.0.0.1:{auth.port}"
    finally:
        proxy.close()


def test_denied_request_gets_the_auth_answer(
    lt: LoopThread, backend: Backend, auth: AuthServer
) -> None:
    proxy = Proxy(
        lt, config(backend.url, {"address": auth.url("/auth"), "preserveRequestMethod": True})
    )
    try:
        status, headers, body = get(proxy, method=b"DELETE", extra=b"X-Forwarded-Uri: /forged\r\n")
        assert (status, body) == (401, b"denied")
        assert headers["www-authenticate"] == 'Basic realm="x"'
        assert headers["x-why"] == "no"
        assert auth.seen[-1]["method"] == "DELETE"
        assert auth.seen[-1]["X-Forwarded-Uri"] == "/app?q=1"  # the client's is not trusted
        status, headers, _ = get(proxy, extra=b"Authorization: redirect\r\n")
        assert status == 302
        assert headers["location"] == f"http://127.0.0.1:{auth.port}/login?x=1"
    finally:
        proxy.close()


def test_preserve_location_header(lt: LoopThread, backend: Backend, auth: AuthServer) -> None:
    options = {"address": auth.url("/auth"), "preserveLocationHeader": True}
    proxy = Proxy(lt, config(backend.url, options))
    try:
        status, headers, _ = get(proxy, extra=b"Authorization: redirect\r\n")
        assert (status, headers["location"]) == (302, "/login?x=1")
    finally:
        proxy.close()


def test_auth_request_headers_filter(lt: LoopThread, backend: Backend, auth: AuthServer) -> None:
    options = {"address": auth.url("/auth"), "authRequestHeaders": ["Authorization"]}
    proxy = Proxy(lt, config(backend.url, options))
    try:
        assert get(proxy, extra=b"Authorization: good\r\nX-Secret: s\r\n")[0] == 200
        seen = auth.seen[-1]
        assert "X-Secret" not in seen and seen["Authorization"] == "good"
        assert seen["X-Forwarded-Method"] == "GET"  # always sent, after the filter
    finally:
        proxy.close()


def test_unreachable_auth_server_is_500(lt: LoopThread, backend: Backend) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
        proxy = Proxy(lt, config(backend.url, {"address": f"http://127.0.0.1:{port}/auth"}))
        try:
            assert get(proxy)[0] == 500
        finally:
            proxy.close()


def test_unapplied_option_fails_closed(lt: LoopThread, backend: Backend, auth: AuthServer) -> None:
    options = {"address": auth.url("/auth"), "forwardBody": True}
    proxy = Proxy(lt, config(backend.url, options))
    try:
        assert get(proxy, extra=b"Authorization: good\r\n")[0] == 500
        assert auth.seen == []
    finally:
        proxy.close()


def test_slow_auth_server_stalls_nobody_else(
    lt: LoopThread, backend: Backend, auth: AuthServer
) -> None:
    slow = Proxy(lt, config(backend.url, {"address": auth.url("/slow")}))
    fast = Proxy(lt, config(backend.url, {"address": auth.url("/auth")}))
    try:
        with slow.connect() as waiting:
            waiting.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            # While the first request waits for its auth server, others are served.
            for _ in range(3):
                assert get(fast, extra=b"Authorization: good\r\n")[0] == 200
            lt.call(auth.release.set)
            assert read_response(waiting)[0] == 200
    finally:
        slow.close()
        fast.close()


# ---------------------------------------------------------------- a raw auth server


def counting_tasks(lt: LoopThread) -> list[int]:
    """Counts the tasks created on the loop from now on."""
    created = [0]

    def install() -> None:
        def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
            created[0] += 1
            return asyncio.Task(coro, loop=loop, **kwargs)

        lt.loop.set_task_factory(factory)  # type: ignore[arg-type]

    lt.call(install)
    return created


def test_no_task_per_request_and_connection_reuse(lt: LoopThread) -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Auth-User: bob\r\n\r\nok"
    raw_auth = RawBackend(lt, lambda conn, head: answer)
    raw_backend = RawBackend(
        lt, lambda conn, head: b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb"
    )
    proxy = Proxy(lt, config(raw_backend.url, {"address": raw_auth.url + "/a"}))
    try:
        with proxy.connect() as sock:
            reader = sock.makefile("rb")
            sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            reader.readline()  # warm: both upstream connections dialed
            created = counting_tasks(lt)
            for _ in range(20):
                sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            sock.settimeout(DEADLINE)
            data = b""
            while data.count(b"\r\n\r\nb") < 20:
                data += sock.recv(65536)
            reader.close()
        assert created[0] == 0
        assert len(raw_auth.connections) == 1  # the auth connection was reused
        assert raw_auth.connections[0].requests == 21
    finally:
        proxy.close()
        raw_auth.close()
        raw_backend.close()


@pytest.mark.parametrize(
    "answer",
    [
        # a body far over the limit
        b"HTTP/1.1 401 No\r\nContent-Length: 100000000\r\n\r\n" + b"x" * 65536,
        # headers without end (over maxResponseHeaderBytes), too many headers
        b"HTTP/1.1 200 OK\r\n" + b"X-Endless: " + b"y" * (2 << 20),
        b"HTTP/1.1 200 OK\r\n" + b"X-H: v\r\n" * 20000 + b"\r\n",
    ],
    ids=["huge body", "endless header", "endless headers"],
)
def test_hostile_auth_server(lt: LoopThread, backend: Backend, answer: bytes) -> None:
    raw_auth = RawBackend(lt, lambda conn, head: answer)
    options = {"address": raw_auth.url + "/a", "maxResponseBodySize": 1000}
    proxy = Proxy(lt, config(backend.url, options))
    try:
        status = get(proxy)[0]
        assert status == (401 if b"100000000" in answer else 500)
        wait_for(lambda: raw_auth.closed == 1, "the proxy to drop the auth connection")
    finally:
        proxy.close()
        raw_auth.close()


def test_silent_auth_server_times_out(
    lt: LoopThread, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(forward_auth, "AUTH_TIMEOUT", 0.3)
    silent: list[RawConnection] = []

    def never(conn: RawConnection, head: bytes) -> bytes:
        silent.append(conn)
        return b""

    raw_auth = RawBackend(lt, never)
    proxy = Proxy(lt, config(backend.url, {"address": raw_auth.url + "/a"}))
    try:
        assert get(proxy)[0] == 500
        assert len(silent) == 1
    finally:
        proxy.close()
        raw_auth.close()
