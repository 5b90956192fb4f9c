"""The storage file: Traefik's layout, 0600, atomic replacement, the lock, the import."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from proxynow.acme.domains import DomainSet
from proxynow.acme.manager import AcmeManager, order_lock_name
from proxynow.acme.storage import Account, ResolverData, Storage, StoredCertificate, import_traefik
from proxynow.ipc.challenges import ChallengeSet
from tests.support.acme import RecordingSink, acme_static, router_snapshot, self_signed, until


def traefik_acme_json(path: Path, cert: bytes, key: bytes) -> None:
    """A file as Traefik v3 writes it (RSA account key as base64 PKCS#1 DER)."""
    account_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = account_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    data = {
        "le": {
            "Account": {
                "Email": "admin@example.com",
                "Registration": {
                    "body": {"status": "valid", "contact": ["mailto:admin@example.com"]},
                    "uri": "https://acme.example/acct/1",
                },
                "PrivateKey": base64.b64encode(der).decode(),
                "KeyType": "4096",
            },
            "Certificates": [
                {
                    "domain": {"main": "old.example.com", "sans": ["www.old.example.com"]},
                    "certificate": base64.b64encode(cert).decode(),
                    "key": base64.b64encode(key).decode(),
                    "Store": "default",
                }
            ],
        }
    }
    path.write_text(json.dumps(data, indent=2))


def test_save_writes_mode_0600_even_under_a_permissive_umask(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "sub" / "acme.json")
    previous = os.umask(0)
    try:
        storage.save({"le": ResolverData()})
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(storage.path).st_mode) == 0o600
    assert storage.load() == {"le": ResolverData()}


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = Storage(tmp_path / "acme.json")
    cert, key = self_signed("a.example.com")
    old = {"le": ResolverData(certificates=(StoredCertificate("a.example.com", (), cert, key),))}
    storage.save(old)
    before = storage.path.read_bytes()

    def crash(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        storage.save({"le": ResolverData()})
    monkeypatch.undo()
    assert storage.path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acme.json"]
    assert storage.load() == old


def test_the_lock_excludes_another_process(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "acme.json")
    probe = (
        "import fcntl, os, sys\n"
        "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
        "try:\n    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept OSError:\n"
        "    sys.exit(3)\n"
    )
    lock = f"{storage.path}.lock"
    with storage.locked():
        held = subprocess.run([sys.executable, "-c", probe, lock], check=False)
    free = subprocess.run([sys.executable, "-c", probe, lock], check=False)
    assert (held.returncode, free.returncode) == (3, 0)


def test_round_trip_keeps_accounts_and_certificates(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "acme.json")
    cert, key = self_signed("a.example.com", "b.example.com")
    data = ResolverData(
        account=Account("x@example.com", b"\x01\x02", {"body": {}, "uri": "u"}),
        certificates=(StoredCertificate("a.example.com", ("b.example.com",), cert, key),),
    )
    storage.update("le", data)
    storage.update("other", ResolverData())
    assert storage.load() == {"le": data, "other": ResolverData()}
    replaced = data.with_certificate(
        StoredCertificate("b.example.com", ("a.example.com",), key, cert)
    )
    assert len(replaced.certificates) == 1  # the same domain set replaces, in any order


def test_a_traefik_acme_json_is_read_and_imported(tmp_path: Path) -> None:
    cert, key = self_signed("old.example.com", "www.old.example.com")
    source = tmp_path / "traefik-acme.json"
    traefik_acme_json(source, cert, key)
    (stored,) = Storage(source).load()["le"].certificates
    assert (stored.domains, stored.certificate, stored.key) == (
        ("old.example.com", "www.old.example.com"),
        cert,
        key,
    )
    target = Storage(tmp_path / "acme.json")
    assert import_traefik(source, target) == ["le"]
    imported = target.load()["le"]
    assert imported.certificates == (stored,)
    assert imported.account is not None
    assert imported.account.registration == {
        "body": {"status": "valid", "contact": ["mailto:admin@example.com"]},
        "uri": "https://acme.example/acct/1",
    }
    assert stat.S_IMODE(os.stat(target.path).st_mode) == 0o600


async def test_the_manager_serves_an_imported_certificate_without_ordering(tmp_path: Path) -> None:
    cert, key = self_signed("old.example.com", "www.old.example.com")
    traefik_acme_json(tmp_path / "acme.json", cert, key)
    static = acme_static("https://127.0.0.1:9/dir", tmp_path / "acme.json")  # never contacted
    published: list[ChallengeSet] = []
    manager = AcmeManager(static, published.append)
    manager.on_snapshot(router_snapshot("Host(`www.old.example.com`)"))
    sink = RecordingSink()
    task = asyncio.create_task(manager.run(sink))
    try:
        certificates = await until(sink.certificates, what="the imported certificate")
        assert certificates == [(cert.decode(), key.decode())]
        for _ in range(10):
            await asyncio.sleep(0)
        assert manager.orders_started == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_an_order_waits_for_another_process_holding_its_lock(tmp_path: Path) -> None:
    """The other process stores the certificate while holding the order's lock: the
    manager then uses it and never contacts its (unreachable) CA."""
    storage = Storage(tmp_path / "acme.json")
    static = acme_static("https://127.0.0.1:9/dir", storage.path)  # nothing listens
    manager = AcmeManager(static, [].append)
    manager.on_snapshot(router_snapshot("Host(`shared.example.com`)"))
    sink = RecordingSink()
    cert, key = self_signed("shared.example.com")
    with storage.locked(order_lock_name("le", DomainSet(("shared.example.com",)))):
        task = asyncio.create_task(manager.run(sink))
        await until(lambda: manager.orders_started == 1, what="the order to start")
        other = ResolverData(certificates=(StoredCertificate("shared.example.com", (), cert, key),))
        storage.update("le", other)
    try:
        assert await until(sink.certificates, what="the other process's certificate") == [
            (cert.decode(), key.decode())
        ]
        assert manager.orders_started == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
