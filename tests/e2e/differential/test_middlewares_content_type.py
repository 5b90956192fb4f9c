"""contentType against real Traefik: the same file served by both, responses without a
Content-Type from a real backend; the Content-Type each client sees, with and without the
middleware (Traefik v3 sniffs only on routers that have it), agree."""

from __future__ import annotations

import http.client
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.proc import ProxynowProcess, proxynow_factory
from tests.support.traefik import TraefikProcess, traefik_factory
from tests.support.typeless import BODIES, TypelessBackend

__all__ = ["proxynow_factory", "traefik_factory"]  # the fixtures, re-exported for pytest


def files(backend: TypelessBackend) -> tuple[dict[str, Any], dict[str, Any]]:
    static = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}}
    dynamic = {
        "http": {
            "middlewares": {
                "sniff": {"contentType": {}},
                "off": {"contentType": {"autoDetect": False}},
            },
            "routers": {
                "s": {"rule": "Host(`s.test`)", "service": "b", "middlewares": ["sniff"]},
                "o": {"rule": "Host(`o.test`)", "service": "b", "middlewares": ["off"]},
                "p": {"rule": "Host(`p.test`)", "service": "b"},
            },
            "services": {"b": {"loadBalancer": {"servers": [{"url": backend.url}]}}},
        }
    }
    return static, dynamic


def answer(port: int, host: str, path: str, method: str = "GET") -> tuple[Any, ...]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, headers={"Host": host})
        response = connection.getresponse()
        body = response.read()
        return response.status, response.getheader("Content-Type"), body
    finally:
        connection.close()


@pytest.fixture
def backend() -> Iterator[TypelessBackend]:
    served = TypelessBackend()
    yield served
    served.close()


def test_the_same_content_types_as_traefik(
    proxynow_factory: Callable[..., ProxynowProcess],
    traefik_factory: Callable[..., TraefikProcess],
    backend: TypelessBackend,
) -> None:
    static, dynamic = files(backend)
    traefik = traefik_factory(static, dynamic).ports["web"]
    ours = proxynow_factory(static, dynamic, workers=1).ports["web"]
    requests = [(host, path, "GET") for host in ("s.test", "o.test", "p.test") for path in BODIES]
    requests += [("s.test", "/html", "HEAD")]
    differences = []
    seen = set()
    for host, path, method in requests:
        theirs = answer(traefik, host, path, method)
        mine = answer(ours, host, path, method)
        seen.add(theirs[1])
        if mine != theirs:
            differences.append(((host, path, method), mine[:2], theirs[:2]))
    assert differences == [], "\n".join(map(str, differences))
    assert "text/html; charset=utf-8" in seen  # Traefik did sniff: the test tells something
