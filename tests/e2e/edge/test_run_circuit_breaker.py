"""`circuitBreaker` end to end: a failing service trips it, and then its router answers
503 without reaching the service; after fallbackDuration and recoveryDuration it serves
again. An expression that does not parse disables the middleware and its routers."""

from __future__ import annotations

import http.client
import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.proc import ProxynowProcess, http_get, poll, proxynow_factory

__all__ = ["proxynow_factory"]  # the fixture, re-exported for pytest

Start = Callable[..., ProxynowProcess]


class Flaky:
    """A backend on 127.0.0.1 answering 500 while `failing`, else 200; counts requests."""

    def __init__(self) -> None:
        self.failing = True
        self.requests = 0
        flaky = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                flaky.requests += 1
                status = 500 if flaky.failing else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def flaky() -> Iterator[Flaky]:
    backend = Flaky()
    yield backend
    backend.close()


def get(port: int) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/", headers={"Host": "cb.test"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def config(flaky: Flaky, expression: str) -> tuple[dict[str, Any], dict[str, Any]]:
    static = {
        "entryPoints": {"web": {"address": "127.0.0.1:0"}, "traefik": {"address": "127.0.0.1:0"}},
        "api": {"insecure": True},
    }
    dynamic = {
        "http": {
            "middlewares": {
                "cb": {
                    "circuitBreaker": {
                        "expression": expression,
                        "checkPeriod": "10ms",
                        "fallbackDuration": "1s",
                        "recoveryDuration": "1s",
                    }
                }
            },
            "routers": {"cb": {"rule": "Host(`cb.test`)", "service": "s", "middlewares": ["cb"]}},
            "services": {"s": {"loadBalancer": {"servers": [{"url": flaky.url}]}}},
        }
    }
    return static, dynamic


def test_a_failing_service_trips_the_breaker_then_recovers(
    proxynow_factory: Start, flaky: Flaky
) -> None:
    proxy = proxynow_factory(*config(flaky, "ResponseCodeRatio(500, 600, 0, 600) > 0.5"), workers=1)
    port = proxy.ports["web"]
    answers = []
    for _ in range(30):
        answers.append(get(port))
        time.sleep(0.02)  # spread over the check period, as real traffic is
    assert answers[0] == (500, b"ok")
    assert (503, b"Service Unavailable") in answers
    reached = flaky.requests
    assert reached < 30  # once tripped, the service gets nothing
    assert all(status == 503 for status, _ in answers[reached:])

    flaky.failing = False
    poll(lambda: get(port) == (200, b"ok"), timeout=10, what="the breaker letting requests through")
    poll(lambda: all(get(port)[0] == 200 for _ in range(20)), timeout=10, what="standby again")


def test_an_expression_that_does_not_parse_disables_its_routers(
    proxynow_factory: Start, flaky: Flaky
) -> None:
    proxy = proxynow_factory(*config(flaky, "NetworkErrorRatio() > 1"), workers=1)
    status, body = http_get(proxy.ports["traefik"], "/api/http/middlewares/cb@file", "127.0.0.1")
    middleware = json.loads(body)
    assert status == 200 and middleware["status"] == "disabled"
    assert any("expected float" in error for error in middleware["error"]), middleware
    assert get(proxy.ports["web"])[0] == 404
    assert flaky.requests == 0
