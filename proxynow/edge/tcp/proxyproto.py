"""PROXY protocol headers (v1 text, v2 binary) that proxynow sends to TCP backends.

Pure functions: a pair of socket addresses in, the header bytes out. The backend reads
the header first and learns the client's address as if it had connected directly.
Specification: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt

Like Traefik, the source is the client's address (the peer of the accepted socket) and
the destination is the address the client connected to (the accepted socket's local
address). IPv4-mapped IPv6 addresses, which a dual-stack listener reports for IPv4
clients, are sent as plain IPv4.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Any

__all__ = ["V2_SIGNATURE", "header", "header_v1", "header_v2"]

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"

# v2 byte 13: version 2 in the high nibble, command in the low one (section 2.2).
_V2_PROXY = 0x21
_V2_LOCAL = 0x20
# v2 byte 14: address family in the high nibble, transport (1 = stream) in the low one.
_V2_TCP4 = 0x11
_V2_TCP6 = 0x21
_V2_UNSPEC = 0x00

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def header(version: int, source: Any, destination: Any) -> bytes:
    """The header for `version` (1 or 2); `source`/`destination` as from getpeername()."""
    if version == 1:
        return header_v1(source, destination)
    if version == 2:
        return header_v2(source, destination)
    raise ValueError(f"unsupported PROXY protocol version {version}")


def header_v1(source: Any, destination: Any) -> bytes:
    """The human-readable v1 header, e.g. `PROXY TCP4 1.2.3.4 5.6.7.8 1000 80\\r\\n`."""
    pair = _inet_pair(source, destination)
    if pair is None:
        return b"PROXY UNKNOWN\r\n"
    (src_ip, src_port), (dst_ip, dst_port) = pair
    family = "TCP4" if src_ip.version == 4 else "TCP6"
    line = f"PROXY {family} {src_ip} {dst_ip} {src_port} {dst_port}\r\n"
    return line.encode("ascii")


def header_v2(source: Any, destination: Any) -> bytes:
    """The binary v2 header: signature, command PROXY, TCP over IPv4 or IPv6, no TLVs."""
    pair = _inet_pair(source, destination)
    if pair is None:
        # LOCAL: the backend must use the real connection endpoints (section 2.2).
        return V2_SIGNATURE + struct.pack("!BBH", _V2_LOCAL, _V2_UNSPEC, 0)
    (src_ip, src_port), (dst_ip, dst_port) = pair
    addresses = src_ip.packed + dst_ip.packed + struct.pack("!HH", src_port, dst_port)
    family = _V2_TCP4 if src_ip.version == 4 else _V2_TCP6
    return V2_SIGNATURE + struct.pack("!BBH", _V2_PROXY, family, len(addresses)) + addresses


def _inet_pair(
    source: Any, destination: Any
) -> tuple[tuple[_IPAddress, int], tuple[_IPAddress, int]] | None:
    """Both endpoints as (ip, port) of one family, or None when they are not IP sockets."""
    src = _inet(source)
    dst = _inet(destination)
    if src is None or dst is None:
        return None
    if src[0].version != dst[0].version:
        # One side IPv4, the other IPv6: express both in IPv6 so the header has one family.
        src = (_as_v6(src[0]), src[1])
        dst = (_as_v6(dst[0]), dst[1])
    return src, dst


def _inet(address: Any) -> tuple[_IPAddress, int] | None:
    """(ip, port) of a getpeername()/getsockname() value, or None for non-IP sockets."""
    if not isinstance(address, tuple) or len(address) < 2:
        return None
    host, port = address[0], address[1]
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0] if isinstance(host, str) else host)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip, int(port)


def _as_v6(ip: _IPAddress) -> ipaddress.IPv6Address:
    if isinstance(ip, ipaddress.IPv6Address):
        return ip
    return ipaddress.IPv6Address(f"::ffff:{ip}")
