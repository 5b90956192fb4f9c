"""The `X-Forwarded-Tls-Client-Cert-Info` value of a certificate (passTLSClientCert's
`info`; the layout is described in pass_tls_client_cert.py).

A module of its own so that only a worker with an `info` option configured imports
cryptography (about 5.5 MB of private memory per process: docs/benchmarks.md, "A worker's
imports and memory").
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote_plus

from cryptography import x509
from cryptography.x509.oid import NameOID

if TYPE_CHECKING:
    from proxynow.config.middlewares import CertInfo, CertIssuer, CertSubject

__all__ = ["info_value"]

_DC = x509.ObjectIdentifier("0.9.2342.19200300.100.1.25")


def info_value(der: bytes, info: CertInfo) -> bytes:
    """The `X-Forwarded-Tls-Client-Cert-Info` value for one certificate."""
    cert = x509.load_der_x509_certificate(der)
    values: list[str] = []
    subject = _dn(
        cert.subject, info.subject, info.subject is not None and info.subject.organizational_unit
    )
    if subject:
        values.append(f'Subject="{subject}"')
    issuer = _dn(cert.issuer, info.issuer, False)
    if issuer:
        values.append(f'Issuer="{issuer}"')
    if info.serial_number:
        values.append(f'SerialNumber="{cert.serial_number}"')
    if info.not_before:
        values.append(f'NB="{int(cert.not_valid_before_utc.timestamp())}"')
    if info.not_after:
        values.append(f'NA="{int(cert.not_valid_after_utc.timestamp())}"')
    if info.sans:
        sans = _sans(cert)
        if sans:
            values.append(f'SAN="{",".join(sans)}"')
    return quote_plus(";".join(values), safe="").encode("ascii")


def _dn(name: x509.Name, options: CertSubject | CertIssuer | None, with_ou: bool) -> str:
    """Traefik's getSubjectDNInfo / getIssuerDNInfo: the chosen parts, in its order."""
    if options is None:
        return ""
    parts: list[str] = []
    if options.domain_component:
        parts += [f"DC={_text(a)}" for a in name if a.oid == _DC]
    chosen = (
        (options.country, NameOID.COUNTRY_NAME, "C", False),
        (options.province, NameOID.STATE_OR_PROVINCE_NAME, "ST", False),
        (options.locality, NameOID.LOCALITY_NAME, "L", False),
        (options.organization, NameOID.ORGANIZATION_NAME, "O", False),
        (with_ou, NameOID.ORGANIZATIONAL_UNIT_NAME, "OU", False),
        (options.serial_number, NameOID.SERIAL_NUMBER, "SN", True),
        (options.common_name, NameOID.COMMON_NAME, "CN", True),
    )
    for wanted, oid, label, single in chosen:
        if not wanted:
            continue
        found = [_text(a) for a in name.get_attributes_for_oid(oid) if _text(a)]
        # Go's pkix.Name keeps the last CN and serialNumber, every value of the others.
        parts += [f"{label}={value}" for value in (found[-1:] if single else found)]
    return ",".join(parts)


def _text(attribute: x509.NameAttribute) -> str:
    value = attribute.value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _sans(cert: x509.Certificate) -> list[str]:
    """DNS names, e-mail addresses, IP addresses, then URIs (Go's x509 fields' order)."""
    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    names = extension.value
    found: list[str] = list(names.get_values_for_type(x509.DNSName))
    found += names.get_values_for_type(x509.RFC822Name)
    found += [str(ip) for ip in names.get_values_for_type(x509.IPAddress)]
    found += names.get_values_for_type(x509.UniformResourceIdentifier)
    return found
