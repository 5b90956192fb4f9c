"""Self-signed certificates: the default one served when none is configured, the
TLS-ALPN-01 challenge answer, and test and benchmark fixtures.

One builder for all of them: an ECDSA P-256 key, the subject and issuer alike, the SANs
given (an IP literal becomes an IP address entry), SHA-256, both halves as PEM.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["self_signed"]


def self_signed(
    common_name: str,
    names: Sequence[str],
    *,
    valid_for: datetime.timedelta,
    backdate: datetime.timedelta = datetime.timedelta(hours=1),
    extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
) -> tuple[bytes, bytes]:
    """(certificate PEM, PKCS#8 key PEM) for `names`, valid from `backdate` ago (clock
    skew) for `valid_for`; `extensions` are (extension, critical) pairs added as given."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - backdate)
        .not_valid_after(now + valid_for)
        .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), False)
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical)
    certificate = builder.sign(key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)
