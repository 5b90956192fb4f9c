"""The ACME manager: a provider named `acme` that keeps the resolvers' certificates.

The control plane calls `on_snapshot` with every published snapshot; the manager works
out which domain sets each resolver must hold (`proxynow.acme.domains`), orders what is
missing or due for renewal, and submits every certificate it holds as
`DynamicConfig(tls.certificates=[{certFile: <PEM chain>, keyFile: <PEM key>}])`, so
certificates reach the workers the way every other configuration does.

Orders run in threads (the `acme` library blocks); the loop only schedules them: one
task per distinct domain set, never two for the same set. Challenge answers go to the
workers through `publish_challenges` (the supervisor's), and the order answers the CA
only once that call returns (or its awaitable completes). Failures back off per domain
set (`renewal.Backoff`); the last good certificate keeps serving. Storage follows
certmagic's contract: check, lock, check again, obtain, store atomically.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from proxynow.acme.client import AcmeFailure, AcmeSession, Issued
from proxynow.acme.domains import DomainSet, covers, wanted_domains
from proxynow.acme.renewal import Backoff, certificate_times, renew_at
from proxynow.acme.storage import ResolverData, Storage, StoredCertificate
from proxynow.config.dynamic import DynamicConfig
from proxynow.config.static import ACME, StaticConfig
from proxynow.ipc.challenges import ChallengeSet
from proxynow.providers.base import ConfigSink, ProviderUpdate
from proxynow.snapshot import Snapshot

__all__ = ["PROVIDER_NAME", "AcmeManager", "order_lock_name"]

log = logging.getLogger(__name__)

PROVIDER_NAME = "acme"
CHECK_INTERVAL = 60.0
"""Seconds between renewal checks when nothing else wakes the manager."""

PublishChallenges = Callable[[ChallengeSet], Awaitable[None] | None]
OrderKey = tuple[str, frozenset[str]]


class AcmeManager:
    """Certificates for every `certificatesResolvers.<name>.acme` resolver."""

    def __init__(
        self,
        static: StaticConfig,
        publish_challenges: PublishChallenges,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._resolvers: dict[str, ACME] = {
            name: r.acme for name, r in static.certificates_resolvers.items() if r.acme
        }
        self._storages = {name: Storage(acme.storage) for name, acme in self._resolvers.items()}
        self._publish = publish_challenges
        self._clock = clock
        self._data: dict[str, ResolverData] = {}
        self._wanted: dict[str, list[DomainSet]] = {}
        self._problems: set[str] = set()
        self._orders: dict[OrderKey, asyncio.Task[None]] = {}
        self._backoff: dict[OrderKey, Backoff] = {}
        self._challenges: dict[OrderKey, ChallengeSet] = {}
        self._sessions: dict[str, AcmeSession] = {}
        self._session_lock = threading.Lock()
        self._wake = asyncio.Event()
        self.orders_started = 0

    @property
    def name(self) -> str:
        return PROVIDER_NAME

    @property
    def resolvers(self) -> frozenset[str]:
        return frozenset(self._resolvers)

    def on_snapshot(self, snapshot: Snapshot) -> None:
        """Take the domain sets of a newly published snapshot (never blocks)."""
        dns = {name: acme.dns_challenge is not None for name, acme in self._resolvers.items()}
        wanted, problems = wanted_domains(snapshot.config, dns)
        for problem in problems:
            if problem not in self._problems:
                log.error("acme: %s", problem)
        self._problems = set(problems)
        if wanted != self._wanted:
            self._wanted = wanted
            self._wake.set()

    async def run(self, sink: ConfigSink) -> None:
        """Load the storage, serve what it holds, then order and renew until cancelled."""
        for name, storage in self._storages.items():
            loaded = await asyncio.to_thread(storage.load)
            self._data[name] = loaded.get(name, ResolverData())
        self._submit(sink)
        try:
            while True:
                self._wake.clear()
                delay = self._schedule(sink)
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
                # that arrives as the wait completes, and the manager would never stop.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(delay, 0.0)):
                        await self._wake.wait()
        finally:
            for task in list(self._orders.values()):
                task.cancel()
            await asyncio.gather(*self._orders.values(), return_exceptions=True)
            await asyncio.to_thread(self._close_sessions)

    # ------------------------------------------------------------ scheduling (loop)

    def _schedule(self, sink: ConfigSink) -> float:
        """Start every order that is due; the seconds until the next one is."""
        now = self._clock()
        next_due = now + CHECK_INTERVAL
        for resolver, domains in self._targets():
            key = (resolver, domains.key)
            if key in self._orders:
                continue
            due = max(self._due(resolver, domains), self._backoff.get(key, Backoff()).next_at)
            if due <= now:
                self._start_order(sink, resolver, domains)
            else:
                next_due = min(next_due, due)
        return next_due - now

    def _targets(self) -> list[tuple[str, DomainSet]]:
        """Wanted domain sets, then stored ones nobody asks for (still renewed, as Traefik)."""
        targets = [(r, d) for r, sets in self._wanted.items() for d in sets]
        wanted = {(r, d.key) for r, d in targets}
        for resolver, data in self._data.items():
            for cert in data.certificates:
                stored = DomainSet(cert.domains)
                if (resolver, stored.key) not in wanted:
                    targets.append((resolver, stored))
        return targets

    def _due(self, resolver: str, domains: DomainSet) -> float:
        """When `domains` needs an order: now if nothing covers it, else its renewal time."""
        cert = self._covering(resolver, domains)
        if cert is None:
            return 0.0
        not_before, not_after = certificate_times(cert.certificate)
        return renew_at(not_before, not_after, self._resolvers[resolver].certificates_duration)

    def _covering(self, resolver: str, domains: DomainSet) -> StoredCertificate | None:
        data = self._data.get(resolver, ResolverData())
        exact = [c for c in data.certificates if frozenset(c.domains) == domains.key]
        if exact:
            return exact[0]
        for cert in data.certificates:
            if covers(cert.domains, domains.names):
                return cert
        return None

    def _start_order(self, sink: ConfigSink, resolver: str, domains: DomainSet) -> None:
        key = (resolver, domains.key)
        self.orders_started += 1
        task = asyncio.create_task(
            self._order(sink, resolver, domains), name=f"acme order {resolver} {domains}"
        )
        self._orders[key] = task

    # ------------------------------------------------------------ one order

    async def _order(self, sink: ConfigSink, resolver: str, domains: DomainSet) -> None:
        key = (resolver, domains.key)
        log.info("acme %s: ordering a certificate for %s", resolver, domains)
        loop = asyncio.get_running_loop()
        try:
            issued = await asyncio.to_thread(self._obtain, loop, key, resolver, domains)
        except AcmeFailure as exc:
            self._failed(key, domains, str(exc), exc.retry_after)
        except Exception as exc:  # a bug or an unexpected library error: keep serving
            log.debug("acme %s: order for %s failed", resolver, domains, exc_info=True)
            self._failed(key, domains, f"{type(exc).__name__}: {exc}", None)
        else:
            self._backoff.pop(key, None)
            self._issued(sink, resolver, domains, issued)
        finally:
            del self._orders[key]
            if self._challenges.pop(key, None) is not None:
                await self._publish_all()
            self._wake.set()

    def _failed(self, key: OrderKey, domains: DomainSet, why: str, retry: float | None) -> None:
        backoff = self._backoff.get(key, Backoff()).failed(self._clock(), retry)
        self._backoff[key] = backoff
        log.error(
            "acme %s: cannot get a certificate for %s (attempt %d): %s; retrying in %.0fs",
            key[0],
            domains,
            backoff.failures,
            why,
            backoff.next_at - self._clock(),
        )

    def _issued(self, sink: ConfigSink, resolver: str, domains: DomainSet, issued: Issued) -> None:
        cert = StoredCertificate(domains.main, domains.sans, issued.chain_pem, issued.key_pem)
        self._data[resolver] = self._data.get(resolver, ResolverData()).with_certificate(cert)
        log.info("acme %s: certificate for %s obtained", resolver, domains)
        self._submit(sink)

    def _obtain(
        self, loop: asyncio.AbstractEventLoop, key: OrderKey, resolver: str, domains: DomainSet
    ) -> Issued:
        """In a thread: check again under the lock, order, store (STYLE 11)."""
        storage = self._storages[resolver]
        with storage.locked(order_lock_name(resolver, domains)):
            stored = storage.load().get(resolver, ResolverData())
            fresh = _fresh_certificate(stored, domains, self._resolvers[resolver], self._clock())
            if fresh is not None:  # another process sharing the storage got it meanwhile
                return Issued(fresh.certificate, fresh.key)
            session = self._session(resolver)
            return self._order_and_store(loop, key, session, storage, resolver, domains)

    def _order_and_store(
        self,
        loop: asyncio.AbstractEventLoop,
        key: OrderKey,
        session: AcmeSession,
        storage: Storage,
        resolver: str,
        domains: DomainSet,
    ) -> Issued:
        """In a thread, under the order's lock: order, then store under the file's lock."""

        def publish(http01: Mapping[str, str], tlsalpn01: Mapping[str, Any]) -> None:
            challenges = ChallengeSet(dict(http01), dict(tlsalpn01))
            future = asyncio.run_coroutine_threadsafe(self._set_challenges(key, challenges), loop)
            future.result(timeout=30)

        issued = session.obtain(domains, publish)
        cert = StoredCertificate(domains.main, domains.sans, issued.chain_pem, issued.key_pem)
        with storage.locked():
            current = storage.load()
            data = replace(current.get(resolver, ResolverData()), account=session.account)
            current[resolver] = data.with_certificate(cert)
            storage.save(current)
        return issued

    def _session(self, resolver: str) -> AcmeSession:
        """The resolver's session; the first creates (and stores) the account."""
        with self._session_lock:
            session = self._sessions.get(resolver)
            if session is not None:
                return session
            storage = self._storages[resolver]
            account = storage.load().get(resolver, ResolverData()).account
            session = AcmeSession(self._resolvers[resolver], account)
            if account is None:
                with storage.locked():
                    current = storage.load()
                    data = current.get(resolver, ResolverData())
                    current[resolver] = replace(data, account=session.account)
                    storage.save(current)
            self._sessions[resolver] = session
            return session

    def _close_sessions(self) -> None:
        with self._session_lock:
            for session in self._sessions.values():
                session.close()
            self._sessions.clear()

    # ------------------------------------------------------------ publishing

    async def _set_challenges(self, key: OrderKey, challenges: ChallengeSet) -> None:
        if challenges.http01 or challenges.tlsalpn01:
            self._challenges[key] = challenges
        else:
            self._challenges.pop(key, None)
        await self._publish_all()

    async def _publish_all(self) -> None:
        http01: dict[str, str] = {}
        tlsalpn01: dict[str, tuple[bytes, bytes]] = {}
        for challenges in self._challenges.values():
            http01.update(challenges.http01)
            tlsalpn01.update(challenges.tlsalpn01)
        result = self._publish(ChallengeSet(http01, tlsalpn01))
        if inspect.isawaitable(result):
            await result

    def _submit(self, sink: ConfigSink) -> None:
        certificates = [
            {"certFile": cert.certificate.decode(), "keyFile": cert.key.decode()}
            for data in self._data.values()
            for cert in data.certificates
        ]
        config = DynamicConfig.model_validate({"tls": {"certificates": certificates}})
        sink.submit(ProviderUpdate(PROVIDER_NAME, config))


def order_lock_name(resolver: str, domains: DomainSet) -> str:
    """The storage lock an order of `domains` holds (shared by every process)."""
    return f"{resolver}:{','.join(sorted(domains.names))}"


def _fresh_certificate(
    data: ResolverData, domains: DomainSet, config: ACME, now: float
) -> StoredCertificate | None:
    for cert in data.certificates:
        if frozenset(cert.domains) == domains.key:
            not_before, not_after = certificate_times(cert.certificate)
            if renew_at(not_before, not_after, config.certificates_duration) > now:
                return cert
    return None
