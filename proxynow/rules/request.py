"""What a matcher reads from a request or connection, and how the data plane produces it.

The data plane implements ``RequestView`` (HTTP) or ``TCPView`` (TCP) over its own request
object, computing ``host`` with ``canonical_host`` and ``path`` with ``routing_path`` once
per request; matchers never parse anything themselves. ``SimpleRequest`` and
``SimpleConnection`` are plain implementations for tests, benchmarks and tools.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Percent-encodings that keep their encoded form in the routing path: RFC 3986 gen-delims and
# sub-delims plus '%' itself (see withRoutingPath in Traefik's pkg/muxer/http/mux.go). They
# are compared and kept in uppercase: Traefik 3.7 routes "/a%2fb" like "/a%2Fb".
_RESERVED_ENCODINGS = frozenset(f"%{ord(c):02X}" for c in ":/?#[]@!$&'()*+,;=%")
_HEX = frozenset("0123456789abcdefABCDEF")


class RequestView(Protocol):
    """The parts of an HTTP request that HTTP matchers read."""

    @property
    def host(self) -> str:
        """Canonical host: see ``canonical_host``; empty when the request has none."""

    @property
    def path(self) -> str:
        """Routing path: see ``routing_path``."""

    @property
    def method(self) -> str:
        """Request method as received (methods are case-sensitive)."""

    @property
    def client_ip(self) -> IPAddress | None:
        """Address of the socket peer (or the PROXY protocol source), never a header."""

    def header_values(self, lower_name: str) -> Sequence[str]:
        """All values of the header ``lower_name`` (lowercase), in order; empty if absent."""

    def query_values(self, name: str) -> Sequence[str] | None:
        """Decoded values of query parameter ``name``; ``None`` if the parameter is absent."""


class TCPView(Protocol):
    """The parts of a TCP connection (after the ClientHello peek) that TCP matchers read."""

    @property
    def sni(self) -> str:
        """Server name from the ClientHello, canonical like a host; empty without TLS/SNI."""

    @property
    def alpn(self) -> Sequence[str]:
        """ALPN protocols offered by the client."""

    @property
    def client_ip(self) -> IPAddress | None:
        """Address of the socket peer (or the PROXY protocol source)."""


def canonical_host(raw: str) -> str:
    """Host header (or URL authority) → the host matchers compare: lowercase, no port,
    no trailing dot. ``"[::1]:80"`` gives ``"::1"``."""
    host = raw
    if host.startswith("["):
        end = host.find("]")
        if end > 0:
            host = host[1:end]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    if host.endswith("."):
        host = host[:-1]
    return host.lower()


def routing_path(raw_target_path: str) -> str:
    """Escaped request path → routing path, as Traefik 3.7 routes it.

    Percent-encodings of unreserved characters are decoded and those of reserved characters
    kept, uppercased (``/foo%20bar`` → ``/foo bar``, ``%2f`` → ``%2F``); then dot segments
    and repeated slashes are removed like the entrypoint's default ``sanitizePath`` does
    (Go's ``path.Clean``, keeping a trailing slash). ``raw_target_path`` is the path of the
    request target without the query; invalid percent-encodings are left as they are (the
    HTTP parser rejects them before this).
    """
    path = _decode_unreserved(raw_target_path) if "%" in raw_target_path else raw_target_path
    if "//" in path or "/." in path:
        return clean_path(path)
    return path


def _decode_unreserved(raw_target_path: str) -> str:
    out = bytearray()
    raw = raw_target_path.encode("utf-8", "surrogateescape")
    i, n = 0, len(raw)
    while i < n:
        b = raw[i]
        triplet = raw[i : i + 3]
        if b != 0x25 or len(triplet) < 3 or not _is_hex_pair(triplet):
            out.append(b)
            i += 1
            continue
        upper = triplet.decode("ascii").upper()
        if upper in _RESERVED_ENCODINGS:
            out += upper.encode("ascii")
        else:
            out.append(int(triplet[1:], 16))
        i += 3
    return out.decode("utf-8", "surrogateescape")


def clean_path(path: str) -> str:
    """Go's ``path.Clean`` of a rooted path, keeping a trailing slash like Traefik does."""
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment and segment != ".":
            segments.append(segment)
    cleaned = "/" + "/".join(segments)
    if path.endswith("/") and cleaned != "/":
        cleaned += "/"
    return cleaned


def _is_hex_pair(triplet: bytes) -> bool:
    return chr(triplet[1]) in _HEX and chr(triplet[2]) in _HEX


def parse_query(raw_query: str) -> dict[str, list[str]]:
    """Decode a raw query string like Traefik's Query matchers see it: Go's ``url.ParseQuery``
    after ``http.AllowQuerySemicolons`` (pairs split on ``&`` and ``;``), ``+`` is a space,
    a pair with a bad percent-encoding is dropped, ``?a`` gives ``{"a": [""]}``."""
    values: dict[str, list[str]] = {}
    for pair in raw_query.replace(";", "&").split("&"):
        if not pair:
            continue
        key, _, value = pair.partition("=")
        decoded_key, decoded_value = _query_unescape(key), _query_unescape(value)
        if decoded_key is None or decoded_value is None:
            continue
        values.setdefault(decoded_key, []).append(decoded_value)
    return values


def _query_unescape(text: str) -> str | None:
    if "%" not in text and "+" not in text:
        return text
    out = bytearray()
    raw = text.encode("utf-8", "surrogateescape")
    i, n = 0, len(raw)
    while i < n:
        b = raw[i]
        if b == 0x25:
            triplet = raw[i : i + 3]
            if len(triplet) < 3 or not _is_hex_pair(triplet):
                return None
            out.append(int(triplet[1:], 16))
            i += 3
            continue
        out.append(0x20 if b == 0x2B else b)
        i += 1
    return out.decode("utf-8", "surrogateescape")


def parse_client_ip(text: str) -> IPAddress | None:
    """Socket peer address text → address; IPv4-mapped IPv6 is unwrapped like Go does."""
    try:
        address = ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(slots=True)
class SimpleRequest:
    """A ``RequestView`` built from plain values; ``from_raw`` canonicalises like the data
    plane does."""

    host: str = ""
    path: str = "/"
    method: str = "GET"
    client_ip: IPAddress | None = None
    headers: Mapping[str, Sequence[str]] = field(default_factory=dict)
    query: Mapping[str, Sequence[str]] = field(default_factory=dict)

    @classmethod
    def from_raw(
        cls,
        target: str,
        *,
        host: str = "",
        method: str = "GET",
        headers: Sequence[tuple[str, str]] = (),
        client_ip: str | None = None,
    ) -> SimpleRequest:
        """Build from a request target (``/path?query`` or absolute-form), raw Host and raw
        header pairs. An absolute-form target's authority replaces the Host header."""
        scheme, sep, rest = target.partition("://")
        if sep and scheme.lower() in ("http", "https"):
            authority, slash, target = rest.partition("/")
            host, target = authority, slash + target
        raw_path, _, raw_query = target.partition("?")
        grouped: dict[str, list[str]] = {}
        for name, value in headers:
            grouped.setdefault(name.lower(), []).append(value)
        return cls(
            host=canonical_host(host),
            path=routing_path(raw_path),
            method=method,
            client_ip=parse_client_ip(client_ip) if client_ip else None,
            headers=grouped,
            query=parse_query(raw_query),
        )

    def header_values(self, lower_name: str) -> Sequence[str]:
        return self.headers.get(lower_name, ())

    def query_values(self, name: str) -> Sequence[str] | None:
        return self.query.get(name)


@dataclass(slots=True)
class SimpleConnection:
    """A ``TCPView`` built from plain values."""

    sni: str = ""
    alpn: Sequence[str] = ()
    client_ip: IPAddress | None = None
