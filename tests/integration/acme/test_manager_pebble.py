"""The manager against a real Pebble, with thread-based challenge answerers."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from cryptography import x509

from proxynow.acme.manager import AcmeManager
from proxynow.acme.storage import Storage
from proxynow.config.static import StaticConfig
from proxynow.snapshot import Snapshot
from tests.integration.acme.responders import Responders
from tests.support.acme import (
    RecordingSink,
    acme_static,
    resolver_static,
    router_snapshot,
    until,
    verify_chain,
)
from tests.support.pebble import PebbleFactory


@asynccontextmanager
async def running(
    static: StaticConfig, publish: Callable[..., None], snapshot: Snapshot
) -> AsyncIterator[tuple[AcmeManager, RecordingSink]]:
    manager = AcmeManager(static, publish)
    sink = RecordingSink()
    manager.on_snapshot(snapshot)
    task = asyncio.create_task(manager.run(sink), name="acme manager under test")
    try:
        yield manager, sink
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_http01_issues_a_certificate_trusted_by_pebble_root(
    pebble_factory: PebbleFactory, responders: Responders, tmp_path: Path
) -> None:
    pebble = pebble_factory.start(http_port=responders.http_port, tls_port=responders.tls_port)
    storage = tmp_path / "acme.json"
    static = resolver_static(pebble, storage)
    snapshot = router_snapshot("Host(`a.example.com`) || Host(`b.example.com`)")
    async with running(static, responders.publish, snapshot) as (manager, sink):
        ((chain, key),) = await until(sink.certificates, what="a certificate")
        leaf = verify_chain(chain, pebble.root_pem(), "b.example.com")
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert sorted(san.get_values_for_type(x509.DNSName)) == ["a.example.com", "b.example.com"]
        assert "PRIVATE KEY" in key
        assert manager.orders_started == 1
    assert any(c.http01 for c in responders.published)
    assert not responders.current.http01  # answers withdrawn once the order is done
    assert stat.S_IMODE(os.stat(storage).st_mode) == 0o600
    (stored,) = Storage(storage).load()["le"].certificates
    assert stored.domains == ("a.example.com", "b.example.com")


async def test_tls_alpn01_issues_a_certificate(
    pebble_factory: PebbleFactory, responders: Responders, tmp_path: Path
) -> None:
    pebble = pebble_factory.start(http_port=responders.http_port, tls_port=responders.tls_port)
    static = resolver_static(pebble, tmp_path / "acme.json", tlsChallenge={})
    async with running(static, responders.publish, router_snapshot("Host(`t.example.com`)")) as (
        _,
        sink,
    ):
        ((chain, _key),) = await until(sink.certificates, what="a certificate")
        verify_chain(chain, pebble.root_pem(), "t.example.com")
    assert any("t.example.com" in c.tlsalpn01 for c in responders.published)
    assert not any(c.http01 for c in responders.published)


async def test_restart_reuses_the_stored_certificate(
    pebble_factory: PebbleFactory, responders: Responders, tmp_path: Path
) -> None:
    pebble = pebble_factory.start(http_port=responders.http_port, tls_port=responders.tls_port)
    static = resolver_static(pebble, tmp_path / "acme.json")
    snapshot = router_snapshot("Host(`r.example.com`)")
    async with running(static, responders.publish, snapshot) as (first, sink):
        (issued,) = await until(sink.certificates, what="a certificate")
    assert first.orders_started == 1
    async with running(static, responders.publish, snapshot) as (second, sink):
        assert await until(sink.certificates, what="the stored certificate") == [issued]
        # Give the manager a chance to (wrongly) order: a snapshot wakes its scheduler.
        second.on_snapshot(router_snapshot("Host(`r.example.com`)", version=2))
        for _ in range(10):  # the scheduler runs within a few loop iterations of a wake
            await asyncio.sleep(0)
    assert second.orders_started == 0


async def test_renewal_with_a_short_lifetime(
    pebble_factory: PebbleFactory, responders: Responders, tmp_path: Path
) -> None:
    # Pebble issues 6-second certificates: renewal is due 4 s after issuance.
    pebble = pebble_factory.start(
        http_port=responders.http_port, tls_port=responders.tls_port, validity=6
    )
    static = resolver_static(pebble, tmp_path / "acme.json")
    async with running(static, responders.publish, router_snapshot("Host(`n.example.com`)")) as (
        manager,
        sink,
    ):
        (first,) = await until(sink.certificates, what="a certificate")
        renewed = await until(
            lambda: sink.certificates() != [first] and sink.certificates(),
            timeout=30,
            what="a renewed certificate",
        )
        assert len(renewed) == 1
        verify_chain(renewed[0][0], pebble.root_pem(), "n.example.com")
        assert manager.orders_started >= 2


async def test_unreachable_ca_is_retried_with_backoff(
    responders: Responders, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.support.pebble import free_port

    static = acme_static(f"https://127.0.0.1:{free_port()}/dir", tmp_path / "acme.json")
    async with running(static, responders.publish, router_snapshot("Host(`u.example.com`)")) as (
        manager,
        sink,
    ):
        await until(lambda: manager.orders_started >= 3, timeout=15, what="three attempts")
        assert sink.certificates() == []
    messages = [r.getMessage() for r in caplog.records]
    failures = [m for m in messages if "cannot get a certificate for u.example.com" in m]
    assert "attempt 1" in failures[0] and "retrying in 1s" in failures[0]
    assert "attempt 2" in failures[1] and "retrying in 2s" in failures[1]


async def test_an_account_unknown_to_a_new_ca_is_registered_again(
    pebble_factory: PebbleFactory, responders: Responders, tmp_path: Path
) -> None:
    storage = tmp_path / "acme.json"
    old = pebble_factory.start(http_port=responders.http_port, tls_port=responders.tls_port)
    async with running(
        resolver_static(old, storage), responders.publish, router_snapshot("Host(`a.example.com`)")
    ) as (_, sink):
        await until(sink.certificates, what="a certificate from the first CA")
    old_account = Storage(storage).load()["le"].account
    old.stop()
    new = pebble_factory.start(http_port=responders.http_port, tls_port=responders.tls_port)
    snapshot = router_snapshot("Host(`b.example.com`)")
    async with running(resolver_static(new, storage), responders.publish, snapshot) as (_, sink):
        await until(lambda: len(sink.certificates()) == 2, what="a certificate from the new CA")
    account = Storage(storage).load()["le"].account
    assert old_account is not None and account is not None
    assert account.registration != old_account.registration
    assert account.private_key_der == old_account.private_key_der  # same key, new account


async def test_external_account_binding(
    pebble_factory: PebbleFactory, responders: Responders, tmp_path: Path
) -> None:
    hmac = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"
    pebble = pebble_factory.start(
        http_port=responders.http_port, tls_port=responders.tls_port, eab_keys={"kid-1": hmac}
    )
    static = resolver_static(
        pebble, tmp_path / "acme.json", eab={"kid": "kid-1", "hmacEncoded": hmac}
    )
    async with running(static, responders.publish, router_snapshot("Host(`e.example.com`)")) as (
        _,
        sink,
    ):
        ((chain, _key),) = await until(sink.certificates, what="a certificate")
        verify_chain(chain, pebble.root_pem(), "e.example.com")


async def test_without_external_account_binding_the_ca_refuses(
    pebble_factory: PebbleFactory,
    responders: Responders,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pebble = pebble_factory.start(
        http_port=responders.http_port, tls_port=responders.tls_port, eab_keys={"kid-1": "a2V5"}
    )
    static = resolver_static(pebble, tmp_path / "acme.json")
    async with running(static, responders.publish, router_snapshot("Host(`e.example.com`)")) as (
        _,
        sink,
    ):
        await until(
            lambda: any("(attempt 1)" in r.getMessage() for r in caplog.records), what="a failure"
        )
        assert sink.certificates() == []
    (failure,) = [r.getMessage() for r in caplog.records if "(attempt 1)" in r.getMessage()]
    assert "externalAccountRequired" in failure or "External Account" in failure


async def test_preferred_chain_picks_the_alternate_root(
    pebble_factory: PebbleFactory, responders: Responders, tmp_path: Path
) -> None:
    pebble = pebble_factory.start(
        http_port=responders.http_port,
        tls_port=responders.tls_port,
        env={"PEBBLE_ALTERNATE_ROOTS": "1"},
    )
    alternate = x509.load_pem_x509_certificate(pebble.root_pem(1))
    (name,) = alternate.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    static = resolver_static(pebble, tmp_path / "acme.json", preferredChain=str(name.value))
    async with running(static, responders.publish, router_snapshot("Host(`p.example.com`)")) as (
        _,
        sink,
    ):
        ((chain, _key),) = await until(sink.certificates, what="a certificate")
    verify_chain(chain, pebble.root_pem(1), "p.example.com")
    with pytest.raises(x509.verification.VerificationError):
        verify_chain(chain, pebble.root_pem(0), "p.example.com")


async def test_ca_server_name_is_what_the_ca_certificate_is_checked_against(
    pebble_factory: PebbleFactory,
    responders: Responders,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Pebble's HTTPS certificate names localhost, 127.0.0.1 and ::1 only.
    pebble = pebble_factory.start(http_port=responders.http_port, tls_port=responders.tls_port)
    wrong = resolver_static(pebble, tmp_path / "wrong.json", caServerName="ca.example.com")
    async with running(wrong, responders.publish, router_snapshot("Host(`w.example.com`)")) as (
        _,
        sink,
    ):
        await until(
            lambda: any("(attempt 1)" in r.getMessage() for r in caplog.records), what="a failure"
        )
        assert sink.certificates() == []
    (failure,) = [r.getMessage() for r in caplog.records if "(attempt 1)" in r.getMessage()]
    assert "ca.example.com" in failure
    right = resolver_static(pebble, tmp_path / "right.json", caServerName="localhost")
    async with running(right, responders.publish, router_snapshot("Host(`w.example.com`)")) as (
        _,
        sink,
    ):
        await until(sink.certificates, what="a certificate")


async def test_one_order_per_domain_set_while_snapshots_keep_coming(
    pebble_factory: PebbleFactory, responders: Responders, tmp_path: Path
) -> None:
    pebble = pebble_factory.start(http_port=responders.http_port, tls_port=responders.tls_port)
    static = resolver_static(pebble, tmp_path / "acme.json")
    rules = ("Host(`x.example.com`) || Host(`y.example.com`)", "Host(`y.example.com`)")
    async with running(static, responders.publish, router_snapshot(*rules)) as (manager, sink):
        for version in range(2, 12):  # the same domains again while the order runs
            manager.on_snapshot(router_snapshot(*reversed(rules), version=version))
            await asyncio.sleep(0)
        await until(sink.certificates, what="a certificate")
        assert manager.orders_started == 1
