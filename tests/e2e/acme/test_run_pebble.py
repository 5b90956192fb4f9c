"""End to end: a real `proxynow run` gets its certificates from a real Pebble.

The workers answer the challenges (HTTP-01 on the `web` entrypoint, TLS-ALPN-01 on
`websecure`); clients trust only Pebble's root. Entrypoints use fixed free ports
because Pebble must know them before it starts.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.pebble import Pebble, PebbleFactory
from tests.support.proc import HttpBackend, ProxynowProcess, poll, proxynow_factory

__all__ = ["proxynow_factory"]  # the fixture, re-exported for pytest


class _SNIConnection(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1 with SNI (and verification) for another name."""

    def __init__(self, port: int, name: str, context: ssl.SSLContext) -> None:
        super().__init__("127.0.0.1", port, timeout=10)
        self._name = name
        self._tls_context = context

    def connect(self) -> None:
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        self.sock = self._tls_context.wrap_socket(raw, server_hostname=self._name)


def https_get(port: int, host: str, root_pem: bytes | None) -> tuple[int, bytes]:
    """GET / over HTTPS with SNI `host`, trusting only `root_pem` (None: trust anything)."""
    context = ssl.create_default_context()
    if root_pem is None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.load_verify_locations(cadata=root_pem.decode())
    connection = _SNIConnection(port, host, context)
    try:
        connection.request("GET", "/", headers={"Host": host, "Connection": "close"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def trusted_get(port: int, host: str, root_pem: bytes) -> tuple[int, bytes] | None:
    try:
        return https_get(port, host, root_pem)
    except (ssl.SSLError, OSError):
        return None


def configs(
    pebble: Pebble, tmp_path: Path, web: int, websecure: int, backend: HttpBackend, **acme: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    settings: dict[str, Any] = {
        "email": "admin@example.com",
        "storage": str(tmp_path / "acme.json"),
        "caServer": pebble.directory_url,
        "caCertificates": [str(pebble.ca_file)],
        "keyType": "EC256",
        **acme,
    }
    static = {
        "entryPoints": {
            "web": {"address": f"127.0.0.1:{web}"},
            "websecure": {"address": f"127.0.0.1:{websecure}", "http": {"tls": {}}},
        },
        "certificatesResolvers": {"le": {"acme": settings}},
        "log": {"level": "INFO"},
    }
    dynamic = {
        "http": {
            "routers": {
                "app": {
                    "rule": "Host(`app.example.com`)",
                    "entryPoints": ["websecure"],
                    "service": "app",
                    "tls": {"certResolver": "le"},
                }
            },
            "services": {"app": {"loadBalancer": {"servers": [{"url": backend.url}]}}},
        }
    }
    return static, dynamic


def http01_configs(
    pebble: Pebble, tmp_path: Path, web: int, websecure: int, backend: HttpBackend
) -> tuple[dict[str, Any], dict[str, Any]]:
    """`configs` with the HTTP-01 challenge on the `web` entrypoint."""
    return configs(pebble, tmp_path, web, websecure, backend, httpChallenge={"entryPoint": "web"})


@pytest.mark.parametrize("challenge", ["http", "tls"])
def test_proxynow_serves_a_pebble_certificate(
    challenge: str,
    pebble_factory: PebbleFactory,
    proxynow_factory: Callable[..., ProxynowProcess],
    tmp_path: Path,
) -> None:
    pebble, web, websecure = pebble_factory.start_for_proxy()
    option = (
        {"httpChallenge": {"entryPoint": "web"}} if challenge == "http" else {"tlsChallenge": {}}
    )
    with HttpBackend("app") as backend:
        static, dynamic = configs(pebble, tmp_path, web, websecure, backend, **option)
        proxy = proxynow_factory(static, dynamic)
        root = pebble.root_pem()
        status, body = poll(
            lambda: trusted_get(websecure, "app.example.com", root),
            timeout=20,
            what="an HTTPS response with a Pebble certificate",
        )
        assert (status, body) == (200, b"app /")
        assert proxy.stderr().count("ordering a certificate for app.example.com") == 1


def test_restart_reuses_the_certificate_and_unreachable_ca_keeps_serving(
    pebble_factory: PebbleFactory,
    proxynow_factory: Callable[..., ProxynowProcess],
    tmp_path: Path,
) -> None:
    pebble, web, websecure = pebble_factory.start_for_proxy()
    with HttpBackend("app") as backend:
        static, dynamic = http01_configs(pebble, tmp_path, web, websecure, backend)
        first = proxynow_factory(static, dynamic)
        root = pebble.root_pem()
        poll(lambda: trusted_get(websecure, "app.example.com", root), 20, "a trusted response")
        first.stop()
        pebble.stop()  # the CA is gone: a restart must not need it
        second = proxynow_factory(static, dynamic)
        assert poll(lambda: trusted_get(websecure, "app.example.com", root), 20, "reuse") == (
            200,
            b"app /",
        )
        # A new domain cannot be ordered: retries back off, HTTPS keeps serving.
        dynamic["http"]["routers"]["new"] = {
            "rule": "Host(`new.example.com`)",
            "entryPoints": ["websecure"],
            "service": "app",
            "tls": {"certResolver": "le"},
        }
        second.write_dynamic(dynamic)
        poll(lambda: "(attempt 2)" in second.stderr(), 20, "a second attempt")
        assert https_get(websecure, "new.example.com", None) == (200, b"app /")
        assert trusted_get(websecure, "new.example.com", root) is None  # the default cert
        assert trusted_get(websecure, "app.example.com", root) == (200, b"app /")
        assert "ordering a certificate for app.example.com" not in second.stderr()


def served_names(port: int, sni: str, root_pem: bytes) -> list[str] | None:
    """The DNS names of the certificate served for `sni`, if Pebble's root signed it."""
    context = ssl.create_default_context(cadata=root_pem.decode())
    context.check_hostname = False  # the default certificate is not for `sni`
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=sni) as tls,
        ):
            cert = tls.getpeercert()
    except (ssl.SSLError, OSError):
        return None
    return [value for kind, value in cert.get("subjectAltName", ()) if kind == "DNS"]


def test_default_generated_cert_is_served_for_unknown_names(
    pebble_factory: PebbleFactory,
    proxynow_factory: Callable[..., ProxynowProcess],
    tmp_path: Path,
) -> None:
    pebble, web, websecure = pebble_factory.start_for_proxy()
    with HttpBackend("app") as backend:
        static, dynamic = http01_configs(pebble, tmp_path, web, websecure, backend)
        dynamic["tls"] = {
            "stores": {
                "default": {
                    "defaultGeneratedCert": {
                        "resolver": "le",
                        "domain": {"main": "default.example.com"},
                    }
                }
            }
        }
        proxynow_factory(static, dynamic)
        root = pebble.root_pem()
        names = poll(
            lambda: served_names(websecure, "unknown.test", root),
            timeout=20,
            what="the default certificate signed by Pebble",
        )
        assert names == ["default.example.com"]
