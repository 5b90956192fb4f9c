"""Differential test of the `errors` middleware: one dynamic file served by real Traefik 3.7
and by `proxynow run`; the same requests to both; the client's status, body and
Content-Type, and the request the error-page service received (its target and Host)
must agree. The backend answers `/<code>` with that status and a body of its own; the
page service answers with the target it was asked for."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import differential
from tests.support.differential import RawRequest
from tests.support.proc import ThreadedServer


def _heads(conn: socket.socket) -> Iterator[tuple[str, dict[str, str]]]:
    reader = conn.makefile("rb")
    while line := reader.readline():
        headers: dict[str, str] = {}
        while (field := reader.readline()) not in (b"\r\n", b""):
            name, _, value = field.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        yield line.decode("latin-1").split(" ")[1], headers


def _backend(conn: socket.socket) -> None:
    for target, _ in _heads(conn):
        code = int(target.strip("/").partition("?")[0] or 200)
        body = b"backend body"
        conn.sendall(
            b"HTTP/1.1 %d X\r\nX-Router: ready\r\nContent-Type: text/plain\r\n"
            b"Content-Length: %d\r\n\r\n%b" % (code, len(body), body)
        )


class Pages:
    def __init__(self) -> None:
        self.seen: dict[str, dict[str, str]] = {}
        self.lock = threading.Lock()
        self.server = ThreadedServer(self.handle)

    def handle(self, conn: socket.socket) -> None:
        for target, headers in _heads(conn):
            with self.lock:
                self.seen[headers.get("x-test-id", "?")] = {
                    "target": target,
                    "host": headers.get("host", ""),
                }
            body = f"page {target}".encode()
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%b"
                % (len(body), body)
            )


def dynamic(backend: int, pages: int) -> dict[str, Any]:
    middlewares = {
        "plain": {
            "errors": {"status": ["500-599", "404"], "service": "pages", "query": "/{status}.html"}
        },
        "rewrite": {
            "errors": {
                "status": ["500-503"],
                "statusRewrites": {"500-502": 503},
                "service": "pages",
                "query": "/e?s={status}&o={originalStatus}",
            }
        },
    }
    routers = differential.one_router_each(
        middlewares, "app", "PathPrefix(`/{name}`) || Host(`{name}.test`)"
    )
    routers["ready"] = {"rule": "Host(`ready.test`)", "service": "app"}
    services = {
        "app": differential.load_balancer(f"http://127.0.0.1:{backend}"),
        "pages": differential.load_balancer(f"http://127.0.0.1:{pages}"),
    }
    return {"http": {"routers": routers, "middlewares": middlewares, "services": services}}


CASES = {
    "503": RawRequest("/503", host="plain.test"),
    "404": RawRequest("/404", host="plain.test"),
    "200": RawRequest("/200", host="plain.test"),
    "418": RawRequest("/418", host="plain.test"),
    "head": RawRequest("/500", host="plain.test", method="HEAD"),
    "rewrite 500": RawRequest("/500", host="rewrite.test"),
    "rewrite 503": RawRequest("/503", host="rewrite.test"),
    "rewrite 504": RawRequest("/504", host="rewrite.test"),
}


def observe(request: RawRequest, port: int) -> dict[str, Any]:
    answer = differential.fetch(port, request)
    return {"status": answer.status, "body": answer.body, "type": answer.first("content-type")}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Pages, dict[str, int]]]:
    pages = Pages()
    backend = ThreadedServer(_backend)
    config = dynamic(backend.port, pages.server.port)
    static = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}}
    try:
        with differential.serving_both(tmp_path_factory.mktemp("errors"), static, config) as both:
            yield pages, both.ports()
    finally:
        backend.close()
        pages.server.close()


@pytest.mark.parametrize("case", CASES)
def test_same_as_traefik(servers: tuple[Pages, dict[str, int]], case: str) -> None:
    pages, ports = servers
    results = {}
    for side, port in ports.items():
        tag = f"{side}-{case}"
        answer = observe(CASES[case].tagged("X-Test-Id", tag), port)
        results[side] = {"answer": answer, "page request": pages.seen.pop(tag, None)}
    assert differential.mismatches(results["proxynow"], results["traefik"]) == {}
