"""A client CA and a client certificate with every field passTLSClientCert can pass
(subject and issuer parts, several OUs, SANs of each kind), written as PEM files."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DC = x509.ObjectIdentifier("0.9.2342.19200300.100.1.25")
NOT_BEFORE = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
NOT_AFTER = datetime.datetime(2036, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
SERIAL = 123456789012345678901234567890


@dataclass(frozen=True, slots=True)
class ClientFiles:
    ca: Path  # the CA certificate (for clientAuth.caFiles)
    cert: Path
    key: Path
    der: bytes  # the client certificate


def _name(*attributes: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])


def write_client_certs(directory: Path) -> ClientFiles:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(
        (DC, "org"),
        (NameOID.COUNTRY_NAME, "FR"),
        (NameOID.STATE_OR_PROVINCE_NAME, "Occitanie"),
        (NameOID.LOCALITY_NAME, "Toulouse"),
        (NameOID.ORGANIZATION_NAME, "Issuer Org"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "Issuer Unit"),
        (NameOID.COMMON_NAME, "Client CA"),
    )
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(
        (DC, "example"),
        (DC, "org"),
        (NameOID.COUNTRY_NAME, "DE"),
        (NameOID.STATE_OR_PROVINCE_NAME, "Bayern"),
        (NameOID.LOCALITY_NAME, "München"),
        (NameOID.ORGANIZATION_NAME, "Acme, Inc."),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "Ops"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "Edge"),
        (NameOID.SERIAL_NUMBER, "S-42"),
        (NameOID.COMMON_NAME, "client one"),
    )
    sans = x509.SubjectAlternativeName(
        [
            x509.UniformResourceIdentifier("spiffe://example.org/client"),
            x509.IPAddress(ipaddress.ip_address("2001:db8::1")),
            x509.RFC822Name("client@example.org"),
            x509.DNSName("client.example.org"),
            x509.IPAddress(ipaddress.ip_address("10.1.2.3")),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(SERIAL)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(sans, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = ClientFiles(
        directory / "client-ca.crt",
        directory / "client.crt",
        directory / "client.key",
        cert.public_bytes(serialization.Encoding.DER),
    )
    paths.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


# What Traefik puts in X-Forwarded-Tls-Client-Cert-Info for that certificate with every
# info option on, before url.QueryEscape (its layout, pass_tls_client_cert.go).
EXPECTED_INFO = (
    'Subject="DC=example,DC=org,C=DE,ST=Bayern,L=München,O=Acme, Inc.,OU=Ops,OU=Edge,'
    'SN=S-42,CN=client one";'
    'Issuer="DC=org,C=FR,ST=Occitanie,L=Toulouse,O=Issuer Org,CN=Client CA";'
    f'SerialNumber="{SERIAL}";'
    f'NB="{int(NOT_BEFORE.timestamp())}";NA="{int(NOT_AFTER.timestamp())}";'
    'SAN="client.example.org,client@example.org,2001:db8::1,10.1.2.3,'
    'spiffe://example.org/client"'
)


def mtls_dynamic(
    backend_url: str, server: tuple[Path, Path], client_ca: Path, entrypoint: str
) -> dict[str, Any]:
    """A router on `entrypoint` for Host(`h.test`) requiring a client certificate from
    `client_ca`, with passTLSClientCert passing the PEM and every info field."""
    info = {
        "notAfter": True,
        "notBefore": True,
        "sans": True,
        "serialNumber": True,
        "subject": dict.fromkeys(_SUBJECT_FIELDS, True),
        "issuer": dict.fromkeys(_SUBJECT_FIELDS[:-1], True),
    }
    return {
        "http": {
            "routers": {
                "cert": {
                    "rule": "Host(`h.test`)",
                    "entryPoints": [entrypoint],
                    "service": "echo",
                    "middlewares": ["cert"],
                    "tls": {"options": "mtls"},
                }
            },
            "middlewares": {"cert": {"passTLSClientCert": {"pem": True, "info": info}}},
            "services": {"echo": {"loadBalancer": {"servers": [{"url": backend_url}]}}},
        },
        "tls": {
            "certificates": [{"certFile": str(server[0]), "keyFile": str(server[1])}],
            "options": {
                "mtls": {
                    "clientAuth": {
                        "caFiles": [str(client_ca)],
                        "clientAuthType": "RequireAndVerifyClientCert",
                    }
                }
            },
        },
    }


_SUBJECT_FIELDS = [
    "country",
    "province",
    "locality",
    "organization",
    "commonName",
    "serialNumber",
    "domainComponent",
    "organizationalUnit",
]


def client_context(files: ClientFiles) -> ssl.SSLContext:
    """A client presenting the client certificate, checking nothing of the server."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.load_cert_chain(files.cert, files.key)
    return context


def tls_backend_headers(
    port: int, context: ssl.SSLContext, headers: tuple[tuple[str, str], ...] = ()
) -> dict[str, list[str]]:
    """One request for h.test over TLS; the headers the echo backend got (lower-case
    names), or {"status": [...]} when the answer was not the backend's 200."""
    lines = ["GET / HTTP/1.1", "Host: h.test", *(f"{n}: {v}" for n, v in headers)]
    lines.append("Connection: close")
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="h.test") as tls,
    ):
        tls.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b" ", 2)[1].decode()
    if status != "200":
        return {"status": [status]}
    found: dict[str, list[str]] = {}
    for line in body.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        found.setdefault(name.strip().lower(), []).append(value.strip())
    return found
