"""TLS session resumption through a running `proxynow run` with two workers: a client's
new connections land on either worker (SO_REUSEPORT), and every one resumes the session
of the first, because the workers share the control plane's ticket key
(edge/tls/tickets.py). With a key per worker about half of them would not."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme

from tests.support.proc import HttpBackend, ProxynowProcess, proxynow_factory
from tests.support.tls import pem_pair

__all__ = ["proxynow_factory"]

CONNECTIONS = 16  # all on one worker by chance: 2 ** -15


@pytest.fixture
def backend() -> Iterator[HttpBackend]:
    with HttpBackend("b1") as server:
        yield server


def _proxy(
    start: Callable[..., ProxynowProcess], backend: HttpBackend, directory: Path
) -> tuple[ProxynowProcess, ssl.SSLContext]:
    ca = trustme.CA()
    cert, key = pem_pair(ca.issue_cert("app.test"))
    static = {"entryPoints": {"websecure": {"address": "127.0.0.1:0"}}}
    dynamic = {
        "http": {
            "routers": {"app": {"rule": "Host(`app.test`)", "service": "app", "tls": {}}},
            "services": {"app": {"loadBalancer": {"servers": [{"url": backend.url}]}}},
        },
        "tls": {"certificates": [{"certFile": cert, "keyFile": key}]},
    }
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return start(static, dynamic, workers=2), client


def _get(
    port: int, client: ssl.SSLContext, session: ssl.SSLSession | None
) -> tuple[ssl.SSLSession | None, bool]:
    """One request on a new connection: its session (once the answer is read: TLS 1.3's
    ticket comes after the handshake) and whether it resumed `session`."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    tls = client.wrap_socket(raw, server_hostname="app.test", session=session)
    tls.sendall(b"GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
    answer = b""
    while chunk := tls.recv(65536):
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    found = tls.session, tls.session_reused
    tls.close()
    return found


@pytest.mark.parametrize(
    "version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2], ids=["tls1.3", "tls1.2"]
)
def test_every_new_connection_resumes_whichever_worker_takes_it(
    proxynow_factory: Callable[..., ProxynowProcess],
    backend: HttpBackend,
    tmp_path: Path,
    version: ssl.TLSVersion,
) -> None:
    proxy, client = _proxy(proxynow_factory, backend, tmp_path)
    client.maximum_version = version
    port = proxy.ports["websecure"]
    session, resumed = _get(port, client, None)
    assert not resumed and session is not None
    reused = [_get(port, client, session)[1] for _ in range(CONNECTIONS)]
    assert reused == [True] * CONNECTIONS
    assert "session tickets" not in proxy.stderr()  # no "each worker keeps its own key"
