"""PROXY protocol header bytes (pure): v1 text and v2 binary, IPv4, IPv6, mixed, unknown."""

from __future__ import annotations

import pytest

from proxynow.edge.tcp.proxyproto import V2_SIGNATURE, header, header_v1, header_v2

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def test_signature_is_the_specified_twelve_bytes() -> None:
    assert V2_SIGNATURE == SIG
    assert len(SIG) == 12


@pytest.mark.parametrize(
    ("source", "destination", "expected"),
    [
        (
            ("192.0.2.1", 56324),
            ("198.51.100.7", 443),
            b"PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n",
        ),
        (("2001:db8::1", 1000, 0, 0), ("::1", 80, 0, 0), b"PROXY TCP6 2001:db8::1 ::1 1000 80\r\n"),
        # A dual-stack listener reports IPv4 clients as IPv4-mapped IPv6: sent as IPv4.
        (
            ("::ffff:10.0.0.1", 5, 0, 0),
            ("::ffff:10.0.0.2", 6, 0, 0),
            b"PROXY TCP4 10.0.0.1 10.0.0.2 5 6\r\n",
        ),
        # Mixed families are expressed in IPv6.
        (("10.0.0.1", 5), ("::1", 6, 0, 0), b"PROXY TCP6 ::ffff:a00:1 ::1 5 6\r\n"),
        ("/run/unix.sock", "/run/other.sock", b"PROXY UNKNOWN\r\n"),
    ],
)
def test_v1(source: object, destination: object, expected: bytes) -> None:
    assert header_v1(source, destination) == expected
    assert header(1, source, destination) == expected


def test_v2_ipv4() -> None:
    got = header_v2(("192.0.2.1", 56324), ("198.51.100.7", 443))
    assert got == (
        SIG
        + bytes([0x21, 0x11, 0x00, 12])
        + bytes([192, 0, 2, 1, 198, 51, 100, 7])
        + (56324).to_bytes(2, "big")
        + (443).to_bytes(2, "big")
    )


def test_v2_ipv6() -> None:
    got = header_v2(("2001:db8::1", 1000, 0, 0), ("::1", 80, 0, 0))
    source = bytes.fromhex("20010db8000000000000000000000001")
    destination = bytes(15) + b"\x01"
    assert got == (
        SIG
        + bytes([0x21, 0x21, 0x00, 36])
        + source
        + destination
        + (1000).to_bytes(2, "big")
        + (80).to_bytes(2, "big")
    )


def test_v2_non_ip_is_local_command_without_addresses() -> None:
    assert header_v2("/a", "/b") == SIG + bytes([0x20, 0x00, 0x00, 0x00])


def test_unknown_version_is_refused() -> None:
    with pytest.raises(ValueError, match="version 3"):
        header(3, ("1.2.3.4", 1), ("1.2.3.4", 2))
