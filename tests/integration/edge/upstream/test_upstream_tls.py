"""HTTPS backends: serversTransport rootCAs, insecureSkipVerify, serverName, client
certificates (mTLS), minVersion / maxVersion and cipherSuites."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.integration.support_http import (
    Backend,
    LoopThread,
    Proxy,
    echo_info,
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


def tls_backend(lt: LoopThread, certificate: tuple[Path, Path], **settings: Any) -> Backend:
    """A backend whose TLS context is narrowed by `settings` (attributes of SSLContext)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*map(str, certificate))
    for name, value in settings.items():
        setattr(context, name, value)
    return Backend(lt, ssl=context)


def test_client_certificate_for_a_backend_that_requires_one(
    lt: LoopThread, certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    ca = trustme.CA()
    client = ca.issue_cert("proxynow.test")
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    client.cert_chain_pems[0].write_to_path(str(cert))
    client.private_key_pem.write_to_path(str(key))
    backend = tls_backend(lt, certificate, verify_mode=ssl.CERT_REQUIRED)
    backend_context = backend.ssl
    assert backend_context is not None
    ca.configure_trust(backend_context)
    try:
        with_cert = {
            "insecureSkipVerify": True,
            "certificates": [{"certFile": str(cert), "keyFile": str(key)}],
        }
        assert status_through(lt, backend, with_cert)[0] == 200
        assert status_through(lt, backend, {"insecureSkipVerify": True})[0] == 502
        # PEM content instead of paths works too (Traefik's FileOrContent).
        inline = {
            "insecureSkipVerify": True,
            "certificates": [{"certFile": cert.read_text(), "keyFile": key.read_text()}],
        }
        assert status_through(lt, backend, inline)[0] == 200
    finally:
        backend.close()


def test_max_version_below_the_backend_minimum_is_502(
    lt: LoopThread, certificate: tuple[Path, Path]
) -> None:
    backend = tls_backend(lt, certificate, minimum_version=ssl.TLSVersion.TLSv1_3)
    try:
        insecure: dict[str, Any] = {"insecureSkipVerify": True}
        assert status_through(lt, backend, insecure)[0] == 200
        assert status_through(lt, backend, {**insecure, "maxVersion": "VersionTLS12"})[0] == 502
        assert status_through(lt, backend, {**insecure, "minVersion": "VersionTLS13"})[0] == 200
    finally:
        backend.close()


def test_cipher_suites_for_tls12_backends(lt: LoopThread, certificate: tuple[Path, Path]) -> None:
    backend = tls_backend(lt, certificate, maximum_version=ssl.TLSVersion.TLSv1_2)
    backend_context = backend.ssl
    assert backend_context is not None
    backend_context.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256")
    try:
        insecure: dict[str, Any] = {"insecureSkipVerify": True}
        other = {**insecure, "cipherSuites": ["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"]}
        same = {**insecure, "cipherSuites": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]}
        assert status_through(lt, backend, other)[0] == 502
        assert status_through(lt, backend, same)[0] == 200
    finally:
        backend.close()


def test_unreadable_root_ca_answers_502_and_the_proxy_keeps_serving(
    lt: LoopThread, backend: Backend, tmp_path: Path
) -> None:
    missing = str(tmp_path / "no-such-ca.pem")
    assert status_through(lt, backend, {"rootCAs": [missing]})[0] == 502
