"""`entryPoints.<name>.http.middlewares` end to end: prepended to every router on that
entrypoint (an unqualified name is the router's provider's), not to the same routers on
another entrypoint; a missing one disables the routers it would have been put on, with an
error in the API, as in Traefik."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.proc import HttpBackend, ProxynowProcess, http_get, proxynow_factory

__all__ = ["proxynow_factory"]  # the fixture, re-exported for pytest

Start = Callable[..., ProxynowProcess]


@pytest.fixture
def backend() -> Iterator[HttpBackend]:
    with HttpBackend("app") as served:
        yield served


def head(port: int, path: str, host: str) -> tuple[int, str | None]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        connection.request("GET", path, headers={"Host": host, "Connection": "close"})
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader("Location")
    finally:
        connection.close()


def api(port: int, path: str) -> Any:
    status, body = http_get(port, path, host="127.0.0.1")
    assert status == 200, (path, status, body)
    return json.loads(body)


def test_entrypoint_middlewares_come_first_on_their_entrypoint_only(
    proxynow_factory: Start, backend: HttpBackend
) -> None:
    static = {
        "entryPoints": {
            "web": {
                "address": "127.0.0.1:0",
                "http": {"middlewares": ["to-https"]},  # unqualified: the router's provider
            },
            "plain": {"address": "127.0.0.1:0"},
        }
    }
    dynamic = {
        "http": {
            "middlewares": {"to-https": {"redirectScheme": {"scheme": "https", "port": "8443"}}},
            "routers": {"app": {"rule": "Host(`app.test`)", "service": "app"}},
            "services": {"app": {"loadBalancer": {"servers": [{"url": backend.url}]}}},
        }
    }
    proxy = proxynow_factory(static, dynamic, workers=1)
    assert head(proxy.ports["web"], "/x", "app.test") == (302, "https://app.test:8443/x")
    assert http_get(proxy.ports["plain"], "/x") == (200, b"app /x")


def test_a_missing_entrypoint_middleware_disables_its_routers(
    proxynow_factory: Start, backend: HttpBackend
) -> None:
    static = {
        "entryPoints": {
            "web": {"address": "127.0.0.1:0", "http": {"middlewares": ["auth@file"]}},
            "traefik": {"address": "127.0.0.1:0"},
        },
        "api": {"insecure": True},
    }
    dynamic = {
        "http": {
            "routers": {"app": {"rule": "Host(`app.test`)", "service": "app"}},
            "services": {"app": {"loadBalancer": {"servers": [{"url": backend.url}]}}},
        }
    }
    proxy = proxynow_factory(static, dynamic, workers=1)
    router = api(proxy.ports["traefik"], "/api/http/routers/app@file")
    assert router["status"] == "disabled"
    assert any("auth@file" in error for error in router["error"]), router
    assert http_get(proxy.ports["web"], "/x")[0] == 404
