"""Response-phase middlewares for HTTP/2 clients (curl over h2c): compress's body is
compressed (a stream applies a response-head hook's transform), and errors replaces the
backend's answer (a stream hands a hook's `Defer` to dispatch `replace`), as for HTTP/1.1."""

from __future__ import annotations

import gzip
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.echo_body import digest
from tests.support.flaky import Flaky
from tests.support.proc import HttpBackend, ProxynowProcess, proxynow_factory

__all__ = ["proxynow_factory"]


@pytest.fixture
def backend() -> Iterator[HttpBackend]:
    with HttpBackend("b1") as served:
        yield served


def config(backend: HttpBackend) -> tuple[dict[str, Any], dict[str, Any]]:
    static = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}}
    middlewares = {
        "gz": {"compress": {"minResponseBodyBytes": 1}},
        "page": {"errors": {"status": ["200"], "service": "s", "query": "/page/{status}"}},
    }
    routers = {
        "gz": {"rule": "PathPrefix(`/gz`)", "service": "s", "middlewares": ["gz"]},
        "err": {"rule": "PathPrefix(`/err`)", "service": "s", "middlewares": ["page"]},
    }
    services = {"s": {"loadBalancer": {"servers": [{"url": backend.url}]}}}
    return static, {"http": {"routers": routers, "middlewares": middlewares, "services": services}}


def h2(port: int, path: str, out: Path, *extra: str) -> str:
    command = ["curl", "-sS", "--http2-prior-knowledge", "-D", "-", "-o", str(out), *extra]
    done = subprocess.run(
        [*command, f"http://127.0.0.1:{port}{path}"], capture_output=True, timeout=30, check=True
    )
    return done.stdout.decode().lower()


def test_compress_and_errors_over_http2(
    proxynow_factory: Callable[..., ProxynowProcess], backend: HttpBackend, tmp_path: Path
) -> None:
    port = proxynow_factory(*config(backend)).ports["web"]
    out = tmp_path / "out"
    head = h2(port, "/gz/text", out, "-H", "Accept-Encoding: gzip")
    assert head.startswith("http/2 200") and "content-encoding: gzip" in head
    assert "content-length" not in head  # the backend's length is not the body's any more
    assert gzip.decompress(out.read_bytes()) == b"b1 /gz/text"
    head = h2(port, "/err/x", out)
    assert head.startswith("http/2 200")
    assert out.read_bytes() == b"b1 /page/200"  # the error page, not the backend's answer


def test_retry_on_a_status_over_http2(
    proxynow_factory: Callable[..., ProxynowProcess], tmp_path: Path
) -> None:
    flaky = Flaky()  # 503 to each path's first request
    try:
        static = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}}
        retry = {"retry": {"attempts": 3, "status": ["500-599"], "initialInterval": "10ms"}}
        dynamic = {
            "http": {
                "middlewares": {"again": retry},
                "routers": {
                    "r": {"rule": "PathPrefix(`/`)", "service": "s", "middlewares": ["again"]}
                },
                "services": {"s": {"loadBalancer": {"servers": [{"url": flaky.url}]}}},
            }
        }
        port = proxynow_factory(static, dynamic).ports["web"]
        out = tmp_path / "out"
        head = h2(port, "/once", out)
        assert head.startswith("http/2 200")
        assert json.loads(out.read_bytes())["n"] == 2  # the 503 was retried
        # A body (in several DATA frames, most after the request went) is sent whole again.
        body = tmp_path / "body"
        body.write_bytes(bytes(range(256)) * 2000)
        head = h2(port, "/put", out, "-X", "PUT", "--data-binary", f"@{body}")
        assert head.startswith("http/2 200")
        answer = json.loads(out.read_bytes())
        assert answer == {"n": 2, "body": digest(body.read_bytes())}
    finally:
        flaky.close()
