"""TlsLayer's sends: after a TLS 1.3 handshake the session ticket waits for the first
response and leaves in the same send; TLS 1.2's last flight (the client waits for it) and
a close with nothing written still go out. A real client SSLObject over memory BIOs."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ssl
from typing import Any

import pytest

from proxynow.certs import self_signed
from proxynow.config.dynamic import TLSOptions
from proxynow.edge.runtime.accept import TlsLayer
from proxynow.edge.tls.contexts import ContextCache, option_spec

CERT, KEY = self_signed("app.test", ["app.test"], valid_for=datetime.timedelta(days=1))


class Raw:
    """The raw socket side: what the layer sends, one entry per send."""

    def __init__(self) -> None:
        self.sends: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.sends.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    abort = close

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


class Echo(asyncio.Protocol):
    """Answers each read at once (`reply`), or only remembers it."""

    def __init__(self, reply: bool) -> None:
        self.reply = reply
        self.transport: Any = None
        self.received = b""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received += data
        if self.reply:
            self.transport.write(b"answer:" + data)


def server_context(**options: object) -> ssl.SSLContext:
    cache = ContextCache()
    return cache.get(cache.pair(CERT, KEY), option_spec(TLSOptions.model_validate(options)))


class Peer:
    def __init__(self, version: ssl.TLSVersion) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.maximum_version = version
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname="app.test")

    def step(self) -> bytes:
        with contextlib.suppress(ssl.SSLWantReadError):
            self.tls.do_handshake()
        return self.outgoing.read()

    def read_all(self) -> bytes:
        data = b""
        with contextlib.suppress(ssl.SSLWantReadError, ssl.SSLZeroReturnError):
            while chunk := self.tls.read(65536):
                data += chunk
        return data


def connect(version: ssl.TLSVersion, app: Echo) -> tuple[Peer, TlsLayer, Raw]:
    peer, raw = Peer(version), Raw()
    layer = TlsLayer(server_context(), lambda: app)
    layer.connection_made(raw)  # type: ignore[arg-type]
    layer.data_received(peer.step())  # ClientHello -> the server's first flight
    assert len(raw.sends) == 1
    peer.incoming.write(raw.sends.pop())
    return peer, layer, raw


def test_tls13_ticket_leaves_with_the_first_response() -> None:
    app = Echo(reply=False)  # the answer comes later, as from a backend
    peer, layer, raw = connect(ssl.TLSVersion.TLSv1_3, app)
    finished = peer.step()
    peer.tls.write(b"GET /")
    layer.data_received(finished + peer.outgoing.read())
    assert app.received == b"GET /"
    assert raw.sends == []  # the ticket waits for the answer
    app.transport.write(b"the answer")
    assert len(raw.sends) == 1  # ticket and answer in one send
    peer.incoming.write(raw.sends.pop())
    assert peer.read_all() == b"the answer"
    assert peer.tls.session is not None and peer.tls.session.has_ticket


def test_tls13_close_without_an_answer_still_sends_the_ticket() -> None:
    app = Echo(reply=False)
    peer, layer, raw = connect(ssl.TLSVersion.TLSv1_3, app)
    layer.data_received(peer.step())
    layer.close()
    assert len(raw.sends) == 1 and raw.closed
    peer.incoming.write(raw.sends.pop())
    assert peer.read_all() == b""
    assert peer.tls.session is not None and peer.tls.session.has_ticket


@pytest.mark.parametrize("reply", [True, False], ids=["answered", "unanswered"])
def test_tls12_last_flight_is_sent_at_once(reply: bool) -> None:
    app = Echo(reply=reply)
    peer, layer, raw = connect(ssl.TLSVersion.TLSv1_2, app)
    layer.data_received(peer.step())  # the client's Finished: the client waits for ours
    assert len(raw.sends) == 1
    peer.incoming.write(raw.sends.pop())
    peer.step()
    assert peer.tls.version() == "TLSv1.2"
    peer.tls.write(b"ping")
    layer.data_received(peer.outgoing.read())
    if reply:
        peer.incoming.write(raw.sends.pop())
        assert peer.read_all() == b"answer:ping"
    assert raw.sends == []
