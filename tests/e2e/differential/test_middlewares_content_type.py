"""contentType against real Traefik: the same file served by both, responses without a
Content-Type from a real backend; the Content-Type each client sees, with and without the
middleware (Traefik v3 sniffs only on routers that have it), agree: over HTTP/1.1, and over
HTTP/2 (h2c with curl's prior knowledge, and TLS with ALPN h2)."""

from __future__ import annotations

import hashlib
import http.client
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.support.proc import ProxynowProcess, proxynow_factory
from tests.support.tls import pem_pair
from tests.support.traefik import TraefikProcess, traefik_factory
from tests.support.typeless import BODIES, TypelessBackend

__all__ = ["proxynow_factory", "traefik_factory"]  # the fixtures, re-exported for pytest


def files(backend: TypelessBackend) -> tuple[dict[str, Any], dict[str, Any]]:
    static = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}}
    dynamic = {
        "http": {
            "middlewares": {
                "sniff": {"contentType": {}},
                "off": {"contentType": {"autoDetect": False}},
            },
            "routers": {
                "s": {"rule": "Host(`s.test`)", "service": "b", "middlewares": ["sniff"]},
                "o": {"rule": "Host(`o.test`)", "service": "b", "middlewares": ["off"]},
                "p": {"rule": "Host(`p.test`)", "service": "b"},
            },
            "services": {"b": {"loadBalancer": {"servers": [{"url": backend.url}]}}},
        }
    }
    return static, dynamic


def answer(port: int, host: str, path: str, method: str = "GET") -> tuple[Any, ...]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, headers={"Host": host})
        response = connection.getresponse()
        body = response.read()
        return response.status, response.getheader("Content-Type"), body
    finally:
        connection.close()


@pytest.fixture
def backend() -> Iterator[TypelessBackend]:
    served = TypelessBackend()
    yield served
    served.close()


def test_the_same_content_types_as_traefik(
    proxynow_factory: Callable[..., ProxynowProcess],
    traefik_factory: Callable[..., TraefikProcess],
    backend: TypelessBackend,
) -> None:
    static, dynamic = files(backend)
    traefik = traefik_factory(static, dynamic).ports["web"]
    ours = proxynow_factory(static, dynamic, workers=1).ports["web"]
    requests = [(host, path, "GET") for host in ("s.test", "o.test", "p.test") for path in BODIES]
    requests += [("s.test", "/html", "HEAD")]
    differences = []
    seen = set()
    for host, path, method in requests:
        theirs = answer(traefik, host, path, method)
        mine = answer(ours, host, path, method)
        seen.add(theirs[1])
        if mine != theirs:
            differences.append(((host, path, method), mine[:2], theirs[:2]))
    assert differences == [], "\n".join(map(str, differences))
    assert "text/html; charset=utf-8" in seen  # Traefik did sniff: the test tells something


def h2_answer(url: str, host: str, method: str, *extra: str) -> tuple[str, str | None, str]:
    """(HTTP version, Content-Type, body digest) of one curl request over HTTP/2."""
    command = ["curl", "-sS", "--max-time", "20", "-D", "-", "-o", "-", *extra]
    command += ["-H", f"Host: {host}", "-w", "\n%{http_version}"]
    command += ["-I"] if method == "HEAD" else []
    done = subprocess.run([*command, url], capture_output=True, timeout=30, check=True)
    out, _, version = done.stdout.rpartition(b"\n")
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")[1:]
    fields = dict(line.lower().split(": ", 1) for line in lines if ": " in line)
    return version.decode(), fields.get("content-type"), hashlib.sha256(body).hexdigest()


def test_the_same_content_types_as_traefik_over_http2(
    proxynow_factory: Callable[..., ProxynowProcess],
    traefik_factory: Callable[..., TraefikProcess],
    backend: TypelessBackend,
    tmp_path: Path,
) -> None:
    # h2c with prior knowledge to both; TLS with ALPN h2 to proxynow, whose answers must
    # be the same again: the HTTP/2 front end holds the head until the first body bytes.
    static, dynamic = files(backend)
    traefik = traefik_factory(static, dynamic).ports["web"]
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    cert, key = pem_pair(ca.issue_cert("s.test", "o.test", "p.test"))
    static, dynamic = files(backend)  # the same routers again on a TLS entrypoint as well
    static["entryPoints"]["websecure"] = {"address": "127.0.0.1:0"}
    routers = dynamic["http"]["routers"]
    for name, router in list(routers.items()):
        router["entryPoints"] = ["web"]
        routers[f"{name}-tls"] = {**router, "entryPoints": ["websecure"], "tls": {}}
    dynamic["tls"] = {"certificates": [{"certFile": cert, "keyFile": key}]}
    ours = proxynow_factory(static, dynamic, workers=1).ports
    requests = [(host, path, "GET") for host in ("s.test", "o.test", "p.test") for path in BODIES]
    requests += [("s.test", "/html", "HEAD")]
    differences = []
    seen = set()
    for host, path, method in requests:
        h2c = ["--http2-prior-knowledge"]
        theirs = h2_answer(f"http://127.0.0.1:{traefik}{path}", host, method, *h2c)
        mine = h2_answer(f"http://127.0.0.1:{ours['web']}{path}", host, method, *h2c)
        secure = ["--http2", "--cacert", str(tmp_path / "ca.pem")]
        secure += ["--resolve", f"{host}:{ours['websecure']}:127.0.0.1"]
        tls = h2_answer(f"https://{host}:{ours['websecure']}{path}", host, method, *secure)
        seen.add(theirs[1])
        assert theirs[0] == mine[0] == tls[0] == "2"
        if not mine == tls == theirs:
            differences.append(((host, path, method), mine[1], tls[1], theirs[1]))
    assert differences == [], "\n".join(map(str, differences))
    assert "text/html; charset=utf-8" in seen  # Traefik did sniff: the test tells something
