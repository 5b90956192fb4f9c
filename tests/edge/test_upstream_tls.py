"""HTTPS backends: serversTransport rootCAs, insecureSkipVerify and serverName."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.edge.support_http import (
    Backend,
    LoopThread,
    Proxy,
    echo_info,
    loop_thread,
    read_response,
    simple_config,
)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for backend.test and 127.0.0.1 (made with openssl)."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=backend.test",
            "-addext",
            "subjectAltName=DNS:backend.test,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def lt() -> Iterator[LoopThread]:
    with loop_thread() as thread:
        yield thread


@pytest.fixture
def backend(lt: LoopThread, certificate: tuple[Path, Path]) -> Iterator[Backend]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*map(str, certificate))
    backend = Backend(lt, ssl=context)
    yield backend
    backend.close()


def status_through(
    lt: LoopThread, backend: Backend, transport: dict[str, Any]
) -> tuple[int, bytes]:
    config = simple_config(backend.url, serversTransport="t@test")
    config["http"]["serversTransports"] = {"t@test": transport}
    proxy = Proxy(lt, config)
    try:
        with proxy.connect() as sock:
            sock.sendall(b"GET /tls HTTP/1.1\r\nHost: front.example\r\n\r\n")
            status, _, body = read_response(sock)
            return status, body
    finally:
        proxy.close()


def test_trusted_root_ca(lt: LoopThread, backend: Backend, certificate: tuple[Path, Path]) -> None:
    status, body = status_through(lt, backend, {"rootCAs": [str(certificate[0])]})
    assert status == 200 and echo_info(body)["path"] == "/tls"


def test_unknown_certificate_is_502(lt: LoopThread, backend: Backend) -> None:
    assert status_through(lt, backend, {})[0] == 502


def test_insecure_skip_verify(lt: LoopThread, backend: Backend) -> None:
    assert status_through(lt, backend, {"insecureSkipVerify": True})[0] == 200


def test_server_name_is_verified(
    lt: LoopThread, backend: Backend, certificate: tuple[Path, Path]
) -> None:
    cert = str(certificate[0])
    assert status_through(lt, backend, {"rootCAs": [cert], "serverName": "backend.test"})[0] == 200
    assert status_through(lt, backend, {"rootCAs": [cert], "serverName": "other.test"})[0] == 502
