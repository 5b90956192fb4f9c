"""`passTLSClientCert`: the client's TLS certificate, or fields of it, in request headers.

As Traefik v3: `pem` sets `X-Forwarded-Tls-Client-Cert` to the certificate's PEM without
its BEGIN/END lines and newlines (the base64 of its DER); `info` sets
`X-Forwarded-Tls-Client-Cert-Info` to the chosen fields, URL-query-escaped (Go's
url.QueryEscape), in Traefik's layout: `Subject="DC=..,C=..,ST=..,L=..,O=..,OU=..,SN=..,CN=.."`,
`Issuer="..."` (no OU), `SerialNumber="<decimal>"`, `NB="<unix>"`, `NA="<unix>"`,
`SAN="<dns>,<email>,<ip>,<uri>"`, joined by `;`, a field left out when it is empty.
A request without a client certificate gets neither header (nor keeps one an untrusted
client sent: the entrypoint drops those). The values are computed once per certificate
(a bounded cache): clients reuse their connection and certificate.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import quote_plus

from cryptography import x509
from cryptography.x509.oid import NameOID

from proxynow.edge.http.middlewares.base import BuildContext, Step

if TYPE_CHECKING:
    from proxynow.config.middlewares import CertInfo, CertIssuer, CertSubject, Middleware
    from proxynow.edge.http.exchange import Exchange

__all__ = ["build", "info_value", "pem_value"]

log = logging.getLogger(__name__)

CERT = b"X-Forwarded-Tls-Client-Cert"
CERT_INFO = b"X-Forwarded-Tls-Client-Cert-Info"
_CACHE_LIMIT = 1024
_DC = x509.ObjectIdentifier("0.9.2342.19200300.100.1.25")


def pem_value(der: bytes) -> bytes:
    """The PEM of `der` without its armour lines and newlines, as Traefik sends it."""
    return base64.b64encode(der)


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


def _cached(compute: Callable[[bytes], bytes]) -> Callable[[bytes], bytes]:
    """`compute` per certificate, remembered for up to `_CACHE_LIMIT` certificates."""
    seen: dict[bytes, bytes] = {}

    def value(der: bytes) -> bytes:
        found = seen.get(der)
        if found is None:
            if len(seen) >= _CACHE_LIMIT:
                seen.clear()
            found = seen[der] = compute(der)
        return found

    return value


def build(middleware: Middleware, context: BuildContext) -> Step:
    """The `passTLSClientCert` builder (registry.py)."""
    options = middleware.pass_tls_client_cert
    assert options is not None
    info = options.info
    pem = _cached(pem_value) if options.pem else None
    described = _cached(lambda der: info_value(der, info)) if info is not None else None
    if pem is None and described is None:
        return Step("passTLSClientCert")

    def request(exchange: Exchange) -> None:
        der = exchange.client_cert
        if not der:
            return  # no mutual TLS on this connection: Traefik logs it at debug level
        if pem is not None:
            exchange.head.set(CERT, pem(der))
        if described is not None:
            try:
                exchange.head.set(CERT_INFO, described(der))
            except ValueError:  # a certificate cryptography cannot read: sent without
                log.debug("router %s: unreadable client certificate", context.router)

    return Step("passTLSClientCert", request=request)
