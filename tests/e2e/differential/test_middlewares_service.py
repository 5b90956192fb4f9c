"""compress, retry, mirroring and noop@internal against real Traefik: the same files
served by both, the same requests, the same answers (status, the relevant headers, the
body once decoded)."""

from __future__ import annotations

import gzip
import http.client
import http.server
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import brotli
import pytest
import zstandard

from tests.support import differential
from tests.support.proc import ProxynowProcess, proxynow_factory
from tests.support.traefik import TraefikProcess, traefik_factory

__all__ = ["proxynow_factory", "traefik_factory"]  # the fixtures, re-exported for pytest

NOOP = "noop@internal"
TEXT = b"".join(b"line %05d of a compressible text body\n" % i for i in range(500))


class Backend:
    """/text (19 KB text/plain with a length), /small (100 bytes), anything else: its path."""

    def __init__(self) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                body = {"/text": TEXT, "/small": TEXT[:100]}.get(self.path, self.path.encode())
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def dead_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def files(backend: Backend) -> tuple[dict[str, Any], dict[str, Any]]:
    static = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}}
    live = {"loadBalancer": {"servers": [{"url": backend.url}]}}
    dynamic = {
        "http": {
            "middlewares": {
                "squeeze": {"compress": {}},
                "again": {"retry": {"attempts": 3, "initialInterval": "10ms"}},
                "https": {"redirectScheme": {"scheme": "https", "permanent": True}},
            },
            "routers": {
                "c": {"rule": "Host(`c.test`)", "service": "live", "middlewares": ["squeeze"]},
                "r": {"rule": "Host(`r.test`)", "service": "flaky", "middlewares": ["again"]},
                "m": {"rule": "Host(`m.test`)", "service": "mirrored"},
                "n": {
                    "rule": "Host(`n.test`)",
                    "service": "noop@internal",
                    "middlewares": ["https"],
                },
                "e": {"rule": "Host(`e.test`)", "service": NOOP},
            },
            "services": {
                "live": live,
                "copy": live,
                "flaky": {"loadBalancer": {"servers": [{"url": dead_url()}, {"url": backend.url}]}},
                "mirrored": {
                    "mirroring": {"service": "live", "mirrors": [{"name": "copy", "percent": 50}]}
                },
            },
        }
    }
    return static, dynamic


DECODE: dict[str | None, Callable[[bytes], bytes]] = {
    None: lambda body: body,
    "gzip": gzip.decompress,
    "br": brotli.decompress,
    "zstd": lambda body: zstandard.ZstdDecompressor().decompressobj().decompress(body),
}

# (host, path, Accept-Encoding)
REQUESTS = [
    ("c.test", "/text", "gzip"),
    ("c.test", "/text", "br"),
    ("c.test", "/text", "zstd"),
    ("c.test", "/text", "gzip;q=0.2, br;q=0.8"),
    ("c.test", "/text", "deflate"),
    ("c.test", "/small", "gzip"),
    ("c.test", "/text", None),
    ("r.test", "/a", None),
    ("r.test", "/b", None),
    ("r.test", "/c", None),
    ("m.test", "/x", None),
    ("m.test", "/y", None),
    ("n.test", "/p?q=1", None),
    ("e.test", "/", None),
]


def answer(port: int, host: str, path: str, accept: str | None) -> tuple[Any, ...]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
    connection.putheader("Host", host)
    if accept is not None:
        connection.putheader("Accept-Encoding", accept)
    connection.endheaders()
    response = connection.getresponse()
    body = response.read()
    connection.close()
    encoding = response.getheader("Content-Encoding")
    return (
        response.status,
        encoding,
        response.getheader("Vary"),
        response.getheader("Location"),
        DECODE[encoding](body),
    )


@pytest.fixture
def backend() -> Iterator[Backend]:
    served = Backend()
    yield served
    served.server.shutdown()
    served.server.server_close()


def test_the_same_answers_as_traefik(
    proxynow_factory: Callable[..., ProxynowProcess],
    traefik_factory: Callable[..., TraefikProcess],
    backend: Backend,
) -> None:
    static, dynamic = files(backend)
    traefik = traefik_factory(static, dynamic).ports["web"]
    ours = proxynow_factory(static, dynamic, workers=1).ports["web"]
    differences = differential.unlike(
        REQUESTS, lambda request: answer(traefik, *request), lambda request: answer(ours, *request)
    )
    assert differences == ""
