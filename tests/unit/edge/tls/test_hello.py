"""The ClientHello peek: SNI and ALPN from real OpenSSL ClientHellos, however they arrive."""

from __future__ import annotations

import contextlib
import ssl

from proxynow.edge.tls.hello import MAX_HELLO_BYTES, NOT_TLS, Hello, parse_hello


def client_hello(sni: str | None, alpn: list[str] | None = None) -> bytes:
    """The first flight of a real Python/OpenSSL client."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if alpn:
        context.set_alpn_protocols(alpn)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(incoming, outgoing, server_hostname=sni)
    with contextlib.suppress(ssl.SSLWantReadError):
        client.do_handshake()
    return outgoing.read()


def test_sni_and_alpn() -> None:
    hello = parse_hello(client_hello("App.Example.COM", ["h2", "http/1.1"]))
    assert hello == Hello("app.example.com", ("h2", "http/1.1"))


def test_no_sni_no_alpn() -> None:
    assert parse_hello(client_hello(None)) == Hello("", ())


def test_every_prefix_asks_for_more() -> None:
    data = client_hello("a.test", ["acme-tls/1"])
    for size in range(1, len(data)):
        assert parse_hello(data[:size]) is None, size
    assert parse_hello(data) == Hello("a.test", ("acme-tls/1",))


def test_hello_split_over_two_records() -> None:
    data = client_hello("split.test", ["http/1.1"])
    header, body = data[:5], data[5:]
    first, second = body[:40], body[40:]
    records = b"".join(header[:3] + len(part).to_bytes(2, "big") + part for part in (first, second))
    assert parse_hello(records[:50]) is None
    assert parse_hello(records) == Hello("split.test", ("http/1.1",))


def test_plain_http_is_not_tls() -> None:
    assert parse_hello(b"GET / HTTP/1.1\r\n") is NOT_TLS
    assert parse_hello(b"") is None


def test_garbage_after_a_handshake_header_is_malformed_not_a_hang() -> None:
    data = b"\x16\x03\x01" + (200).to_bytes(2, "big") + b"\x01\x00\x00\x10" + b"\xff" * 196
    assert parse_hello(data) == Hello()
    endless = b"\x16\x03\x01\xff\xff" + b"\x00" * (MAX_HELLO_BYTES + 10)
    assert parse_hello(endless) is not None
