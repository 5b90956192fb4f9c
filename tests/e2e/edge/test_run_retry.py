"""`retry` end to end: a request whose server refuses the connection is sent again, to
the next server of the service, after the backoff; a POST only with
retryNonIdempotentMethod; v3.7's status ranges send a request again, its body too when
kept within maxRequestBodyBytes, until the timeout window is over; a huge upload is
sent once, never kept, while others are served."""

from __future__ import annotations

import hashlib
import http.client
import http.server
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.flaky import Flaky
from tests.support.proc import HttpBackend, ProxynowProcess, proxynow_factory

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


@pytest.fixture
def flaky() -> Iterator[Flaky]:
    served = Flaky()
    yield served
    served.close()


def status_config(flaky: Flaky, **retry: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    static = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}}
    options = {"attempts": 3, "status": ["500-599"], "initialInterval": "10ms", **retry}
    dynamic = {
        "http": {
            "middlewares": {"again": {"retry": options}},
            "routers": {
                "r": {"rule": "Host(`r.test`)", "service": "s", "middlewares": ["again"]},
                "p": {"rule": "Host(`p.test`)", "service": "s"},
            },
            "services": {"s": {"loadBalancer": {"servers": [{"url": flaky.url}]}}},
        }
    }
    return static, dynamic


def send(
    port: int, host: str, path: str, method: str = "GET", body: bytes | None = None
) -> tuple[int, dict[str, Any]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers={"Host": host})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:16]


def test_a_status_in_the_ranges_is_retried_with_the_body_kept(
    proxynow_factory: Start, flaky: Flaky
) -> None:
    port = proxynow_factory(*status_config(flaky, retryNonIdempotentMethod=True), workers=1)
    web = port.ports["web"]
    assert send(web, "r.test", "/a") == (200, {"n": 2, "body": digest(b"")})
    assert send(web, "p.test", "/b")[0] == 503  # no middleware: the answer stands
    assert send(web, "r.test", "/always") == (500, {"n": 3, "body": digest(b"")})  # attempts
    body = bytes(range(256)) * 4096  # 1 MiB, within the 2 MiB kept by default
    assert send(web, "r.test", "/post", "POST", body) == (200, {"n": 2, "body": digest(body)})
    assert send(web, "r.test", "/put", "PUT", b"") == (200, {"n": 2, "body": digest(b"")})


def test_a_body_over_max_request_body_bytes_is_sent_once(
    proxynow_factory: Start, flaky: Flaky
) -> None:
    config = status_config(flaky, maxRequestBodyBytes=1000)
    web = proxynow_factory(*config, workers=1).ports["web"]
    assert send(web, "r.test", "/small", "PUT", b"x" * 1000) == (
        200,
        {"n": 2, "body": digest(b"x" * 1000)},
    )
    assert send(web, "r.test", "/big", "PUT", b"x" * 1001) == (
        503,
        {"n": 1, "body": digest(b"x" * 1001)},
    )
    assert send(web, "r.test", "/post", "POST", b"x")[0] == 503  # not idempotent


def test_an_answer_after_the_timeout_stands(proxynow_factory: Start) -> None:
    slow = Flaky(failures=5)
    try:
        config = status_config(slow, timeout="250ms", initialInterval="100ms", attempts=5)
        web = proxynow_factory(*config, workers=1).ports["web"]
        started = time.monotonic()
        status, answer = send(web, "r.test", "/a")
        # Attempts at 0, 100 and 300 ms (the backoff doubles to 200 ms): the third's 503
        # comes after the 250 ms window, so it stands.
        assert (status, answer["n"]) == (503, 3), answer
        assert time.monotonic() - started >= 0.3
        assert time.monotonic() - started < 1.0
    finally:
        slow.close()


def test_a_huge_upload_is_not_kept_and_blocks_nobody(proxynow_factory: Start, flaky: Flaky) -> None:
    web = proxynow_factory(*status_config(flaky), workers=1).ports["web"]
    size = 256 << 20
    result: list[Any] = []

    def upload() -> None:
        with socket.create_connection(("127.0.0.1", web)) as conn:
            conn.sendall(b"PUT /huge HTTP/1.1\r\nHost: r.test\r\nContent-Length: %d\r\n\r\n" % size)
            piece = b"z" * (1 << 20)
            for _ in range(size // len(piece)):
                conn.sendall(piece)
            result.append(conn.recv(65536))

    uploader = threading.Thread(target=upload)
    uploader.start()
    # While 256 MiB stream through (never kept: over the 2 MiB limit), others are served.
    served = 0
    while uploader.is_alive() and not flaky.counts.get("/huge"):
        assert send(web, "r.test", f"/other{served}")[0] == 200
        served += 1
    uploader.join(120)
    assert served > 0
    assert result and result[0].startswith(b"HTTP/1.1 503"), result
    assert flaky.counts["/huge"] == 1


def test_a_slow_body_is_kept_and_sent_again_while_others_are_served(
    proxynow_factory: Start, flaky: Flaky
) -> None:
    web = proxynow_factory(*status_config(flaky), workers=1).ports["web"]
    with socket.create_connection(("127.0.0.1", web), timeout=10) as conn:
        conn.sendall(b"PUT /slow HTTP/1.1\r\nHost: r.test\r\nContent-Length: 10\r\n\r\nhello")
        for index in range(3):  # the half-sent body holds nobody up
            assert send(web, "r.test", f"/meanwhile{index}")[0] == 200
        conn.sendall(b"world")
        reply = b""
        while b"}" not in reply:
            piece = conn.recv(65536)
            assert piece, reply
            reply += piece
    assert reply.startswith(b"HTTP/1.1 200"), reply
    assert json.loads(reply.partition(b"\r\n\r\n")[2]) == {"n": 2, "body": digest(b"helloworld")}
