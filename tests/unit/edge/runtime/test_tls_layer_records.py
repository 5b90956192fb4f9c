"""The TLS layer hands the application every record of one socket read in one
`data_received`, as a plain transport hands over one read (edge/runtime/accept.py).

Real TLS on both sides (OpenSSL through `ssl`, a trustme certificate), the bytes carried
in memory: a test cannot make the kernel put several records into one read on demand."""

from __future__ import annotations

import ssl
from typing import Any

import trustme

from proxynow.edge.runtime.accept import TlsLayer
from tests.support.tls import client_context


class Recording:
    """A raw transport that keeps what the layer writes."""

    def __init__(self) -> None:
        self.written = bytearray()

    def write(self, data: bytes) -> None:
        self.written += data

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def is_closing(self) -> bool:
        return False


class App:
    """The application protocol: each `data_received` kept."""

    def __init__(self) -> None:
        self.reads: list[bytes] = []

    def connection_made(self, transport: object) -> None: ...

    def data_received(self, data: bytes) -> None:
        self.reads.append(data)

    def eof_received(self) -> None: ...

    def connection_lost(self, exc: object) -> None: ...


def _pair() -> tuple[TlsLayer, App, Recording, ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO]:
    ca = trustme.CA()
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("app.test").configure_cert(server)
    app, raw = App(), Recording()
    layer = TlsLayer(server, lambda: app)  # type: ignore[arg-type, return-value]
    layer.connection_made(raw)  # type: ignore[arg-type]
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_context(ca).wrap_bio(incoming, outgoing, server_hostname="app.test")
    for _ in range(10):  # the handshake, in memory both ways
        try:
            client.do_handshake()
            break
        except ssl.SSLWantReadError:
            layer.data_received(outgoing.read())
            incoming.write(bytes(raw.written))
            raw.written.clear()
    else:
        raise AssertionError("no handshake")
    return layer, app, raw, client, incoming, outgoing


def test_records_of_one_read_reach_the_application_in_one_call() -> None:
    layer, app, _, client, _, outgoing = _pair()
    for part in (b"first ", b"second ", b"third"):  # one record each
        client.write(part)
    layer.data_received(outgoing.read())  # the three records in one read
    assert app.reads == [b"first second third"]
