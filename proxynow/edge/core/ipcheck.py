"""Whether an address is in a list of IPs and CIDR ranges (ipAllowList, ipStrategy's
excludedIPs, the TCP ipAllowList), with the address forms Traefik accepts.

Built once per graph: the ranges are merged and sorted per family, so a lookup is one
set test and one bisect, whatever the length of the list. IPv4-mapped IPv6 addresses are
compared as IPv4 and zones are dropped, as Traefik's checker does (traefik pkg/ip/checker.go).
Standard library only.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Iterable

__all__ = ["IPChecker", "canonical", "parse_ip", "peer_address"]

_IP = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_ip(text: str) -> _IP | None:
    """An address as a string (a zone allowed), canonical; None when it is not one."""
    try:
        return canonical(ipaddress.ip_address(text.partition("%")[0]))
    except ValueError:
        return None


class _HashedOnce:
    """An address whose hash is computed once: ipaddress hashes in Python
    (`hash(hex(int(self._ip)))`) on every lookup, and the address of a connection's peer
    is looked up by the middlewares on every request (rateLimit's buckets, ipAllowList's
    set). Equal to, and hashing as, the plain address."""

    __slots__ = ()
    _hash: int

    def __hash__(self) -> int:
        return self._hash


class _PeerV4(_HashedOnce, ipaddress.IPv4Address):
    __slots__ = ("_hash",)


class _PeerV6(_HashedOnce, ipaddress.IPv6Address):
    __slots__ = ("_hash",)


def peer_address(ip: _IP) -> _IP:
    """`ip` as the per-connection peer address: the same value, hashed once (a zone, which
    the peer cache drops anyway, is not kept)."""
    peer: _PeerV4 | _PeerV6
    if isinstance(ip, ipaddress.IPv4Address):
        peer = _PeerV4(int(ip))
        peer._hash = ipaddress.IPv4Address.__hash__(peer)
    else:
        peer = _PeerV6(int(ip))
        peer._hash = ipaddress.IPv6Address.__hash__(peer)
    return peer


def canonical(ip: _IP) -> _IP:
    """IPv4-mapped IPv6 as IPv4 (a dual-stack listener's IPv4 clients)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class IPChecker:
    """A set of addresses and ranges; `ValueError` at build for an entry that is neither."""

    __slots__ = ("_ends", "_singles", "_starts")

    def __init__(self, entries: Iterable[str]) -> None:
        singles: set[_IP] = set()
        ranges: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
        for entry in entries:
            entry = entry.strip()
            ip = parse_ip(entry)
            if ip is not None:
                singles.add(ip)
                continue
            try:
                network = ipaddress.ip_network(entry.partition("%")[0], strict=False)
            except ValueError:
                raise ValueError(f"invalid IP or CIDR {entry!r}") from None
            first = canonical(network.network_address)
            if network.num_addresses == 1:
                singles.add(first)
                continue
            span = (int(network.network_address), int(network.broadcast_address))
            if first.version != network.version:  # an IPv4-mapped range: compare as IPv4
                span = (span[0] & 0xFFFFFFFF, span[1] & 0xFFFFFFFF)
            ranges[first.version].append(span)
        if not singles and not ranges[4] and not ranges[6]:
            raise ValueError("no IP or CIDR given")
        self._singles = frozenset(singles)
        merged = {version: _merge(spans) for version, spans in ranges.items()}
        self._starts = {version: [s for s, _ in spans] for version, spans in merged.items()}
        self._ends = {version: [e for _, e in spans] for version, spans in merged.items()}

    def contains(self, ip: _IP) -> bool:
        """Whether `ip` (canonical, see `canonical`) is in the set."""
        if ip in self._singles:
            return True
        starts = self._starts[ip.version]
        if not starts:
            return False
        value = int(ip)
        index = bisect.bisect_right(starts, value) - 1
        return index >= 0 and value <= self._ends[ip.version][index]

    def contains_text(self, text: str) -> bool | None:
        """Whether the address written `text` is in the set; None when it is no address
        (empty, a name, garbage), which Traefik refuses as well."""
        ip = parse_ip(text.strip())
        return None if ip is None else self.contains(ip)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, overlapping and adjacent ranges joined."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
