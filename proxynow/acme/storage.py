"""ACME storage: one JSON file in Traefik's acme.json layout, written atomically.

The file holds every resolver's account and certificates::

    {"<resolver>": {"Account": {"Email", "Registration": {"body", "uri"}, "PrivateKey",
                                "KeyType"},
                    "Certificates": [{"domain": {"main", "sans"}, "certificate": <b64 PEM
                                      chain>, "key": <b64 PEM key>, "Store": "default"}]}}

It is the layout Traefik writes, so a Traefik acme.json is read as it is (migration is
pointing `storage` at it, or `import_traefik` to merge it into another file). The
contract (certmagic's, STYLE 11): check the storage, take the lock, check again,
obtain, store, unlock in `finally`. Writes go to a temporary file in the same directory
(mode 0600), are fsynced and renamed over the old file, and the directory is fsynced:
a crash mid-write leaves either the old file or the new one. The lock is an `flock` on
`<storage>.lock`, so two proxynow processes sharing a volume do not interleave their
writes, and each order holds a lock of its own (`locked(name)`) from the second check
to the store, so they do not order the same certificate twice either.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

__all__ = [
    "FILE_MODE",
    "Account",
    "ResolverData",
    "Storage",
    "StoredCertificate",
    "import_traefik",
]

FILE_MODE = 0o600


@dataclass(frozen=True, slots=True)
class Account:
    """An ACME account: the key (DER, PKCS#8 or traditional) and the registration."""

    email: str
    private_key_der: bytes
    registration: dict[str, Any] | None = None  # {"body": ..., "uri": ...}
    key_type: str = "EC256"

    def to_json(self) -> dict[str, Any]:
        return {
            "Email": self.email,
            "Registration": self.registration,
            "PrivateKey": base64.b64encode(self.private_key_der).decode(),
            "KeyType": self.key_type,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Account:
        return cls(
            email=data.get("Email") or "",
            private_key_der=base64.b64decode(data.get("PrivateKey") or ""),
            registration=data.get("Registration"),
            key_type=str(data.get("KeyType") or "EC256"),
        )


@dataclass(frozen=True, slots=True)
class StoredCertificate:
    """A certificate with its key, PEM; `main` and `sans` are the domains it was ordered for."""

    main: str
    sans: tuple[str, ...]
    certificate: bytes
    key: bytes
    store: str = "default"

    @property
    def domains(self) -> tuple[str, ...]:
        return (self.main, *self.sans)

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": {"main": self.main, "sans": list(self.sans) or None},
            "certificate": base64.b64encode(self.certificate).decode(),
            "key": base64.b64encode(self.key).decode(),
            "Store": self.store,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StoredCertificate:
        domain = data.get("domain") or data.get("Domain") or {}
        return cls(
            main=str(domain.get("main") or domain.get("Main") or "").lower(),
            sans=tuple(s.lower() for s in (domain.get("sans") or domain.get("SANs") or [])),
            certificate=base64.b64decode(data.get("certificate") or data.get("Certificate") or ""),
            key=base64.b64decode(data.get("key") or data.get("Key") or ""),
            store=str(data.get("Store") or "default"),
        )


@dataclass(frozen=True, slots=True)
class ResolverData:
    """One resolver's part of the file."""

    account: Account | None = None
    certificates: tuple[StoredCertificate, ...] = field(default_factory=tuple)

    def with_certificate(self, cert: StoredCertificate) -> ResolverData:
        """Replace the certificate for the same domain set, or add it."""
        kept = tuple(c for c in self.certificates if set(c.domains) != set(cert.domains))
        return replace(self, certificates=(*kept, cert))

    def to_json(self) -> dict[str, Any]:
        return {
            "Account": None if self.account is None else self.account.to_json(),
            "Certificates": [c.to_json() for c in self.certificates] or None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ResolverData:
        account = data.get("Account")
        return cls(
            account=Account.from_json(account) if account else None,
            certificates=tuple(
                StoredCertificate.from_json(c) for c in data.get("Certificates") or []
            ),
        )


class Storage:
    """The storage file; every method is blocking (call it from a thread)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, ResolverData]:
        """Every resolver's data; an absent or empty file is an empty storage."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return {}
        if not text.strip():
            return {}
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError(f"{self.path}: not a JSON object")
        return {name: ResolverData.from_json(data or {}) for name, data in raw.items()}

    def save(self, data: dict[str, ResolverData]) -> None:
        """Write atomically: temporary file (0600), fsync, rename, fsync the directory."""
        payload = json.dumps({k: v.to_json() for k, v in data.items()}, indent=2).encode()
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=directory)
        try:
            os.fchmod(fd, FILE_MODE)
            with os.fdopen(fd, "wb") as out:
                out.write(payload)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        _fsync_directory(directory)

    def update(self, resolver: str, data: ResolverData) -> None:
        """Under the lock: reload, replace one resolver's part, save."""
        with self.locked():
            current = self.load()
            current[resolver] = data
            self.save(current)

    @contextlib.contextmanager
    def locked(self, name: str = "") -> Iterator[None]:
        """An exclusive `flock`, released in `finally`: on `<storage>.lock` for the file,
        or, with a `name` (an order), on `<storage>.locks/<digest>.lock`, so that two
        processes sharing the storage never order the same certificate at once."""
        lock = Path(f"{self.path}.lock")
        if name:
            digest = hashlib.sha256(name.encode()).hexdigest()[:24]
            lock = Path(f"{self.path}.locks") / f"{digest}.lock"
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def import_traefik(source: str | os.PathLike[str], target: Storage) -> list[str]:
    """Merge a Traefik acme.json into `target`; the resolver names imported.

    Certificates and accounts already in `target` for the same resolver are kept unless
    the Traefik file has the same domain set (then Traefik's wins: it is the newer one
    at migration time).
    """
    imported = Storage(source).load()
    with target.locked():
        current = target.load()
        for name, data in imported.items():
            merged = current.get(name, ResolverData())
            if merged.account is None:
                merged = replace(merged, account=data.account)
            for cert in data.certificates:
                merged = merged.with_certificate(cert)
            current[name] = merged
        target.save(current)
    return sorted(imported)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
