"""`retry` end to end: a request whose server refuses the connection is sent again, to
the next server of the service, after the backoff; a POST only with
retryNonIdempotentMethod; options not applied yet disable the middleware."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.proc import HttpBackend, ProxynowProcess, http_get, proxynow_factory

__all__ = ["proxynow_factory"]  # the fixture, re-exported for pytest

Start = Callable[..., ProxynowProcess]


@pytest.fixture
def backend() -> Iterator[HttpBackend]:
    with HttpBackend("alive") as served:
        yield served


def refused_url() -> str:
    """A loopback port nobody listens on (bound, then closed: refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def request(port: int, host: str, method: str = "GET") -> tuple[int, float]:
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(
            method, "/x", body=b"data" if method == "POST" else None, headers={"Host": host}
        )
        response = connection.getresponse()
        response.read()
        return response.status, time.monotonic() - started
    finally:
        connection.close()


def config(backend: HttpBackend, retry: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    static = {
        "entryPoints": {"web": {"address": "127.0.0.1:0"}, "traefik": {"address": "127.0.0.1:0"}},
        "api": {"insecure": True},
    }
    servers = [{"url": refused_url()}, {"url": backend.url}]
    dynamic = {
        "http": {
            "middlewares": {
                "again": {"retry": retry},
                "again-any": {"retry": {**retry, "retryNonIdempotentMethod": True}},
            },
            "routers": {
                "retried": {"rule": "Host(`r.test`)", "service": "s", "middlewares": ["again"]},
                "any": {"rule": "Host(`any.test`)", "service": "s", "middlewares": ["again-any"]},
                "plain": {"rule": "Host(`p.test`)", "service": "s"},
            },
            "services": {"s": {"loadBalancer": {"servers": servers}}},
        }
    }
    return static, dynamic


def test_a_refused_connection_is_retried_on_the_next_server(
    proxynow_factory: Start, backend: HttpBackend
) -> None:
    retry = {"attempts": 2, "initialInterval": "200ms"}
    port = proxynow_factory(*config(backend, retry), workers=1).ports["web"]
    plain = [request(port, "p.test")[0] for _ in range(4)]
    assert sorted(plain) == [200, 200, 502, 502]  # round robin over a dead and a live server
    answers = [request(port, "r.test") for _ in range(6)]
    assert [status for status, _ in answers] == [200] * 6
    # Each met the dead server first (the retry's pick moves the round robin on, so the
    # next request meets it again) and waited the backoff before the live one answered.
    assert all(elapsed >= 0.15 for _, elapsed in answers), answers
    # The live backend answers a POST 501 (it serves GETs only): 501 means it got there.
    posts = sorted(request(port, "r.test", "POST")[0] for _ in range(2))
    assert posts == [501, 502]  # not idempotent: not retried
    assert [request(port, "any.test", "POST")[0] for _ in range(2)] == [501, 501]


def test_options_not_applied_yet_disable_the_middleware(
    proxynow_factory: Start, backend: HttpBackend
) -> None:
    proxy = proxynow_factory(*config(backend, {"attempts": 2, "status": ["500-599"]}), workers=1)
    status, body = http_get(proxy.ports["traefik"], "/api/http/middlewares/again@file", "127.0.0.1")
    middleware = json.loads(body)
    assert status == 200 and middleware["status"] == "disabled", middleware
    assert any("status are not implemented yet" in e for e in middleware["error"]), middleware
