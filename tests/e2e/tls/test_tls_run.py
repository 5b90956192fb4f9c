"""HTTPS entrypoints end to end: a real `proxynow run` (2 workers), real TLS clients.

Certificates come from a test CA made with `trustme`; clients trust only that CA (or,
for the default certificate, nothing) and check the served certificate's names.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import trustme
from cryptography import x509

from tests.support.proc import (
    HttpBackend,
    ProxynowProcess,
    ThreadedServer,
    poll,
    start_proxynow,
)
from tests.support.tls import client_context, pem_pair


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def backend() -> Iterator[HttpBackend]:
    with HttpBackend("tlsbackend") as server:
        yield server


def handshake(
    port: int, sni: str | None, context: ssl.SSLContext
) -> tuple[ssl.SSLSocket, x509.Certificate]:
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    tls = context.wrap_socket(raw, server_hostname=sni)
    der = tls.getpeercert(binary_form=True)
    assert der is not None
    return tls, x509.load_der_x509_certificate(der)


def names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return [str(name) for name in san.value.get_values_for_type(x509.DNSName)]


def common_name(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value)


def get(tls: ssl.SSLSocket, host: str, path: str = "/") -> bytes:
    tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += tls.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += tls.recv(65536)
    return head.split(b"\r\n")[0] + b"\n" + body


def forwarded_proto(conn: socket.socket) -> None:
    """A backend answering with the X-Forwarded-Proto it received."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk
    proto = b"-"
    for line in data.split(b"\r\n"):
        if line.lower().startswith(b"x-forwarded-proto:"):
            proto = line.split(b":", 1)[1].strip()
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(proto), proto))
    conn.close()


@pytest.fixture(scope="module")
def headers_backend() -> Iterator[ThreadedServer]:
    with ThreadedServer(forwarded_proto) as server:
        yield server


@pytest.fixture(scope="module")
def proxy(
    tmp_path_factory: pytest.TempPathFactory,
    ca: trustme.CA,
    backend: HttpBackend,
    headers_backend: ThreadedServer,
) -> Iterator[tuple[ProxynowProcess, dict[str, Any]]]:
    directory = tmp_path_factory.mktemp("tlsrun")
    exact = ca.issue_cert("app.test")
    wildcard = ca.issue_cert("*.wild.test")
    exact_cert, exact_key = pem_pair(exact)
    (directory / "wild.crt").write_text(pem_pair(wildcard)[0])
    (directory / "wild.key").write_text(pem_pair(wildcard)[1])
    strict_cert, strict_key = pem_pair(ca.issue_cert("strict.test"))
    mtls_cert, mtls_key = pem_pair(ca.issue_cert("mtls.test"))
    ca_file = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    service = {"loadBalancer": {"servers": [{"url": backend.url}]}}
    dynamic: dict[str, Any] = {
        "http": {
            "routers": {
                "secure": {
                    "rule": "HostRegexp(`.+`)",
                    "entryPoints": ["websecure"],
                    "service": "app",
                    "tls": {},
                },
                "plain": {"rule": "PathPrefix(`/`)", "entryPoints": ["web"], "service": "app"},
                "tls13": {
                    "rule": "Host(`app.test`)",
                    "entryPoints": ["modern"],
                    "service": "app",
                    "tls": {"options": "modern"},
                },
                "hdr": {
                    "rule": "Host(`hdr.test`)",
                    "entryPoints": ["websecure"],
                    "service": "hdr",
                    "tls": {},
                },
                "mtls": {
                    "rule": "Host(`mtls.test`)",
                    "entryPoints": ["websecure"],
                    "service": "app",
                    "tls": {"options": "mtls"},
                },
            },
            "services": {
                "app": service,
                "hdr": {
                    "loadBalancer": {"servers": [{"url": f"http://{headers_backend.address}"}]}
                },
            },
        },
        "tls": {
            "certificates": [
                {"certFile": exact_cert, "keyFile": exact_key},
                {"certFile": str(directory / "wild.crt"), "keyFile": str(directory / "wild.key")},
                {"certFile": strict_cert, "keyFile": strict_key},
                {"certFile": mtls_cert, "keyFile": mtls_key},
            ],
            "options": {
                "modern": {"minVersion": "VersionTLS13", "sniStrict": True},
                "mtls": {
                    "clientAuth": {
                        "caFiles": [str(ca_file)],
                        "clientAuthType": "RequireAndVerifyClientCert",
                    }
                },
                "old": {"maxVersion": "VersionTLS12"},
            },
        },
    }
    static = {
        "entryPoints": {
            "web": {"address": "127.0.0.1:0"},
            "websecure": {"address": "127.0.0.1:0"},
            "modern": {
                "address": "127.0.0.1:0",
                "transport": {"respondingTimeouts": {"readTimeout": "1s"}},
            },
        },
        "log": {"level": "INFO"},
    }
    proc = start_proxynow(directory, static, dynamic, workers=2)
    try:
        yield proc, {"ca_file": ca_file}
    finally:
        proc.stop()


def test_exact_name_gets_its_certificate(proxy: Any, ca: trustme.CA) -> None:
    proc, _ = proxy
    tls, cert = handshake(proc.ports["websecure"], "app.test", client_context(ca))
    with tls:
        assert names(cert) == ["app.test"]
        assert tls.version() in ("TLSv1.3", "TLSv1.2")
        assert tls.selected_alpn_protocol() is None
        assert get(tls, "app.test", "/hello") == b"HTTP/1.1 200 OK\ntlsbackend /hello"
        # Keep-alive: a second request on the same TLS connection.
        assert get(tls, "app.test", "/again") == b"HTTP/1.1 200 OK\ntlsbackend /again"


def test_wildcard_from_files_covers_one_label(proxy: Any, ca: trustme.CA) -> None:
    proc, _ = proxy
    tls, cert = handshake(proc.ports["websecure"], "a.wild.test", client_context(ca))
    with tls:
        assert names(cert) == ["*.wild.test"]
    tls, cert = handshake(proc.ports["websecure"], "a.b.wild.test", client_context(None))
    with tls:
        assert common_name(cert) == "PROXYNOW DEFAULT CERT"


def test_unknown_and_missing_sni_get_the_default_certificate(proxy: Any) -> None:
    proc, _ = proxy
    for sni in ("unknown.test", None):
        tls, cert = handshake(proc.ports["websecure"], sni, client_context(None))
        with tls:
            assert common_name(cert) == "PROXYNOW DEFAULT CERT"
            assert get(tls, "whatever.test") == b"HTTP/1.1 200 OK\ntlsbackend /"


def test_alpn_negotiates_h2_first_then_http11(proxy: Any, ca: trustme.CA) -> None:
    proc, _ = proxy
    both = client_context(ca, ["h2", "http/1.1"])
    tls, _ = handshake(proc.ports["websecure"], "app.test", both)
    with tls:
        assert tls.selected_alpn_protocol() == "h2"
    tls, _ = handshake(proc.ports["websecure"], "app.test", client_context(ca, ["http/1.1"]))
    with tls:
        assert tls.selected_alpn_protocol() == "http/1.1"


def test_plain_http_is_not_served_by_tls_routers(proxy: Any) -> None:
    proc, _ = proxy
    with socket.create_connection(("127.0.0.1", proc.ports["websecure"]), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 404")


def test_router_options_min_version_and_sni_strict(proxy: Any, ca: trustme.CA) -> None:
    proc, _ = proxy
    port = proc.ports["modern"]
    tls, _ = handshake(port, "app.test", client_context(ca))
    with tls:
        assert tls.version() == "TLSv1.3"
    only12 = client_context(ca)
    only12.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises((ssl.SSLError, ConnectionError)):
        handshake(port, "app.test", only12)


def test_mtls_accepts_a_client_of_the_ca_and_rejects_others(proxy: Any, ca: trustme.CA) -> None:
    proc, _ = proxy
    port = proc.ports["websecure"]
    good = client_context(ca)
    ca.issue_cert("client@example.test").configure_cert(good)
    tls, _ = handshake(port, "mtls.test", good)
    with tls:
        assert get(tls, "mtls.test") == b"HTTP/1.1 200 OK\ntlsbackend /"
    other = trustme.CA()
    bad = client_context(ca)
    other.issue_cert("client@example.test").configure_cert(bad)
    for context in (bad, client_context(ca)):
        with pytest.raises((ssl.SSLError, ConnectionError)):
            tls, _ = handshake(port, "mtls.test", context)
            with tls:  # TLS 1.3: the server's verdict arrives after the client's Finished
                get(tls, "mtls.test")


def test_curl_with_resolve(proxy: Any) -> None:
    proc, info = proxy
    port = proc.ports["websecure"]
    out = subprocess.run(
        [
            "curl", "-sS", "--cacert", str(info["ca_file"]),
            "--resolve", f"app.test:{port}:127.0.0.1", f"https://app.test:{port}/curl",
        ],
        capture_output=True, timeout=30, check=True,
    )  # fmt: skip
    assert out.stdout == b"tlsbackend /curl"


def test_plain_entrypoint_still_plain(proxy: Any) -> None:
    proc, _ = proxy
    status = poll(lambda: _plain_status(proc.ports["web"]), what="plain answer")
    assert status == 200


def _plain_status(port: int) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
        return int(sock.recv(65536).split(b" ")[1])


def test_silent_client_is_closed_at_the_handshake_timeout(proxy: Any) -> None:
    proc, _ = proxy
    with socket.create_connection(("127.0.0.1", proc.ports["modern"]), timeout=30) as sock:
        sock.sendall(b"\x16\x03\x01")  # the start of a ClientHello, then nothing
        assert sock.recv(1024) == b""  # closed by the proxy (readTimeout 1s), not by us


def test_tls12_client_is_served_by_default_options(proxy: Any, ca: trustme.CA) -> None:
    proc, _ = proxy
    only12 = client_context(ca, ["http/1.1"])
    only12.maximum_version = ssl.TLSVersion.TLSv1_2
    tls, served = handshake(proc.ports["websecure"], "app.test", only12)
    with tls:
        assert tls.version() == "TLSv1.2"
        assert names(served) == ["app.test"]
        assert tls.selected_alpn_protocol() == "http/1.1"
        assert get(tls, "app.test", "/v12") == b"HTTP/1.1 200 OK\ntlsbackend /v12"


def test_backend_sees_x_forwarded_proto_https(proxy: Any) -> None:
    proc, _ = proxy
    tls, _ = handshake(proc.ports["websecure"], "hdr.test", client_context(None))
    with tls:
        assert get(tls, "hdr.test") == b"HTTP/1.1 200 OK\nhttps"
