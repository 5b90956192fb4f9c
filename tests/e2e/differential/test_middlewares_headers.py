"""Differential test of the `headers` middleware: one dynamic file served by real Traefik 3.7
and by `proxynow run`; the same raw requests to both; the status, the headers the middleware
is about and what the backend received must agree.

The backend echoes the request headers it got (as JSON) and answers with a few headers of
its own (Server, X-Frame-Options, Vary) that the middleware overrides, removes or extends.
Deliberate differences are not exercised here; docs/middlewares.md lists them.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import differential
from tests.support.differential import RawRequest
from tests.support.proc import ThreadedServer

# Response headers compared (lowercased); Date, Content-Length and the like are not the
# middleware's.
COMPARED = (
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "access-control-allow-headers",
    "access-control-allow-methods",
    "access-control-expose-headers",
    "access-control-max-age",
    "vary",
    "x-frame-options",
    "x-content-type-options",
    "x-xss-protection",
    "strict-transport-security",
    "content-security-policy",
    "content-security-policy-report-only",
    "referrer-policy",
    "permissions-policy",
    "x-resp",
    "server",
)
# Request headers compared as the backend got them.
FORWARDED = ("x-added", "x-removed", "x-kept", "origin")

MIDDLEWARES: dict[str, Any] = {
    "custom": {
        "headers": {
            "customRequestHeaders": {"X-Added": "added", "X-Removed": ""},
            "customResponseHeaders": {"X-Resp": "resp", "Server": ""},
        }
    },
    "cors": {
        "headers": {
            "accessControlAllowOriginList": ["https://a.test"],
            "accessControlAllowOriginListRegex": [r"^https://[a-z]+\.b\.test$"],
            "accessControlAllowMethods": ["GET", "PUT"],
            "accessControlAllowHeaders": ["X-One", "X-Two"],
            "accessControlAllowCredentials": True,
            "accessControlExposeHeaders": ["X-Exposed"],
            "accessControlMaxAge": 600,
            "addVaryHeader": True,
        }
    },
    "star": {"headers": {"accessControlAllowOriginList": ["*"]}},
    "secure": {
        "headers": {
            "frameDeny": True,
            "contentTypeNosniff": True,
            "browserXssFilter": True,
            "stsSeconds": 3600,
            "stsIncludeSubdomains": True,
            "stsPreload": True,
            "forceSTSHeader": True,
            "contentSecurityPolicy": "default-src 'self'",
            "contentSecurityPolicyReportOnly": "img-src 'none'",
            "referrerPolicy": "same-origin",
            "permissionsPolicy": "camera=()",
        }
    },
    "custom-values": {
        "headers": {
            "customFrameOptionsValue": "SAMEORIGIN",
            "customBrowserXSSValue": "0",
            "customResponseHeaders": {"X-Frame-Options": ""},
        }
    },
    "hosts": {"headers": {"allowedHosts": ["good.test"], "hostsProxyHeaders": ["X-Host"]}},
    "sslproxy": {"headers": {"stsSeconds": 60, "sslProxyHeaders": {"X-Ssl": "on"}}},
    # Chained on /nested (outer first): the outer one's response header wins, the inner
    # one's request header (written last) does.
    "outer": {
        "headers": {
            "customRequestHeaders": {"X-Added": "outer"},
            "customResponseHeaders": {"X-Resp": "outer"},
        }
    },
    "inner": {
        "headers": {
            "customRequestHeaders": {"X-Added": "inner"},
            "customResponseHeaders": {"X-Resp": "inner"},
        }
    },
}


def dynamic(backend: int) -> dict[str, Any]:
    routers = differential.one_router_each(MIDDLEWARES, "echo")
    routers["ready"] = {"rule": "Host(`ready.test`)", "service": "echo"}
    nested = {"rule": "PathPrefix(`/nested`)", "middlewares": ["outer", "inner"]}
    routers["nested"] = {**nested, "service": "echo", "entryPoints": ["web"]}
    service = differential.load_balancer(f"http://127.0.0.1:{backend}")
    return {"http": {"routers": routers, "middlewares": MIDDLEWARES, "services": {"echo": service}}}


def _echo(conn: socket.socket) -> None:
    """One request per connection (the clients send Connection: close): its headers back."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk
    lines = data.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")[1:]
    got: dict[str, list[str]] = {}
    for line in lines:
        name, _, value = line.partition(":")
        got.setdefault(name.strip().lower(), []).append(value.strip())
    body = json.dumps(got).encode()
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nX-Router: ready\r\nServer: backend\r\nX-Frame-Options: DENY-ME\r\n"
        b"Vary: Accept-Encoding\r\nContent-Type: application/json\r\nConnection: close\r\n"
        b"Content-Length: %d\r\n\r\n%b" % (len(body), body)
    )


REQUESTS = [
    RawRequest("/custom", headers=(("X-Removed", "gone"), ("X-Kept", "kept"))),
    RawRequest("/custom", method="HEAD"),
    RawRequest("/nested"),
    RawRequest("/cors", headers=(("Origin", "https://a.test"),)),
    RawRequest("/cors", headers=(("Origin", "https://x.b.test"),)),
    RawRequest("/cors", headers=(("Origin", "https://evil.test"),)),
    RawRequest("/cors"),
    RawRequest(
        "/cors",
        method="OPTIONS",
        headers=(("Origin", "https://a.test"), ("Access-Control-Request-Method", "PUT")),
    ),
    RawRequest(
        "/cors",
        method="OPTIONS",
        headers=(("Origin", "https://evil.test"), ("Access-Control-Request-Method", "PUT")),
    ),
    RawRequest("/cors", method="OPTIONS", headers=(("Origin", "https://a.test"),)),
    RawRequest("/star"),
    RawRequest(
        "/star",
        method="OPTIONS",
        headers=(("Origin", "https://z.test"), ("Access-Control-Request-Method", "GET")),
    ),
    RawRequest("/secure"),
    RawRequest("/custom-values"),
    RawRequest("/hosts", host="good.test"),
    RawRequest("/hosts", host="GOOD.test"),
    RawRequest("/hosts", host="bad.test"),
    RawRequest("/hosts", host="bad.test", headers=(("X-Host", "good.test"),)),
    RawRequest("/hosts", host="good.test", headers=(("X-Host", "bad.test"),)),
    RawRequest("/sslproxy"),
    RawRequest("/sslproxy", headers=(("X-Ssl", "on"),)),
]


def observe(request: RawRequest, port: int) -> dict[str, Any]:
    answer = differential.fetch(port, request)
    seen: dict[str, Any] = {}
    if answer.headers.get("x-router") == ["ready"] and request.method != "HEAD":
        got = json.loads(answer.body)
        seen = {name: got.get(name) for name in FORWARDED}
    else:
        seen = {"body": answer.body.decode("latin-1")}
    return {"status": answer.status, "headers": answer.picked(COMPARED), "backend": seen}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, int]]:
    backend = ThreadedServer(_echo)
    static = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}}
    try:
        with differential.serving_both(
            tmp_path_factory.mktemp("headers"), static, dynamic(backend.port)
        ) as b:
            yield b.ports()
    finally:
        backend.close()


@pytest.mark.parametrize(
    "request_", REQUESTS, ids=lambda r: f"{r.method} {r.target} {r.host} {r.headers}"
)
def test_same_answer_as_traefik(servers: dict[str, int], request_: RawRequest) -> None:
    expected = observe(request_, servers["traefik"])
    got = observe(request_, servers["proxynow"])
    assert got["status"] == expected["status"]
    assert differential.mismatches(got["headers"], expected["headers"]) == {}, (
        "proxynow's, Traefik's"
    )
    assert got["backend"] == expected["backend"]
