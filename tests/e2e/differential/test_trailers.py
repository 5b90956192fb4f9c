"""Trailers of a chunked HTTP/1.1 backend response against real Traefik: an HTTP/1.1 client
gets them in the last chunk, an HTTP/2 client (h2c) as the HEADERS frame that ends the
stream; announced (`Trailer`) or not, with a body or without, a long body too. The
status, body and trailer fields each client sees, through either proxy, agree."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import h2.config
import h2.connection
import h2.events
import pytest

from tests.support.http_server import HandlerServer, QuietHandler
from tests.support.proc import ProxynowProcess, proxynow_factory
from tests.support.traefik import TraefikProcess, traefik_factory

__all__ = ["proxynow_factory", "traefik_factory"]  # the fixtures, re-exported for pytest

# path: (announced Trailer header or "", body chunks, trailer section fields)
CASES: dict[str, tuple[str, list[bytes], list[tuple[str, str]]]] = {
    "/announced": ("X-Checksum", [b"hello ", b"world"], [("X-Checksum", "abc123")]),
    "/unannounced": ("", [b"data"], [("X-Late", "1"), ("X-Other", "two words")]),
    "/empty": ("X-Only", [], [("X-Only", "yes")]),
    "/long": ("X-Sum", [b"z" * 70_000] * 4, [("X-Sum", "280000")]),
    "/none": ("", [b"plain"], []),
}


class TrailerHandler(QuietHandler):
    def do_GET(self) -> None:
        announced, chunks, trailers = CASES[self.path]
        head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
        if announced:
            head += f"Trailer: {announced}\r\n"
        out = [(head + "\r\n").encode()]
        out += [b"%x\r\n%b\r\n" % (len(chunk), chunk) for chunk in chunks]
        out.append(
            b"0\r\n" + b"".join(b"%s: %s\r\n" % (n.encode(), v.encode()) for n, v in trailers)
        )
        out.append(b"\r\n")
        self.wfile.write(b"".join(out))
        self.wfile.flush()


@pytest.fixture
def backend() -> Iterator[HandlerServer]:
    served = HandlerServer(TrailerHandler)
    yield served
    served.close()


def files(backend: HandlerServer) -> tuple[dict[str, Any], dict[str, Any]]:
    static = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}}
    dynamic = {
        "http": {
            "routers": {"r": {"rule": "PathPrefix(`/`)", "service": "b"}},
            "services": {"b": {"loadBalancer": {"servers": [{"url": backend.url}]}}},
        }
    }
    return static, dynamic


def _fields(block: bytes) -> list[tuple[str, str]]:
    pairs = []
    for line in block.split(b"\r\n"):
        if line:
            name, _, value = line.partition(b":")
            pairs.append((name.decode().lower(), value.strip().decode()))
    return sorted(pairs)


def http1(port: int, path: str) -> tuple[Any, ...]:
    """Status, body and trailer fields, read off the wire (chunked, as both relay it). The
    `Trailer` header is not compared: Traefik announces the names again (Go's ReverseProxy),
    proxynow drops it as hop-by-hop (docs/http2.md, "Trailers")."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET %s HTTP/1.1\r\nHost: t.test\r\nTE: trailers\r\n\r\n" % path.encode())
        reader = sock.makefile("rb")
        status = int(reader.readline().split()[1])
        head = []
        while (line := reader.readline()) != b"\r\n":
            head.append(line)
        assert any(h.lower().startswith(b"transfer-encoding: chunked") for h in head), head
        body = b""
        while size := int(reader.readline().split(b";")[0], 16):
            body += reader.read(size)
            reader.readline()
        trailer = b""
        while (line := reader.readline()) != b"\r\n":
            trailer += line
        return status, body, _fields(trailer)


def http2(port: int, path: str) -> tuple[Any, ...]:
    """The same over h2c with prior knowledge: trailers are the stream's last HEADERS."""
    client = h2.connection.H2Connection(h2.config.H2Configuration(header_encoding="utf-8"))
    client.initiate_connection()
    request = [(":method", "GET"), (":scheme", "http"), (":authority", "t.test")]
    client.send_headers(1, [*request, (":path", path), ("te", "trailers")], end_stream=True)
    status, body, trailers = 0, b"", []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(client.data_to_send())
        ended = False
        while not ended:
            data = sock.recv(65536)
            assert data, "connection closed before the stream's end"
            for event in client.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    status = int(dict(event.headers)[":status"])
                elif isinstance(event, h2.events.DataReceived):
                    body += event.data
                    client.acknowledge_received_data(event.flow_controlled_length, 1)
                elif isinstance(event, h2.events.TrailersReceived):
                    trailers = sorted((n.lower(), v) for n, v in event.headers)
                elif isinstance(event, h2.events.StreamEnded):
                    ended = True
            sock.sendall(client.data_to_send())
    return status, body, trailers


def test_trailers_reach_both_clients_as_through_traefik(
    proxynow_factory: Callable[..., ProxynowProcess],
    traefik_factory: Callable[..., TraefikProcess],
    backend: HandlerServer,
) -> None:
    static, dynamic = files(backend)
    traefik = traefik_factory(static, dynamic).ports["web"]
    ours = proxynow_factory(static, dynamic, workers=1).ports["web"]
    differences = []
    for client in (http1, http2):
        for path in CASES:
            theirs, mine = client(traefik, path), client(ours, path)
            if mine != theirs:
                differences.append((client.__name__, path, mine[::2], theirs[::2]))
    assert differences == [], "\n".join(map(str, differences))
    # Traefik did relay them: the test tells something.
    assert http1(traefik, "/announced")[2] == [("x-checksum", "abc123")]
    assert http2(traefik, "/unannounced")[2] == [("x-late", "1"), ("x-other", "two words")]
