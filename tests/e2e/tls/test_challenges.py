"""ACME challenge hooks: `Supervisor.publish_challenges` reaching real worker processes.

HTTP-01 is answered before routing (the plain router would otherwise get the request);
TLS-ALPN-01 gives the challenge certificate only to clients offering `acme-tls/1`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from proxynow.config.dynamic import DynamicConfig
from proxynow.config.static import StaticConfig
from proxynow.control.supervisor import Supervisor
from proxynow.ipc.challenges import ChallengeSet
from proxynow.ipc.listen import ListenAddress, reserve
from proxynow.snapshot import Snapshot
from tests.support.proc import HttpBackend

DEADLINE = 20.0


def fetch(port: int, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def served(port: int, sni: str, alpn: list[str]) -> tuple[list[str], str | None]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(alpn)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=sni) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        cert = x509.load_der_x509_certificate(der)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        return san.value.get_values_for_type(x509.DNSName), tls.selected_alpn_protocol()


async def until(condition: Any, what: str) -> Any:
    """Poll a blocking `condition` (in a thread) until it is truthy, with a deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while True:
        result = await asyncio.to_thread(condition)
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}: last {result!r}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def supervise(tls_router: bool) -> AsyncIterator[tuple[Supervisor, int, trustme.CA]]:
    """Two real workers on one entrypoint; with `tls_router`, a TLS router for acme.test."""
    ca = trustme.CA()
    cert = ca.issue_cert("acme.test")
    chain = b"".join(blob.bytes() for blob in cert.cert_chain_pems).decode()
    key = cert.private_key_pem.bytes().decode()
    with HttpBackend("plain") as backend:
        static = StaticConfig.model_validate({"entryPoints": {"web": {"address": ":0"}}})
        address, reserved = reserve(ListenAddress("127.0.0.1", 0))
        routers: dict[str, Any] = {"catchall": {"rule": "PathPrefix(`/`)", "service": "app"}}
        if tls_router:
            routers["secure"] = {"rule": "Host(`acme.test`)", "service": "app", "tls": {}}
        config = DynamicConfig.model_validate(
            {
                "http": {
                    "routers": routers,
                    "services": {"app": {"loadBalancer": {"servers": [{"url": backend.url}]}}},
                },
                "tls": {"certificates": [{"certFile": chain, "keyFile": key}]},
            }
        )
        supervisor = Supervisor(static, {"web": address}, Snapshot(1, config), count=2)
        try:
            await supervisor.start()
            await asyncio.wait_for(supervisor.wait_serving(1), DEADLINE)
            yield supervisor, address.port, ca
        finally:
            await supervisor.stop()
            for sock in reserved:
                sock.close()


@pytest.fixture
async def supervised() -> AsyncIterator[tuple[Supervisor, int, trustme.CA]]:
    async with supervise(tls_router=True) as running:
        yield running


@pytest.fixture
async def plain_only() -> AsyncIterator[tuple[Supervisor, int, trustme.CA]]:
    async with supervise(tls_router=False) as running:
        yield running


def challenge_pair(ca: trustme.CA) -> tuple[bytes, bytes]:
    challenge = ca.issue_cert("acme.test", common_name="challenge")
    chain = b"".join(blob.bytes() for blob in challenge.cert_chain_pems)
    return chain, challenge.private_key_pem.bytes()


def acme_client_gets(port: int, pair: tuple[bytes, bytes]) -> bool:
    """Whether an `acme-tls/1` client for acme.test is served the challenge certificate."""
    expected = x509.load_pem_x509_certificate(pair[0]).public_bytes(Encoding.DER)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["acme-tls/1"])
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="acme.test") as tls,
        ):
            der = tls.getpeercert(binary_form=True)
            return der == expected and tls.selected_alpn_protocol() == "acme-tls/1"
    except (ssl.SSLError, ConnectionError):
        return False


async def test_tls_alpn01_before_any_tls_router(plain_only: Any) -> None:
    supervisor, port, ca = plain_only
    pair = challenge_pair(ca)
    assert not await asyncio.to_thread(acme_client_gets, port, pair)
    supervisor.publish_challenges(ChallengeSet(tlsalpn01={"acme.test": pair}))
    await until(lambda: acme_client_gets(port, pair), "the challenge certificate")
    # Plain HTTP still served on the same entrypoint.
    assert (await asyncio.to_thread(fetch, port, "/x")).endswith(b"plain /x")


async def test_http01_is_answered_before_routing(supervised: Any) -> None:
    supervisor, port, _ = supervised
    path = "/.well-known/acme-challenge/tok123"
    before = await asyncio.to_thread(fetch, port, path)
    assert before.endswith(b"plain " + path.encode())
    supervisor.publish_challenges(ChallengeSet(http01={"tok123": "tok123.thumb"}))

    def answered() -> bytes | None:
        reply = fetch(port, path)
        return reply if reply.endswith(b"tok123.thumb") else None

    reply = await until(answered, "the key authorization")
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Type: text/plain" in reply
    other = await asyncio.to_thread(fetch, port, "/.well-known/acme-challenge/other")
    assert other.endswith(b"plain /.well-known/acme-challenge/other")
    supervisor.publish_challenges(ChallengeSet())
    await until(lambda: fetch(port, path).endswith(b"plain " + path.encode()), "withdrawal")


async def test_tls_alpn01_certificate_only_for_acme_clients(supervised: Any) -> None:
    supervisor, port, ca = supervised
    challenge = ca.issue_cert("acme.test", common_name="challenge")
    pair = (
        b"".join(blob.bytes() for blob in challenge.cert_chain_pems),
        challenge.private_key_pem.bytes(),
    )
    supervisor.publish_challenges(ChallengeSet(tlsalpn01={"ACME.test": pair}))
    expected = x509.load_pem_x509_certificate(pair[0])
    fingerprint = expected.fingerprint(expected.signature_hash_algorithm)  # type: ignore[arg-type]

    def challenge_served() -> bool:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.set_alpn_protocols(["acme-tls/1"])
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="acme.test") as tls,
        ):
            der = tls.getpeercert(binary_form=True)
            assert der is not None
            cert = x509.load_der_x509_certificate(der)
            got = cert.fingerprint(cert.signature_hash_algorithm)  # type: ignore[arg-type]
            return got == fingerprint and tls.selected_alpn_protocol() == "acme-tls/1"

    await until(challenge_served, "the challenge certificate")
    for alpn in (["http/1.1"], ["h2", "http/1.1"]):
        # Same name, no acme-tls/1: the normal certificate, normal ALPN.
        for _ in range(4):  # both workers
            names, chosen = await asyncio.to_thread(served, port, "acme.test", alpn)
            assert names == ["acme.test"]
            assert chosen == alpn[0]  # h2 when offered (served since issue 14)
