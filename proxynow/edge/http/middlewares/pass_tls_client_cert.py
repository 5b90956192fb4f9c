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

from proxynow.edge.http.middlewares.base import BuildContext, Step

if TYPE_CHECKING:
    from proxynow.config.middlewares import CertInfo, Middleware
    from proxynow.edge.http.exchange import Exchange

__all__ = ["build", "pem_value"]

log = logging.getLogger(__name__)

CERT = b"X-Forwarded-Tls-Client-Cert"
CERT_INFO = b"X-Forwarded-Tls-Client-Cert-Info"
_CACHE_LIMIT = 1024


def pem_value(der: bytes) -> bytes:
    """The PEM of `der` without its armour lines and newlines, as Traefik sends it."""
    return base64.b64encode(der)


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


def _describer(info: CertInfo) -> Callable[[bytes], bytes]:
    # Imported here: cryptography is loaded only by a worker that has to read certificates.
    from proxynow.edge.http.middlewares.client_cert_info import info_value

    return _cached(lambda der: info_value(der, info))


def build(middleware: Middleware, context: BuildContext) -> Step:
    """The `passTLSClientCert` builder (registry.py)."""
    options = middleware.pass_tls_client_cert
    assert options is not None
    info = options.info
    pem = _cached(pem_value) if options.pem else None
    described = _describer(info) if info is not None else None
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
