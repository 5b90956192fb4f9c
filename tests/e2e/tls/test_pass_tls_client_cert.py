"""passTLSClientCert through a running `proxynow run`: a TLS entrypoint requiring a client
certificate, the echo backend on 127.0.0.1 showing the headers it got."""

from __future__ import annotations

import base64
import ssl
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote_plus

import pytest
import trustme

from tests.support.client_certs import (
    EXPECTED_INFO,
    ClientFiles,
    client_context,
    mtls_dynamic,
    tls_backend_headers,
    write_client_certs,
)
from tests.support.proc import start_proxynow
from tests.support.rewrite_middlewares import echo_backend
from tests.support.tls import pem_pair


@pytest.fixture
def files(tmp_path: Path) -> ClientFiles:
    return write_client_certs(tmp_path)


@pytest.fixture
def port(tmp_path: Path, files: ClientFiles) -> Iterator[int]:
    chain, key = pem_pair(trustme.CA().issue_cert("h.test"))
    (tmp_path / "server.crt").write_text(chain)
    (tmp_path / "server.key").write_text(key)
    server = (tmp_path / "server.crt", tmp_path / "server.key")
    with echo_backend() as backend:
        dynamic = mtls_dynamic(f"http://{backend.address}", server, files.ca, "websecure")
        static = {"entryPoints": {"websecure": {"address": "127.0.0.1:0"}}}
        proxy = start_proxynow(tmp_path / "proxynow", static, dynamic, workers=1)
        try:
            yield proxy.ports["websecure"]
        finally:
            proxy.stop()


def test_the_certificate_and_its_fields_reach_the_backend(port: int, files: ClientFiles) -> None:
    # A forged header from the client is replaced, not passed on.
    forged = (("X-Forwarded-Tls-Client-Cert", "forged"),)
    seen = tls_backend_headers(port, client_context(files), forged)
    assert seen["x-forwarded-tls-client-cert"] == [base64.b64encode(files.der).decode()]
    (info,) = seen["x-forwarded-tls-client-cert-info"]
    assert unquote_plus(info) == EXPECTED_INFO


def test_without_a_client_certificate_the_handshake_fails(port: int, files: ClientFiles) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with pytest.raises((ssl.SSLError, ConnectionError)):
        tls_backend_headers(port, context)
