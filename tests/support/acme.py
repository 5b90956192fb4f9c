"""Shared helpers for the ACME tests: a recording sink, static configs, certificates,
verification."""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store

from proxynow import certs
from proxynow.config.dynamic import DynamicConfig
from proxynow.config.static import StaticConfig
from proxynow.providers.base import ProviderUpdate
from proxynow.snapshot import Snapshot
from tests.support.pebble import Pebble

__all__ = [
    "RecordingSink",
    "resolver_static",
    "router_snapshot",
    "self_signed",
    "until",
    "verify_chain",
]


class RecordingSink:
    def __init__(self) -> None:
        self.updates: list[ProviderUpdate] = []

    def submit(self, update: ProviderUpdate) -> None:
        self.updates.append(update)

    def report_errors(self, provider: str, errors: Sequence[str]) -> None:
        pass

    def certificates(self) -> list[tuple[str, str]]:
        if not self.updates:
            return []
        return [(c.cert_file, c.key_file) for c in self.updates[-1].config.tls.certificates]


async def until(condition: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        await asyncio.sleep(0.02)
    return result


def acme_static(ca_server: str, storage: Path, **acme: Any) -> StaticConfig:
    """A static configuration with one ACME resolver `le` (HTTP-01 on `web` by default)."""
    settings: dict[str, Any] = {
        "email": "admin@example.com",
        "storage": str(storage),
        "caServer": ca_server,
    }
    settings.update(acme)
    if "tlsChallenge" not in settings:
        settings.setdefault("httpChallenge", {"entryPoint": "web"})
    return StaticConfig.model_validate({"certificatesResolvers": {"le": {"acme": settings}}})


def resolver_static(pebble: Pebble, storage: Path, **acme: Any) -> StaticConfig:
    """`acme_static` for a running Pebble, trusting its CA."""
    trust = {"caCertificates": [str(pebble.ca_file)], "keyType": "EC256"}
    return acme_static(pebble.directory_url, storage, **{**trust, **acme})


def router_snapshot(*rules: str, version: int = 1, resolver: str = "le") -> Snapshot:
    routers = {
        f"r{i}@file": {"rule": rule, "service": "s@file", "tls": {"certResolver": resolver}}
        for i, rule in enumerate(rules)
    }
    return Snapshot(version, DynamicConfig.model_validate({"http": {"routers": routers}}))


def verify_chain(chain_pem: str | bytes, root_pem: bytes, name: str) -> x509.Certificate:
    """Verify the chain for `name` trusting only `root_pem`; the leaf."""
    data = chain_pem.encode() if isinstance(chain_pem, str) else chain_pem
    leaf, *intermediates = x509.load_pem_x509_certificates(data)
    store = Store(x509.load_pem_x509_certificates(root_pem))
    verifier = PolicyBuilder().store(store).build_server_verifier(x509.DNSName(name))
    verifier.verify(leaf, intermediates)
    return leaf


def self_signed(*names: str, days: int = 90) -> tuple[bytes, bytes]:
    """A self-signed certificate for `names` (the first is the subject) and its key, PEM."""
    return certs.self_signed(names[0], names, valid_for=datetime.timedelta(days=days))
