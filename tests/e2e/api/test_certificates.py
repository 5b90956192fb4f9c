"""`/api/certificates[/{id}]`: Traefik v3.7's certificate view, and never a key.

Certificates are made here with `cryptography` (a CA and leaves with chosen expiry), given
as files and inline PEM, and read back through the pure view and through a real
`proxynow run`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from proxynow.api.endpoints import answer
from tests.e2e.api.test_api_run import request
from tests.support.proc import ProxynowProcess, proxynow_factory
from tests.unit.api.support import make_view

__all__ = ["proxynow_factory"]

NOW = datetime.now(UTC).replace(microsecond=0)


def _name(cn: str, org: str = "", country: str = "") -> x509.Name:
    parts = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        parts.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    if country:
        parts.append(x509.NameAttribute(NameOID.COUNTRY_NAME, country))
    return x509.Name(parts)


CA_KEY = ec.generate_private_key(ec.SECP256R1())
CA_NAME = _name("Test Issuing CA", "Proxynow Tests", "FR")


def leaf(cn: str, days_left: float, sans: list[str]) -> tuple[x509.Certificate, bytes, bytes]:
    """(certificate, its PEM, its key's PEM), issued by the test CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for san in sans:
        try:
            names.append(x509.IPAddress(ip_address(san)))
        except ValueError:
            names.append(x509.DNSName(san))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn, "Shop"))
        .issuer_name(CA_NAME)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=60))
        .not_valid_after(NOW + timedelta(days=days_left))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(CA_KEY, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert, cert.public_bytes(serialization.Encoding.PEM), key_pem


GOOD = leaf("shop.example.com", 80, ["www.shop.example.com", "shop.example.com", "10.0.0.1"])
SOON = leaf("soon.example.com", 10, ["soon.example.com"])
EXPIRED = leaf("old.example.com", -1, ["old.example.com"])
KEYS = [GOOD[2], SOON[2], EXPIRED[2]]


def fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def tls_config(tmp_path: Path) -> dict[str, Any]:
    """GOOD from files, SOON inline, EXPIRED as the default store's certificate."""
    (tmp_path / "good.pem").write_bytes(GOOD[1])
    (tmp_path / "good.key").write_bytes(GOOD[2])
    return {
        "certificates": [
            {"certFile": str(tmp_path / "good.pem"), "keyFile": str(tmp_path / "good.key")},
            {"certFile": SOON[1].decode(), "keyFile": SOON[2].decode()},
        ],
        "stores": {
            "default": {
                "defaultCertificate": {
                    "certFile": EXPIRED[1].decode(),
                    "keyFile": EXPIRED[2].decode(),
                }
            }
        },
    }


def get(view: Any, path: str, **query: str) -> tuple[int, Any]:
    result = answer(view, "GET", path, query, "/api", NOW)
    return result.status, json.loads(result.body)


def assert_no_key(text: str) -> None:
    assert "PRIVATE KEY" not in text
    for key in KEYS:
        body = "".join(key.decode().splitlines()[1:-1])
        assert body[:40] not in text.replace("\\n", "").replace("\n", "")


def test_the_shape_of_a_certificate(tmp_path: Path) -> None:
    view = make_view({"tls": tls_config(tmp_path)})
    status, listed = get(view, "/api/certificates")
    assert status == 200
    assert [c["commonName"] for c in listed] == [
        "old.example.com",
        "shop.example.com",
        "soon.example.com",
    ]
    good = next(c for c in listed if c["commonName"] == "shop.example.com")
    cert = GOOD[0]
    key_der = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert good == {
        "name": fingerprint(cert),
        "sans": ["10.0.0.1", "shop.example.com", "www.shop.example.com"],
        "notAfter": (NOW + timedelta(days=80)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "notBefore": (NOW - timedelta(days=60)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "serialNumber": str(cert.serial_number),
        "commonName": "shop.example.com",
        "issuerOrg": "Proxynow Tests",
        "issuerCN": "Test Issuing CA",
        "issuerCountry": "FR",
        "organization": "Shop",
        "version": "v3",
        "keyType": "ECDSA",
        "keySize": 256,
        "signatureAlgorithm": "ECDSA-SHA256",
        "certFingerprint": fingerprint(cert),
        "publicKeyFingerprint": hashlib.sha256(key_der).hexdigest(),
        "status": "enabled",
    }
    statuses = {c["commonName"]: c["status"] for c in listed}
    assert statuses == {
        "old.example.com": "disabled",
        "shop.example.com": "enabled",
        "soon.example.com": "warning",
    }
    assert view.overview["certificates"] == {"total": 3, "warnings": 1, "errors": 1}


def test_one_certificate_filters_and_sorting(tmp_path: Path) -> None:
    view = make_view({"tls": tls_config(tmp_path)})
    status, one = get(view, f"/api/certificates/{fingerprint(SOON[0])}")
    assert (status, one["commonName"], one["status"]) == (200, "soon.example.com", "warning")
    assert get(view, "/api/certificates/nope") == (404, {"message": "certificate not found: nope"})
    _, warning = get(view, "/api/certificates", status="warning")
    assert [c["commonName"] for c in warning] == ["soon.example.com"]
    _, found = get(view, "/api/certificates", search="www.shop")
    assert [c["commonName"] for c in found] == ["shop.example.com"]
    _, by_expiry = get(view, "/api/certificates", sortBy="validUntil", direction="desc")
    assert [c["commonName"] for c in by_expiry] == [
        "shop.example.com",
        "soon.example.com",
        "old.example.com",
    ]


def test_no_key_material_in_any_answer(tmp_path: Path) -> None:
    view = make_view({"tls": tls_config(tmp_path)})
    paths = ["/api/certificates", "/api/rawdata", "/api/overview"]
    paths += [f"/api/certificates/{fingerprint(c[0])}" for c in (GOOD, SOON, EXPIRED)]
    texts = [answer(view, "GET", path, {}, "/api", NOW).body.decode() for path in paths]
    assert "shop.example.com" in texts[0] and all(len(text) > 50 for text in texts)
    assert_no_key("".join(texts))


def test_certificates_through_a_real_run(
    proxynow_factory: Callable[..., ProxynowProcess], tmp_path: Path
) -> None:
    static = {
        "entryPoints": {
            "websecure": {"address": "127.0.0.1:0", "http": {"tls": {}}},
            "traefik": {"address": "127.0.0.1:0"},
        },
        "api": {"insecure": True},
    }
    dynamic = {
        "http": {
            "routers": {"app": {"rule": "Host(`shop.example.com`)", "service": "api@internal"}}
        },
        "tls": tls_config(tmp_path),
    }
    proxy = proxynow_factory(static, dynamic, workers=1)
    port = proxy.ports["traefik"]
    status, headers, body = request(port, "/api/certificates")
    assert status == 200 and headers["X-Next-Page"] == "1"
    listed = json.loads(body)
    assert {c["name"] for c in listed} == {fingerprint(c[0]) for c in (GOOD, SOON, EXPIRED)}
    texts = [body.decode()]
    for path in ("/api/rawdata", "/api/overview", f"/api/certificates/{fingerprint(GOOD[0])}"):
        status, _, answer_body = request(port, path)
        assert status == 200
        texts.append(answer_body.decode())
    assert json.loads(texts[2])["certificates"] == {"total": 3, "warnings": 1, "errors": 1}
    assert_no_key("".join(texts))
