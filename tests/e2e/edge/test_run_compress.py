"""`compress` end to end: gzip, br and zstd chosen from Accept-Encoding (q-values, then
the configured order), streamed, re-framed; skipped for small, already-encoded, excluded
and HEAD responses; `Vary: Accept-Encoding` when the client accepts one of them."""

from __future__ import annotations

import gzip
import http.client
import http.server
from collections.abc import Callable, Iterator

import brotli
import pytest
import zstandard

from tests.support.http_server import HandlerServer, QuietHandler
from tests.support.proc import ProxynowProcess, proxynow_factory

__all__ = ["proxynow_factory"]  # the fixture, re-exported for pytest

Start = Callable[..., ProxynowProcess]

TEXT = b"".join(b"line %05d of a compressible text body\n" % i for i in range(500))  # ~19 KB


class Backend(HandlerServer):
    """/text: TEXT with a length; /small: 100 bytes; /encoded: already gzip; /image: a
    PNG type; /stream: TEXT in chunks without a length."""

    def __init__(self) -> None:
        class Handler(QuietHandler):
            def do_GET(self) -> None:
                self.answer(body=True)

            def do_HEAD(self) -> None:
                self.answer(body=False)

            def answer(self, body: bool) -> None:
                path = self.path
                payload, headers = TEXT, {"Content-Type": "text/plain"}
                if path == "/small":
                    payload = TEXT[:100]
                elif path == "/encoded":
                    payload, headers = gzip.compress(TEXT), {"Content-Encoding": "gzip"}
                elif path == "/image":
                    headers = {"Content-Type": "image/png"}
                self.send_response(200)
                for name, value in headers.items():
                    self.send_header(name, value)
                if path == "/stream":
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for start in range(0, len(TEXT), 4096):
                        piece = TEXT[start : start + 4096]
                        self.wfile.write(b"%x\r\n%b\r\n" % (len(piece), piece))
                    self.wfile.write(b"0\r\n\r\n")
                    return
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if body:
                    self.wfile.write(payload)

        super().__init__(Handler)


@pytest.fixture
def port(proxynow_factory: Start) -> Iterator[int]:
    backend = Backend()
    static = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}}
    dynamic = {
        "http": {
            "middlewares": {
                "squeeze": {"compress": {"excludedContentTypes": ["image/png"]}},
                "br-first": {"compress": {"encodings": ["br", "gzip"], "defaultEncoding": "zstd"}},
            },
            "routers": {
                "c": {"rule": "Host(`c.test`)", "service": "s", "middlewares": ["squeeze"]},
                "b": {"rule": "Host(`b.test`)", "service": "s", "middlewares": ["br-first"]},
            },
            "services": {"s": {"loadBalancer": {"servers": [{"url": backend.url}]}}},
        }
    }
    yield proxynow_factory(static, dynamic, workers=1).ports["web"]
    backend.server.shutdown()
    backend.server.server_close()


def fetch(
    port: int, path: str, accept: str | None, host: str = "c.test", method: str = "GET"
) -> tuple[http.client.HTTPResponse, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    # No Accept-Encoding of http.client's own (it would send `identity`).
    connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    connection.putheader("Host", host)
    if accept is not None:
        connection.putheader("Accept-Encoding", accept)
    connection.endheaders()
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response, body


DECODE = {
    "gzip": gzip.decompress,
    "br": brotli.decompress,
    "zstd": lambda data: zstandard.ZstdDecompressor().decompressobj().decompress(data),
}


@pytest.mark.parametrize(
    ("accept", "encoding"),
    [
        ("gzip", "gzip"),
        ("br", "br"),
        ("zstd", "zstd"),
        ("gzip;q=0.5, br;q=0.9", "br"),
        ("zstd, gzip, br", "gzip"),
        ("*", "gzip"),
    ],
)
def test_the_body_is_compressed_as_the_client_asks(port: int, accept: str, encoding: str) -> None:
    for path in ("/text", "/stream"):
        response, body = fetch(port, path, accept)
        assert response.status == 200
        assert response.getheader("Content-Encoding") == encoding, (path, accept)
        assert response.getheader("Vary") == "Accept-Encoding"
        assert response.getheader("Content-Length") is None
        assert len(body) < len(TEXT) // 3
        assert DECODE[encoding](body) == TEXT


@pytest.mark.parametrize(
    ("path", "accept", "method"),
    [
        ("/small", "gzip", "GET"),
        ("/encoded", "br", "GET"),
        ("/image", "gzip", "GET"),
        ("/text", None, "GET"),
        ("/text", "identity", "GET"),
        ("/text", "gzip;q=0", "GET"),
        ("/text", "gzip", "HEAD"),
    ],
)
def test_responses_left_as_they_are(port: int, path: str, accept: str | None, method: str) -> None:
    response, body = fetch(port, path, accept, method=method)
    assert response.status == 200
    # Vary when the client accepts an encoding, compressed or not (Traefik's answers).
    accepted = accept not in (None, "identity", "gzip;q=0") and method == "GET"
    assert response.getheader("Vary") == ("Accept-Encoding" if accepted else None)
    if path == "/encoded":
        assert response.getheader("Content-Encoding") == "gzip"
        assert gzip.decompress(body) == TEXT  # the backend's own encoding, untouched
    else:
        assert response.getheader("Content-Encoding") is None
        assert body == (b"" if method == "HEAD" else TEXT[:100] if path == "/small" else TEXT)


def test_the_configured_order_and_default_encoding(port: int) -> None:
    response, body = fetch(port, "/text", "gzip, br", host="b.test")
    assert response.getheader("Content-Encoding") == "br" and brotli.decompress(body) == TEXT
    response, body = fetch(port, "/text", None, host="b.test")  # no header: defaultEncoding
    assert response.getheader("Content-Encoding") == "zstd" and DECODE["zstd"](body) == TEXT
