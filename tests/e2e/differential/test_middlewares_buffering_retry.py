"""buffering's retryExpression against real Traefik: a dial that failed (IsNetworkError())
and a status (ResponseCode()) send the request again, its buffered body too, while the
expression holds for Attempts(); the same answers and the same attempts counted by the
backend."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support import differential
from tests.support.flaky import Flaky
from tests.support.proc import ProxynowProcess, proxynow_factory
from tests.support.traefik import TraefikProcess, traefik_factory

__all__ = ["proxynow_factory", "traefik_factory"]  # the fixtures, re-exported for pytest


def refused_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def files(backend: Flaky) -> tuple[dict[str, Any], dict[str, Any]]:
    static = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}}
    expressions = {
        "net": "IsNetworkError() && Attempts() < 2",
        "code": "ResponseCode() == 503 && Attempts() < 3",
        "always": "ResponseCode() >= 500 && Attempts() <= 2",
    }
    middlewares = {
        name: {"buffering": {"retryExpression": text, "memRequestBodyBytes": 1000}}
        for name, text in expressions.items()
    }
    routers = {
        name: {"rule": f"Host(`{name}.test`)", "service": "s", "middlewares": [name]}
        for name in ("code", "always")
    }
    routers["net"] = {"rule": "Host(`net.test`)", "service": "half", "middlewares": ["net"]}
    live = {"url": backend.url}
    dynamic = {
        "http": {
            "middlewares": middlewares,
            "routers": routers,
            "services": {
                "s": {"loadBalancer": {"servers": [live]}},
                "half": {"loadBalancer": {"servers": [{"url": refused_url()}, live]}},
            },
        }
    }
    return static, dynamic


# (host, path, method, body)
REQUESTS: list[tuple[str, str, str, bytes | None]] = [
    ("code.test", "/get", "GET", None),
    ("code.test", "/post", "POST", b"p" * 5000),  # spilled past memory, sent again
    ("code.test", "/put", "PUT", b"small"),
    ("always.test", "/always", "GET", None),  # no body: sent once
    ("always.test", "/always-put", "PUT", b"x"),  # attempts 1 and 2 retried, the 3rd stands
    # Round robin over a refused and a live server (where it starts is Traefik's choice):
    # a POST that meets the refused one is sent again, to the live one, whose first 503
    # (no network error) stands; so every POST gets that 503 whatever the order, and of
    # two in a row one meets the refused server first.
    ("net.test", "/n1", "POST", b"body"),
    ("net.test", "/n2", "POST", b"body"),
    ("net.test", "/n3", "POST", b"body"),
]


def answer(port: int, prefix: str, host: str, path: str, method: str, body: bytes | None) -> Any:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, prefix + path, body=body, headers={"Host": host})
        response = connection.getresponse()
        data = response.read()
        # The proxy's own error pages differ in wording (not this middleware's): status only.
        return response.status, json.loads(data) if data.startswith(b"{") else None
    finally:
        connection.close()


@pytest.fixture
def backend() -> Iterator[Flaky]:
    served = Flaky()
    yield served
    served.close()


def test_the_same_retries_as_traefik(
    proxynow_factory: Callable[..., ProxynowProcess],
    traefik_factory: Callable[..., TraefikProcess],
    backend: Flaky,
) -> None:
    static, dynamic = files(backend)
    traefik = traefik_factory(static, dynamic).ports["web"]
    ours = proxynow_factory(static, dynamic, workers=1).ports["web"]
    differences = differential.unlike(
        REQUESTS,
        lambda request: answer(traefik, "/t", *request),
        lambda request: answer(ours, "/p", *request),
    )
    assert differences == ""
