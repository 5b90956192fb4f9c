"""`proxynow run` over HTTPS: TLS requests by version and cipher, certificate expiry."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable

import trustme
from cryptography import x509
from prometheus_client.parser import text_string_to_metric_families

from tests.support.proc import HttpBackend, ProxynowProcess, poll, proxynow_factory
from tests.support.tls import client_context, pem_pair

__all__ = ["proxynow_factory"]

Start = Callable[..., ProxynowProcess]


def _samples(proxy: ProxynowProcess, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    text = proxy.request("prometheus")["text"]
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def test_tls_requests_and_certificate_expiry(proxynow_factory: Start) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("app.test", "www.app.test")
    chain, key = pem_pair(leaf)
    with HttpBackend("b") as backend:
        static = {
            "entryPoints": {"websecure": {"address": "127.0.0.1:0", "http": {"tls": {}}}},
            "metrics": {"prometheus": {}},
        }
        dynamic = {
            "http": {
                "routers": {"app": {"rule": "Host(`app.test`)", "service": "app", "tls": {}}},
                "services": {"app": {"loadBalancer": {"servers": [{"url": backend.url}]}}},
            },
            "tls": {"certificates": [{"certFile": chain, "keyFile": key}]},
        }
        proxy = proxynow_factory(static, dynamic, workers=2)
        context = client_context(ca)
        context.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256")
        ciphers = set()
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            context.maximum_version = version
            context.minimum_version = version
            for _ in range(3):
                ciphers.add((version, _get(proxy.ports["websecure"], context)))
        assert len(ciphers) == 2, ciphers
        expected = {
            (
                ("entrypoint", "websecure"),
                ("tls_cipher", _go(cipher)),
                ("tls_version", _v(version)),
            ): 3.0
            for version, cipher in ciphers
        }

        def counted() -> bool:
            return _samples(proxy, "proxynow_entrypoint_requests_tls_total") == expected

        poll(counted, 20, f"TLS requests {expected}")
        services = _samples(proxy, "proxynow_service_requests_tls_total")
        assert sum(services.values()) == 6
        assert {dict(labels)["service"] for labels in services} == {"app@file"}

        cert = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())
        labels = (
            ("cn", ""),  # trustme leaves the subject without a common name
            ("sans", "app.test,www.app.test"),
            ("serial", str(cert.serial_number)),
        )
        expiry = _samples(proxy, "proxynow_tls_certs_not_after")
        assert expiry == {labels: cert.not_valid_after_utc.timestamp()}
        assert proxy.stop() == 0


def _get(port: int, context: ssl.SSLContext) -> str:
    """One GET on a new TLS connection (SNI app.test); the negotiated cipher."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=20)
    with context.wrap_socket(raw, server_hostname="app.test") as tls:
        tls.sendall(b"GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
        assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"b /"), data
        cipher = tls.cipher()
        assert cipher is not None
        return cipher[0]


def _v(version: ssl.TLSVersion) -> str:
    return {ssl.TLSVersion.TLSv1_2: "1.2", ssl.TLSVersion.TLSv1_3: "1.3"}[version]


def _go(openssl: str) -> str:
    """Go's name of a suite (TLS 1.3 suites have the same name in OpenSSL)."""
    names = {
        "ECDHE-RSA-AES128-GCM-SHA256": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "ECDHE-ECDSA-AES128-GCM-SHA256": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    }
    return names.get(openssl, openssl)
