"""retry's v3.7 options against real Traefik: status ranges, a body kept within
maxRequestBodyBytes and sent again, a larger one sent once, the timeout window; the same
file served by both, the same requests, the same answers and the same attempts counted
by the backend."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support import differential
from tests.support.flaky import Flaky
from tests.support.proc import ProxynowProcess, proxynow_factory
from tests.support.traefik import TraefikProcess, traefik_factory

__all__ = ["proxynow_factory", "traefik_factory"]  # the fixtures, re-exported for pytest


def files(backend: Flaky) -> tuple[dict[str, Any], dict[str, Any]]:
    static = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}}
    base = {"attempts": 3, "status": ["500-599"], "initialInterval": "10ms"}
    dynamic = {
        "http": {
            "middlewares": {
                "st": {"retry": {**base, "maxRequestBodyBytes": 64}},
                "any": {"retry": {**base, "retryNonIdempotentMethod": True}},
                "only": {"retry": {**base, "status": ["502"], "disableRetryOnNetworkError": True}},
                "window": {"retry": {**base, "timeout": "5ms", "initialInterval": "50ms"}},
            },
            "routers": {
                name: {"rule": f"Host(`{name}.test`)", "service": "b", "middlewares": [name]}
                for name in ("st", "any", "only", "window")
            },
            "services": {"b": {"loadBalancer": {"servers": [{"url": backend.url}]}}},
        }
    }
    return static, dynamic


# (host, path, method, body)
REQUESTS: list[tuple[str, str, str, bytes | None]] = [
    ("st.test", "/get", "GET", None),
    ("st.test", "/always", "GET", None),
    ("st.test", "/put-small", "PUT", b"x" * 64),
    ("st.test", "/put-big", "PUT", b"x" * 65),
    ("st.test", "/post", "POST", b"abc"),
    ("any.test", "/post", "POST", b"abc"),
    ("only.test", "/get", "GET", None),  # 503 is not in its ranges
    ("window.test", "/get", "GET", None),  # the next attempt would start after 5 ms
]


def answer(port: int, prefix: str, host: str, path: str, method: str, body: bytes | None) -> Any:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, prefix + path, body=body, headers={"Host": host})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.fixture
def backend() -> Iterator[Flaky]:
    served = Flaky()
    yield served
    served.close()


def test_the_same_attempts_as_traefik(
    proxynow_factory: Callable[..., ProxynowProcess],
    traefik_factory: Callable[..., TraefikProcess],
    backend: Flaky,
) -> None:
    static, dynamic = files(backend)
    traefik = traefik_factory(static, dynamic).ports["web"]
    ours = proxynow_factory(static, dynamic, workers=1).ports["web"]
    # Each proxy has paths of its own: the backend counts attempts per path.
    differences = differential.unlike(
        REQUESTS,
        lambda request: answer(traefik, f"/t-{request[0]}", *request),
        lambda request: answer(ours, f"/p-{request[0]}", *request),
    )
    assert differences == ""
