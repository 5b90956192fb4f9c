"""Redirections, TCP routing by SNI and certificate changes, with a real `proxynow run`.

- `entryPoints.web.http.redirections.entryPoint` and the redirectScheme middleware;
  HTTP-01 on a redirected entrypoint is covered by test_challenges (answered before
  routing, so before the redirect router);
- TCP routers with `HostSNI` on a TLS peek: passthrough forwards the ClientHello as is,
  termination proxies the plaintext, anything else falls back to the HTTP routers;
- a certificate change in the snapshot reaches the workers while an open TLS connection
  keeps working.
"""

from __future__ import annotations

import copy
import socket
import ssl
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import trustme
from cryptography import x509

from tests.support.proc import HttpBackend, ProxynowProcess, ThreadedServer, poll, start_proxynow
from tests.support.tls import client_context, pem_pair


def http(sock: socket.socket, host: str, path: str = "/", method: str = "GET") -> bytes:
    sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += sock.recv(65536)
    return data[: len(head) + 4 + length]


class TlsEcho:
    """A TLS backend (passthrough target): answers `echo:<sni>:<first line>`."""

    def __init__(self, cert: trustme.LeafCert) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(self.context)
        self.server = ThreadedServer(self.handle)

    def handle(self, conn: socket.socket) -> None:
        names: list[str] = []

        def record(obj: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
            names.append(name or "")

        self.context.sni_callback = record
        with self.context.wrap_socket(conn, server_side=True) as tls:
            line = tls.recv(65536).split(b"\r\n")[0]
            tls.sendall(b"echo:" + (names[0] if names else "").encode() + b":" + line)


class PlainEcho:
    """A plain backend (terminated TCP target): answers `plain:<first line>`."""

    def __init__(self) -> None:
        self.server = ThreadedServer(self.handle)

    def handle(self, conn: socket.socket) -> None:
        line = conn.recv(65536).split(b"\r\n")[0]
        conn.sendall(b"plain:" + line)
        conn.close()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory, ca: trustme.CA
) -> Iterator[tuple[ProxynowProcess, dict[str, Any]]]:
    passthrough_backend = TlsEcho(ca.issue_cert("pass.test"))
    plain_backend = PlainEcho()
    passthrough, plain = passthrough_backend.server, plain_backend.server
    with HttpBackend("web") as backend:
        cert, key = pem_pair(ca.issue_cert("app.test", "term.test", "legacy.test"))
        dynamic: dict[str, Any] = {
            "http": {
                "routers": {
                    "app": {
                        "rule": "Host(`app.test`)",
                        "entryPoints": ["websecure"],
                        "service": "app",
                        "tls": {},
                    },
                    "legacy": {
                        "rule": "Host(`legacy.test`)",
                        "entryPoints": ["websecure"],
                        "service": "app",
                        "tls": {"options": "old"},
                    },
                    "moved": {
                        "rule": "Host(`moved.test`)",
                        "entryPoints": ["side"],
                        "service": "app",
                        "middlewares": ["tohttps"],
                    },
                    "chained": {
                        "rule": "Host(`chained.test`)",
                        "entryPoints": ["side"],
                        "service": "app",
                        "middlewares": ["secure"],
                    },
                },
                "middlewares": {
                    "tohttps": {"redirectScheme": {"scheme": "https", "port": "8443"}},
                    "secure": {"chain": {"middlewares": ["tohttps"]}},
                },
                "services": {"app": {"loadBalancer": {"servers": [{"url": backend.url}]}}},
            },
            "tcp": {
                "routers": {
                    "pass": {
                        "rule": "HostSNI(`pass.test`)",
                        "entryPoints": ["websecure"],
                        "service": "pass",
                        "tls": {"passthrough": True},
                    },
                    "term": {
                        "rule": "HostSNI(`term.test`)",
                        "entryPoints": ["websecure"],
                        "service": "plain",
                        "tls": {"options": "tcp13"},
                    },
                },
                "services": {
                    "pass": {"loadBalancer": {"servers": [{"address": passthrough.address}]}},
                    "plain": {"loadBalancer": {"servers": [{"address": plain.address}]}},
                },
            },
            "tls": {
                "certificates": [{"certFile": cert, "keyFile": key}],
                "options": {
                    "default": {"sniStrict": True},
                    "old": {"maxVersion": "VersionTLS12"},
                    "tcp13": {"minVersion": "VersionTLS13"},
                },
            },
        }
        static = {
            "entryPoints": {
                "web": {
                    "address": "127.0.0.1:0",
                    "http": {"redirections": {"entryPoint": {"to": "websecure"}}},
                },
                "websecure": {"address": "127.0.0.1:0"},
                "side": {"address": "127.0.0.1:0"},
            },
        }
        directory = tmp_path_factory.mktemp("tlsrouting")
        proc = start_proxynow(directory, static, dynamic, workers=2)
        try:
            yield proc, dynamic
        finally:
            proc.stop()
            passthrough.close()
            plain.close()


def test_entrypoint_redirection_to_websecure(setup: Any) -> None:
    proc, _ = setup
    secure = proc.ports["websecure"]
    with socket.create_connection(("127.0.0.1", proc.ports["web"]), timeout=10) as sock:
        reply = http(sock, "app.test:80", "/a/b?c=d")
    assert reply.startswith(b"HTTP/1.1 301 Moved Permanently\r\n")
    assert f"Location: https://app.test:{secure}/a/b?c=d\r\n".encode() in reply
    with socket.create_connection(("127.0.0.1", proc.ports["web"]), timeout=10) as sock:
        reply = http(sock, "app.test", "/form", method="POST")
    assert reply.startswith(b"HTTP/1.1 308 Permanent Redirect\r\n")


def test_redirect_scheme_middleware(setup: Any) -> None:
    proc, _ = setup
    with socket.create_connection(("127.0.0.1", proc.ports["side"]), timeout=10) as sock:
        reply = http(sock, "moved.test:1234", "/x")
    assert reply.startswith(b"HTTP/1.1 302 Found\r\n")
    assert b"Location: https://moved.test:8443/x\r\n" in reply


def test_redirect_scheme_inside_a_chain(setup: Any) -> None:
    proc, _ = setup
    with socket.create_connection(("127.0.0.1", proc.ports["side"]), timeout=10) as sock:
        reply = http(sock, "chained.test", "/y?z=1")
    assert reply.startswith(b"HTTP/1.1 302 Found\r\n")
    assert b"Location: https://chained.test:8443/y?z=1\r\n" in reply


def test_tcp_passthrough_by_sni(setup: Any, ca: trustme.CA) -> None:
    proc, _ = setup
    raw = socket.create_connection(("127.0.0.1", proc.ports["websecure"]), timeout=10)
    with client_context(ca).wrap_socket(raw, server_hostname="pass.test") as tls:
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        cert = x509.load_der_x509_certificate(der)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        assert san.value.get_values_for_type(x509.DNSName) == ["pass.test"]  # the backend's
        tls.sendall(b"HELLO\r\n")
        assert tls.recv(65536) == b"echo:pass.test:HELLO"


def test_tcp_termination_by_sni(setup: Any, ca: trustme.CA) -> None:
    proc, _ = setup
    raw = socket.create_connection(("127.0.0.1", proc.ports["websecure"]), timeout=10)
    with client_context(ca).wrap_socket(raw, server_hostname="term.test") as tls:
        tls.sendall(b"PING\r\n")
        assert tls.recv(65536) == b"plain:PING"
    # The TCP router's TLS options (minVersion 1.3) apply to its HostSNI name.
    old = client_context(None)
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    raw = socket.create_connection(("127.0.0.1", proc.ports["websecure"]), timeout=10)
    with raw, pytest.raises((ssl.SSLError, ConnectionError)):
        old.wrap_socket(raw, server_hostname="term.test").close()


def test_other_names_fall_back_to_http_routers(setup: Any, ca: trustme.CA) -> None:
    proc, _ = setup
    raw = socket.create_connection(("127.0.0.1", proc.ports["websecure"]), timeout=10)
    with client_context(ca).wrap_socket(raw, server_hostname="app.test") as tls:
        assert http(tls, "app.test", "/z").endswith(b"web /z")


def test_certificate_change_keeps_open_connections(setup: Any, ca: trustme.CA) -> None:
    proc, dynamic = setup
    port = proc.ports["websecure"]
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with client_context(ca).wrap_socket(raw, server_hostname="app.test") as tls:
        assert http(tls, "app.test", "/before").endswith(b"web /before")
        other = trustme.CA()
        changed = copy.deepcopy(dynamic)
        cert, key = pem_pair(other.issue_cert("app.test", "term.test", "legacy.test"))
        changed["tls"]["certificates"] = [{"certFile": cert, "keyFile": key}]
        version = proc.wait_serving(1)
        proc.write_dynamic(changed)
        proc.wait_serving(version + 1)

        def new_certificate_served() -> bool:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as again:
                try:
                    with client_context(other).wrap_socket(again, server_hostname="app.test"):
                        return True
                except ssl.SSLCertVerificationError:
                    return False

        poll(new_certificate_served, what="the new certificate")
        # The connection opened before the change still serves requests.
        assert http(tls, "app.test", "/after").endswith(b"web /after")


def test_sni_strict_refuses_unknown_and_missing_names(setup: Any) -> None:
    proc, _ = setup
    port = proc.ports["websecure"]
    for sni in ("unknown.test", None):
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        with raw, pytest.raises((ssl.SSLError, ConnectionError)):
            client_context(None).wrap_socket(raw, server_hostname=sni).close()


def test_max_version_of_a_router_options(setup: Any) -> None:
    # (No CA check: the certificate-change test may have run first.)
    proc, _ = setup
    port = proc.ports["websecure"]
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with client_context(None).wrap_socket(raw, server_hostname="legacy.test") as tls:
        assert tls.version() == "TLSv1.2"
        assert http(tls, "legacy.test", "/old").endswith(b"web /old")
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with client_context(None).wrap_socket(raw, server_hostname="app.test") as tls:
        assert tls.version() == "TLSv1.3"


def test_openssl_s_client_sees_the_alpn_and_certificate(setup: Any) -> None:
    proc, _ = setup
    done = subprocess.run(
        [
            "openssl", "s_client", "-connect", f"127.0.0.1:{proc.ports['websecure']}",
            "-servername", "app.test", "-alpn", "h2,http/1.1",
        ],
        input=b"", capture_output=True, timeout=30, check=False,
    )  # fmt: skip
    out = done.stdout.decode(
        errors="replace"
    )  # an h2 server sends its SETTINGS after the handshake
    assert "ALPN protocol: h2" in out
    assert "Protocol  : TLSv1.3" in out or "New, TLSv1.3" in out
