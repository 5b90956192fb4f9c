"""The certificates of the configuration being served, as Traefik v3.7's API shows them.

`certificates(config)` is pure apart from reading certificate files: every leaf
certificate of `tls.certificates` and of the stores' `defaultCertificate` (a file path or
inline PEM, as the workers load them) becomes the representation Traefik's
`/api/certificates` gives (pkg/api/certificate.go there): `name` (the SHA-256 fingerprint
of the DER, also the `{id}` of `/api/certificates/{id}`), `sans` (DNS names and IP
addresses, sorted), `notAfter`, `notBefore`, `serialNumber` (decimal), `commonName`,
`issuerOrg`, `issuerCN`, `issuerCountry`, `organization`, `country` (left out when
empty), `version` (`v3`), `keyType` (`RSA`, `ECDSA`, or ours: `Ed25519`, `Ed448`),
`keySize` (bits), `signatureAlgorithm` (Go's names: `SHA256-RSA`, `ECDSA-SHA256`),
`certFingerprint`, `publicKeyFingerprint`. Only the certificate is read: the key file is
never opened, so no key material can reach an answer.

`with_status(cert, now)` adds `status` from the expiry, as Traefik does: `disabled` once
expired, `warning` with less than 30 days left, else `enabled`. It is computed per answer,
since it changes with time and not with the configuration. A certificate that cannot be
read is left out (the TLS build of the workers reports it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from proxynow.config.dynamic import DynamicConfig
from proxynow.edge.tls.contexts import load_pem

__all__ = ["WARNING_DAYS", "certificates", "counts", "represent", "status", "with_status"]

Item = dict[str, Any]

WARNING_DAYS = 30
# cryptography's signature hash and key names → Go's x509.SignatureAlgorithm.String().
_GO_SIGNATURES = {
    ("rsa", "sha1"): "SHA1-RSA",
    ("rsa", "sha256"): "SHA256-RSA",
    ("rsa", "sha384"): "SHA384-RSA",
    ("rsa", "sha512"): "SHA512-RSA",
    ("rsa-pss", "sha256"): "SHA256-RSAPSS",
    ("rsa-pss", "sha384"): "SHA384-RSAPSS",
    ("rsa-pss", "sha512"): "SHA512-RSAPSS",
    ("ec", "sha1"): "ECDSA-SHA1",
    ("ec", "sha256"): "ECDSA-SHA256",
    ("ec", "sha384"): "ECDSA-SHA384",
    ("ec", "sha512"): "ECDSA-SHA512",
    ("ed25519", ""): "Ed25519",
}


def certificates(config: DynamicConfig) -> dict[str, Item]:
    """Fingerprint → representation (without `status`), sorted by common name."""
    found: dict[str, Item] = {}
    for source in _sources(config):
        item = _read(source)
        if item is not None:
            found.setdefault(item["name"], item)
    return dict(sorted(found.items(), key=lambda pair: (pair[1]["commonName"], pair[0])))


def _sources(config: DynamicConfig) -> Iterator[str]:
    for entry in config.tls.certificates:
        yield entry.cert_file
    for store in config.tls.stores.values():
        if store.default_certificate is not None:
            yield store.default_certificate.cert_file


def _read(source: str) -> Item | None:
    try:
        return represent(x509.load_pem_x509_certificate(load_pem(source)))
    except (OSError, ValueError):
        return None


def represent(cert: x509.Certificate) -> Item:
    """Traefik's representation of one certificate (without `status`)."""
    fingerprint = hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()
    key = cert.public_key()
    spki = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    key_type, key_size = _key_info(key)
    item: Item = {
        "name": fingerprint,
        "sans": _sans(cert),
        "notAfter": _go_time(cert.not_valid_after_utc),
        "notBefore": _go_time(cert.not_valid_before_utc),
        "serialNumber": str(cert.serial_number),
        "commonName": _first(cert.subject, x509.NameOID.COMMON_NAME),
    }
    optional = {
        "issuerOrg": _first(cert.issuer, x509.NameOID.ORGANIZATION_NAME),
        "issuerCN": _first(cert.issuer, x509.NameOID.COMMON_NAME),
        "issuerCountry": _first(cert.issuer, x509.NameOID.COUNTRY_NAME),
        "organization": _first(cert.subject, x509.NameOID.ORGANIZATION_NAME),
        "country": _first(cert.subject, x509.NameOID.COUNTRY_NAME),
    }
    item.update({key: value for key, value in optional.items() if value})
    item["version"] = f"v{cert.version.value + 1}"
    item["keyType"] = key_type
    if key_size:
        item["keySize"] = key_size
    item["signatureAlgorithm"] = _signature(cert)
    item["certFingerprint"] = fingerprint
    item["publicKeyFingerprint"] = hashlib.sha256(spki).hexdigest()
    return item


def _first(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    values = name.get_attributes_for_oid(oid)
    return str(values[0].value) if values else ""


def _sans(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names = [str(name) for name in san.get_values_for_type(x509.DNSName)]
    names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return sorted(names)


def _key_info(key: Any) -> tuple[str, int]:
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ECDSA", key.curve.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 0
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 0
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    return "Unknown", 0


def _signature(cert: x509.Certificate) -> str:
    key = cert.public_key()
    digest = cert.signature_hash_algorithm
    digest_name = digest.name if digest is not None else ""
    if isinstance(key, rsa.RSAPublicKey):
        oid = cert.signature_algorithm_oid
        family = "rsa-pss" if oid == x509.SignatureAlgorithmOID.RSASSA_PSS else "rsa"
    elif isinstance(key, ec.EllipticCurvePublicKey):
        family = "ec"
    else:
        family, digest_name = key.__class__.__name__.lower()[:7], ""
    return _GO_SIGNATURES.get((family, digest_name), cert.signature_algorithm_oid.dotted_string)


def _go_time(moment: datetime) -> str:
    """RFC 3339 as Go's time.Time marshals a UTC time: `2026-01-02T03:04:05Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status(not_after: str, now: datetime) -> str:
    """`disabled` when expired, `warning` within 30 days of the end, else `enabled`."""
    end = datetime.strptime(not_after, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    if end < now:
        return "disabled"
    if end - now < timedelta(days=WARNING_DAYS):
        return "warning"
    return "enabled"


def with_status(cert: Mapping[str, Any], now: datetime) -> Item:
    return {**cert, "status": status(cert["notAfter"], now)}


def counts(certs: Iterable[Mapping[str, Any]], now: datetime) -> Item:
    """The overview's `{total, warnings, errors}` of these certificates at `now`."""
    statuses = [status(cert["notAfter"], now) for cert in certs]
    return {
        "total": len(statuses),
        "warnings": statuses.count("warning"),
        "errors": statuses.count("disabled"),
    }
