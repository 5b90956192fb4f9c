"""What the control plane itself knows for the metrics: reloads and certificates.

`ControlStats.on_snapshot` is called with every snapshot the aggregator publishes: a new
dynamic configuration is what Traefik counts as a reload (`config_reloads_total`, and the
time of the last one in `config_last_reload_success`), and its TLS section lists the
certificates whose expiry `tls_certs_not_after` reports (labels cn, serial, sans: the
subject's common name, the decimal serial number, the DNS names joined by commas).
A certificate is parsed once; one that cannot be read is left out (the TLS build logs it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509

from proxynow.config.dynamic import DynamicConfig
from proxynow.edge.tls.contexts import load_pem
from proxynow.snapshot import Snapshot

__all__ = ["CertExpiry", "ControlStats", "cert_expiry"]


@dataclass(frozen=True, slots=True)
class CertExpiry:
    """One certificate's labels and its notAfter as a Unix timestamp."""

    cn: str
    serial: str
    sans: str
    not_after: float


def cert_expiry(pem: bytes) -> CertExpiry:
    """The labels and expiry of the leaf (first) certificate of a PEM chain."""
    cert = x509.load_pem_x509_certificate(pem)
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    cn = str(names[0].value) if names else ""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        dns = san.value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        dns = []
    return CertExpiry(
        cn, str(cert.serial_number), ",".join(dns), cert.not_valid_after_utc.timestamp()
    )


class ControlStats:
    """Reload counts and the certificates of the configuration being served."""

    __slots__ = ("_cache", "_clock", "certificates", "last_reload", "reloads")

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.reloads = 0
        self.last_reload = 0.0  # Unix time of the last configuration applied
        self.certificates: tuple[CertExpiry, ...] = ()
        self._cache: dict[str, CertExpiry | None] = {}

    def on_snapshot(self, snapshot: Snapshot) -> None:
        self.reloads += 1
        self.last_reload = self._clock()
        self.certificates = self._certificates(snapshot.config)

    def _certificates(self, config: DynamicConfig) -> tuple[CertExpiry, ...]:
        sources = [entry.cert_file for entry in config.tls.certificates]
        for store in config.tls.stores.values():
            if store.default_certificate is not None:
                sources.append(store.default_certificate.cert_file)
        old = self._cache
        cache = {source: old[source] if source in old else _read(source) for source in sources}
        self._cache = cache  # only the certificates still configured
        found = {expiry for expiry in cache.values() if expiry is not None}
        return tuple(sorted(found, key=lambda e: (e.cn, e.serial)))


def _read(source: str) -> CertExpiry | None:
    try:
        return cert_expiry(load_pem(source))
    except (OSError, ValueError):
        return None
