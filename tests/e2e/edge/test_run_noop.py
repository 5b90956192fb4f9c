"""`noop@internal` end to end: Traefik's idiom for a router whose middlewares do all the
work (a redirect) serves, and a request that gets through them is answered 418 with no
body, as Traefik answers it (measured: tests/e2e/differential/test_middlewares_service.py)."""

from __future__ import annotations

import http.client
from collections.abc import Callable

from tests.support.proc import ProxynowProcess, proxynow_factory

__all__ = ["proxynow_factory"]  # the fixture, re-exported for pytest

Start = Callable[..., ProxynowProcess]


def get(port: int, host: str) -> tuple[int, str | None, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/p?q=1", headers={"Host": host})
        response = connection.getresponse()
        return response.status, response.getheader("Location"), response.read()
    finally:
        connection.close()


def test_routers_to_noop_internal_serve(proxynow_factory: Start) -> None:
    static = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}}
    dynamic = {
        "http": {
            "middlewares": {"https": {"redirectScheme": {"scheme": "https"}}},
            "routers": {
                "redirect": {
                    "rule": "Host(`r.test`)",
                    "service": "noop@internal",
                    "middlewares": ["https"],
                },
                "empty": {"rule": "Host(`e.test`)", "service": "noop@internal"},
            },
        }
    }
    port = proxynow_factory(static, dynamic, workers=1).ports["web"]
    assert get(port, "r.test") == (302, "https://r.test/p?q=1", b"Found")
    assert get(port, "e.test") == (418, None, b"")
    assert get(port, "other.test")[0] == 404
