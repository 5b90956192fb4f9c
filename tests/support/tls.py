"""What the TLS tests share: certificates from a trustme CA as PEM text, and client contexts."""

from __future__ import annotations

import ssl

import trustme


def pem_pair(cert: trustme.LeafCert) -> tuple[str, str]:
    """(certificate chain, private key) of a trustme leaf, as PEM text for a config file."""
    chain = b"".join(blob.bytes() for blob in cert.cert_chain_pems).decode()
    return chain, cert.private_key_pem.bytes().decode()


def client_context(ca: trustme.CA | None, alpn: list[str] | None = None) -> ssl.SSLContext:
    """A client context trusting `ca` only, or trusting nothing and checking nothing."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca is None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        ca.configure_trust(context)
    if alpn:
        context.set_alpn_protocols(alpn)
    return context
