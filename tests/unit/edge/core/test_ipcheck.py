"""IPChecker: single addresses, ranges merged per family, IPv4-mapped and zoned forms."""

from __future__ import annotations

import ipaddress

import pytest

from proxynow.edge.core.ipcheck import IPChecker, canonical, parse_ip, peer_address


@pytest.mark.parametrize(
    ("address", "inside"),
    [
        ("10.1.2.3", True),
        ("10.255.255.255", True),
        ("11.0.0.0", False),
        ("192.168.1.7", True),
        ("192.168.1.8", False),
        ("::ffff:10.0.0.1", True),  # IPv4-mapped: compared as IPv4
        ("2001:db8::1", True),
        ("2001:db8::1%eth0", True),  # a zone is dropped
        ("2001:db9::1", False),
        ("fe80::1", False),
    ],
)
def test_membership(address: str, inside: bool) -> None:
    checker = IPChecker(["10.0.0.0/8", "192.168.1.7", "2001:db8::/32", "10.2.0.0/16"])
    assert checker.contains_text(address) is inside


def test_adjacent_and_overlapping_ranges_merge() -> None:
    checker = IPChecker(["10.0.0.0/25", "10.0.0.128/25", "10.0.0.64/26"])
    assert checker._starts[4] == [int(ipaddress.IPv4Address("10.0.0.0"))]
    assert checker.contains_text("10.0.0.255") and not checker.contains_text("10.0.1.0")


@pytest.mark.parametrize("text", ["", "example.com", "10.0.0.1:80", "1.2.3.4.5"])
def test_what_is_no_address_is_neither_in_nor_out(text: str) -> None:
    assert IPChecker(["0.0.0.0/0"]).contains_text(text) is None


@pytest.mark.parametrize("entries", [[], ["not-an-ip"], ["10.0.0.0/33"]])
def test_bad_lists_are_refused(entries: list[str]) -> None:
    with pytest.raises(ValueError):
        IPChecker(entries)


def test_a_long_list_is_one_bisect() -> None:
    entries = [f"10.{i // 256}.{i % 256}.0/24" for i in range(0, 20000, 2)]
    checker = IPChecker(entries)
    assert checker.contains_text("10.0.2.9") and not checker.contains_text("10.0.1.9")
    assert parse_ip("::ffff:1.2.3.4") == ipaddress.IPv4Address("1.2.3.4")


@pytest.mark.parametrize("text", ["10.1.2.3", "::1", "::ffff:1.2.3.4", "2001:db8::7"])
def test_a_peer_address_is_the_same_value_hashed_once(text: str) -> None:
    plain = ipaddress.ip_address(text)
    peer = peer_address(plain)
    assert peer == plain and hash(peer) == hash(plain) and str(peer) == str(plain)
    assert {plain: "found"}[peer] == "found" and peer in {plain}
    assert canonical(peer) == canonical(plain)
