"""Differential test of the `errors` middleware: one dynamic file served by real Traefik 3.7
and by `proxynow run`; the same requests to both; the client's status, body and
Content-Type, and the request the error-page service received (its target and Host)
must agree. The backend answers `/<code>` with that status and a body of its own; the
page service answers with the target it was asked for."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.differential.traefik_harness import ENTRYPOINTS, RawRequest, start_traefik
from tests.support.proc import ThreadedServer, start_proxynow


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
    routers: dict[str, Any] = {
        name: {
            "rule": f"PathPrefix(`/{name}`) || Host(`{name}.test`)",
            "service": "app",
            "middlewares": [name],
            "entryPoints": ["web"],
        }
        for name in middlewares
    }
    routers["ready"] = {"rule": "Host(`ready.test`)", "service": "app"}
    services = {
        "app": {"loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{backend}"}]}},
        "pages": {"loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{pages}"}]}},
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
    with socket.create_connection(("127.0.0.1", port), timeout=5.0) as sock:
        sock.sendall(request.encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return {
        "status": int(lines[0].split(" ")[1]),
        "body": body,
        "type": headers.get("content-type"),
    }


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Pages, int, int]]:
    pages = Pages()
    backend = ThreadedServer(_backend)
    directory: Path = tmp_path_factory.mktemp("errors")
    config = dynamic(backend.port, pages.server.port)
    dynamic_file = directory / "dynamic.yml"
    dynamic_file.write_text(yaml.safe_dump(config))
    static = directory / "traefik.yml"
    static.write_text(
        yaml.safe_dump(
            {
                "entryPoints": ENTRYPOINTS,
                "providers": {"file": {"filename": str(dynamic_file), "watch": False}},
                "log": {"level": "ERROR"},
            }
        )
    )
    traefik, traefik_port, _ = start_traefik(static)
    proxy = start_proxynow(directory / "proxynow", {"entryPoints": ENTRYPOINTS}, config, workers=1)
    try:
        yield pages, traefik_port, proxy.ports["web"]
    finally:
        proxy.stop()
        traefik.stop()
        backend.close()
        pages.server.close()


@pytest.mark.parametrize("case", CASES)
def test_same_as_traefik(servers: tuple[Pages, int, int], case: str) -> None:
    pages, traefik_port, proxynow_port = servers
    request = CASES[case]
    results = {}
    for side, port in (("traefik", traefik_port), ("proxynow", proxynow_port)):
        tag = f"{side}-{case}"
        tagged = RawRequest(request.target, request.host, request.method, (("X-Test-Id", tag),))
        results[side] = {"answer": observe(tagged, port), "page request": pages.seen.pop(tag, None)}
    assert results["proxynow"] == results["traefik"]
