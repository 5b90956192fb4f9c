"""Differential test of `forwardAuth`: one dynamic file served by real Traefik 3.7 and by
`proxynow run`, both asking the same auth server; the same raw requests to both. Compared:
what the auth server received, the client's status, headers and body, and what the backend
received. The auth server and the backend are threaded raw servers (keep-alive, as Go's
client uses it); a request names itself in `X-Test-Id` so that each side's auth request
is found again."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import differential
from tests.support.differential import RawRequest
from tests.support.proc import ThreadedServer

# Headers Go's client adds by itself (and proxynow's does not need to).
CLIENT_OWN = {"user-agent", "accept-encoding"}
COMPARED = ("location", "www-authenticate", "x-why", "set-cookie", "content-type")


def _heads(conn: socket.socket) -> Iterator[tuple[str, dict[str, list[str]]]]:
    """Request heads arriving on `conn` (no bodies), as (request line, headers)."""
    reader = conn.makefile("rb")
    while line := reader.readline():
        headers: dict[str, list[str]] = {}
        while (field := reader.readline()) not in (b"\r\n", b""):
            name, _, value = field.decode("latin-1").partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        yield line.decode("latin-1").strip(), headers


class Auth:
    """Decides by Authorization; remembers each auth request by X-Test-Id and proxy."""

    def __init__(self) -> None:
        self.seen: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.server = ThreadedServer(self.handle)

    def handle(self, conn: socket.socket) -> None:
        for line, headers in _heads(conn):
            key = headers.get("x-test-id", ["?"])[0]
            with self.lock:
                self.seen[key] = {"line": line, "headers": headers}
            token = headers.get("authorization", [""])[0]
            if token == "good":
                answer = (
                    b"HTTP/1.1 200 OK\r\nX-Auth-User: alice\r\nX-Auth-Extra: e\r\n"
                    b"X-Not-Copied: n\r\nSet-Cookie: session=s1; Path=/\r\n"
                    b"Set-Cookie: other=o\r\nContent-Length: 0\r\n\r\n"
                )
            elif token == "redirect":
                answer = (
                    b"HTTP/1.1 302 Found\r\nLocation: /login?next=1\r\nContent-Length: 0\r\n\r\n"
                )
            else:
                answer = (
                    b'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm="t"\r\n'
                    b"X-Why: no\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\ndenied"
                )
            conn.sendall(answer)


def _backend(conn: socket.socket) -> None:
    for _, headers in _heads(conn):
        body = json.dumps(headers).encode()
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nX-Router: ready\r\nSet-Cookie: session=backend\r\n"
            b"Set-Cookie: keep=k\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body)
        )


def dynamic(auth: int, backend: int) -> dict[str, Any]:
    address = f"http://127.0.0.1:{auth}/check?x=1"
    middlewares = {
        "plain": {
            "forwardAuth": {
                "address": address,
                "authResponseHeaders": ["X-Auth-User"],
                "authResponseHeadersRegex": "^X-Auth-E",
                "addAuthCookiesToResponse": ["session"],
            }
        },
        "trust": {
            "forwardAuth": {
                "address": address,
                "trustForwardHeader": True,
                "preserveRequestMethod": True,
                "preserveLocationHeader": True,
            }
        },
        "filter": {
            "forwardAuth": {
                "address": address,
                "authRequestHeaders": ["Authorization", "X-Test-Id"],
            }
        },
    }
    routers = differential.one_router_each(middlewares, "echo")
    routers["ready"] = {"rule": "Host(`ready.test`)", "service": "echo"}
    service = differential.load_balancer(f"http://127.0.0.1:{backend}")
    return {"http": {"routers": routers, "middlewares": middlewares, "services": {"echo": service}}}


CASES = {
    "allowed": RawRequest(
        "/plain/a?b=c", headers=(("Authorization", "good"), ("X-Auth-Extra", "forged"))
    ),
    "denied": RawRequest("/plain/a", headers=(("Authorization", "bad"), ("Cookie", "c=1"))),
    "redirect": RawRequest("/plain", headers=(("Authorization", "redirect"),)),
    "forged": RawRequest(
        "/plain",
        headers=(
            ("Authorization", "good"),
            ("X-Forwarded-Uri", "/admin"),
            ("X-Forwarded-Method", "PUT"),
            ("X-Forwarded-For", "1.2.3.4"),
            ("X-Forwarded-Host", "evil.test"),
        ),
    ),
    "trust": RawRequest(
        "/trust",
        method="DELETE",
        headers=(("Authorization", "redirect"), ("X-Forwarded-Uri", "/admin")),
    ),
    "filter": RawRequest("/filter", headers=(("Authorization", "good"), ("X-Secret", "s"))),
}


def observe(request: RawRequest, port: int) -> dict[str, Any]:
    answer = differential.fetch(port, request)
    backend = json.loads(answer.body) if answer.headers.get("x-router") == ["ready"] else None
    if backend is not None:
        backend = {k: v for k, v in backend.items() if k.startswith(("x-auth", "x-not", "cookie"))}
    return {
        "status": answer.status,
        "headers": answer.picked(COMPARED),
        "body": answer.body if backend is None else None,
        "backend": backend,
    }


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Auth, dict[str, int]]]:
    auth = Auth()
    backend = ThreadedServer(_backend)
    config = dynamic(auth.server.port, backend.port)
    static = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}}
    try:
        with differential.serving_both(
            tmp_path_factory.mktemp("forward-auth"), static, config
        ) as both:
            yield auth, both.ports()
    finally:
        backend.close()
        auth.server.close()


@pytest.mark.parametrize("case", CASES)
def test_same_as_traefik(servers: tuple[Auth, dict[str, int]], case: str) -> None:
    auth, ports = servers
    results = {}
    for side, port in ports.items():
        answer = observe(CASES[case].tagged("X-Test-Id", f"{side}-{case}"), port)
        seen = auth.seen.pop(f"{side}-{case}")
        sent = {k: v for k, v in seen["headers"].items() if k not in CLIENT_OWN | {"x-test-id"}}
        results[side] = {"answer": answer, "auth line": seen["line"], "auth headers": sent}
    ours, theirs = results["proxynow"], results["traefik"]
    assert ours["auth line"] == theirs["auth line"]
    differing = differential.mismatches(ours["auth headers"], theirs["auth headers"])
    assert differing == {}, "auth request headers: proxynow's, Traefik's"
    assert differential.mismatches(ours["answer"], theirs["answer"]) == {}
