"""`proxynow run` end to end with regexps that backtracking engines take hours over.

Issue 15: a router with ``PathRegexp(`^/p/(a+)+$`)`` cost a worker 0.94 s of CPU for a
26-byte path on Python's re, and a 40-byte one minutes, while that worker served nobody.
Here one worker holds such routers for the path, the host, a header and a query value,
ranked above every other router so that each request tries them all; the requests built
to make them backtrack must be answered within a few seconds (2^40 steps never are), and
a second client on another router beside them keeps getting prompt answers meanwhile.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.proc import HttpBackend, ProxynowProcess, proxynow_factory

__all__ = ["proxynow_factory"]  # the fixture, re-exported for pytest

Start = Callable[..., ProxynowProcess]

EVIL = "a" * 40 + "!"
ANSWER_TIMEOUT = 5.0  # seconds per request: generous for linear work, hopeless otherwise
PROMPT = 1.0  # the slowest answer the bystander may see

REDOS_ROUTERS = {
    "path": "PathRegexp(`^/p/(a+)+$`)",
    "host": "HostRegexp(`^(a+)+\\.test$`)",
    "header": "HeaderRegexp(`X-Evil`, `^(\\w+\\s?)+$`)",
    "query": "QueryRegexp(`q`, `^(a*)*b$`)",
    "nested": "PathRegexp(`^/n/(([a-z])+.)+[A-Z]([a-z])+$`)",
}

# (path, host, headers, backend expected): requests made to fail the regexps after trying
# every split, and a few that match them, so that the routers are seen to still route.
REQUESTS: list[tuple[str, str, dict[str, str], str]] = [
    ("/p/" + EVIL, "app.test", {}, "fallback"),
    ("/p/" + "a" * 40, "app.test", {}, "regexp"),
    ("/", "a" * 40 + "b.test", {}, "fallback"),
    ("/", "a" * 40 + ".test", {}, "regexp"),
    ("/", "app.test", {"X-Evil": EVIL}, "fallback"),
    ("/", "app.test", {"X-Evil": "word word"}, "regexp"),
    ("/?q=" + EVIL, "app.test", {}, "fallback"),
    ("/?q=" + "a" * 40 + "b", "app.test", {}, "regexp"),
    ("/n/" + "a" * 40, "app.test", {}, "fallback"),
]


@pytest.fixture
def backends() -> Iterator[tuple[HttpBackend, HttpBackend, HttpBackend]]:
    with (
        HttpBackend("regexp") as regexp,
        HttpBackend("fallback") as fallback,
        HttpBackend("bystander") as bystander,
    ):
        yield regexp, fallback, bystander


def config(
    regexp: HttpBackend, fallback: HttpBackend, bystander: HttpBackend
) -> tuple[dict[str, Any], dict[str, Any]]:
    static = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}}
    routers: dict[str, Any] = {
        f"redos-{name}": {"rule": rule, "service": "regexp", "priority": 1000}
        for name, rule in REDOS_ROUTERS.items()
    }
    routers["fallback"] = {"rule": "PathPrefix(`/`)", "service": "fallback", "priority": 1}
    routers["bystander"] = {"rule": "Host(`other.test`)", "service": "bystander", "priority": 2}
    services = {
        backend.name: {"loadBalancer": {"servers": [{"url": backend.url}]}}
        for backend in (regexp, fallback, bystander)
    }
    return static, {"http": {"routers": routers, "services": services}}


def get(port: int, path: str, host: str, headers: dict[str, str]) -> tuple[int, bytes, float]:
    """One request on a new connection: (status, body, seconds until the whole answer)."""
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=ANSWER_TIMEOUT)
    try:
        connection.request("GET", path, headers={"Host": host, "Connection": "close", **headers})
        response = connection.getresponse()
        return response.status, response.read(), time.monotonic() - started
    finally:
        connection.close()


def test_redos_patterns_cost_a_worker_nothing(
    proxynow_factory: Start, backends: tuple[HttpBackend, HttpBackend, HttpBackend]
) -> None:
    static, dynamic = config(*backends)
    # One worker: a regexp stuck in it would stall the bystander too.
    port = proxynow_factory(static, dynamic, workers=1).ports["web"]

    stop = threading.Event()
    bystander: list[tuple[int, bytes, float]] = []
    failures: list[OSError] = []

    def bystand() -> None:
        while not stop.is_set() and len(bystander) < 5000:
            try:
                bystander.append(get(port, "/", "other.test", {}))
            except OSError as err:  # a timeout: reported by the assertions below
                failures.append(err)
                return

    thread = threading.Thread(target=bystand, daemon=True)
    thread.start()
    try:
        for _ in range(3):
            for path, host, headers, expected in REQUESTS:
                status, body, elapsed = get(port, path, host, headers)
                assert (status, body.split(b" ")[0]) == (200, expected.encode()), (path, host)
                assert elapsed < ANSWER_TIMEOUT, (path, host, headers, elapsed)
    finally:
        stop.set()
        thread.join(ANSWER_TIMEOUT * 2)

    assert not failures, f"the bystander got no answer: {failures[0]!r}"
    assert bystander, "the bystander sent nothing"
    assert all((status, body) == (200, b"bystander /") for status, body, _ in bystander)
    slowest = max(elapsed for _, _, elapsed in bystander)
    assert slowest < PROMPT, f"a bystander request took {slowest:.2f}s"
