"""Reading a TLS ClientHello before the handshake: SNI and ALPN.

The peek is the one source for choosing the certificate, for TLS-ALPN-01 and for TCP
routing by SNI (../shared/DESIGN.md "Certificates by SNI"). `parse_hello` looks at the
bytes a client sent so far and says: not TLS, need more bytes, or here is the hello. The bytes
themselves are never consumed: the caller feeds them to the TLS layer or a TCP backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

__all__ = ["MAX_HELLO_BYTES", "NOT_TLS", "Hello", "parse_hello"]

_HANDSHAKE = 0x16
_CLIENT_HELLO = 1
_EXT_SNI = 0
_EXT_ALPN = 16
# A ClientHello larger than this is refused (real ones are well under 2 KiB; post-quantum
# key shares stay under 4 KiB).
MAX_HELLO_BYTES = 32 * 1024


@dataclass(frozen=True, slots=True)
class Hello:
    """What a ClientHello asked for; `sni` is lower case, "" when absent."""

    sni: str = ""
    alpn: tuple[str, ...] = ()


NOT_TLS = Hello(sni="\x00not-tls")
_MALFORMED = Hello()


def parse_hello(data: bytes) -> Hello | None:
    """NOT_TLS, None (need more bytes) or the Hello; a malformed hello gives an empty
    Hello, and the handshake itself then fails with a proper alert."""
    if not data:
        return None
    if data[0] != _HANDSHAKE:
        return NOT_TLS
    body = _handshake_bytes(data)
    if body is None:
        return None if len(data) < MAX_HELLO_BYTES else _MALFORMED
    try:
        return _parse_body(body)
    except (IndexError, UnicodeDecodeError, ValueError):
        return _MALFORMED


def _handshake_bytes(data: bytes) -> bytes | None:
    """The ClientHello message, joined across records; None while incomplete."""
    # The usual case: the whole hello in the first record, its length known from 9 bytes.
    if len(data) >= 9 and data[5] == _CLIENT_HELLO:
        record = (data[3] << 8) | data[4]
        need = 4 + ((data[6] << 16) | (data[7] << 8) | data[8])
        if need <= record:
            return data[9 : 5 + need] if len(data) >= 5 + need else None
    chunks: list[bytes] = []
    have = 0
    need = -1
    pos = 0
    while pos + 5 <= len(data):
        if data[pos] != _HANDSHAKE:
            return b""
        length = (data[pos + 3] << 8) | data[pos + 4]
        fragment = data[pos + 5 : pos + 5 + length]
        if len(fragment) < length:
            return None
        chunks.append(fragment)
        have += length
        pos += 5 + length
        if need < 0 and have >= 4:
            joined = b"".join(chunks)
            if joined[0] != _CLIENT_HELLO:
                return b""
            need = 4 + int.from_bytes(joined[1:4], "big")
        if 0 <= need <= have:
            return b"".join(chunks)[4:need]
    return None


def _parse_body(body: bytes) -> Hello:
    # Two-byte fields read by indexing (an int each), extensions other than SNI and ALPN
    # skipped without a copy: this runs once per TLS connection.
    pos = 2 + 32  # client_version, random
    pos += 1 + body[pos]  # session id
    pos += 2 + ((body[pos] << 8) | body[pos + 1])  # cipher suites
    pos += 1 + body[pos]  # compression methods
    if pos >= len(body):
        return _MALFORMED
    end = pos + 2 + ((body[pos] << 8) | body[pos + 1])
    pos += 2
    sni, alpn = "", cast(tuple[str, ...], ())
    while pos + 4 <= end:
        kind = (body[pos] << 8) | body[pos + 1]
        size = (body[pos + 2] << 8) | body[pos + 3]
        start = pos + 4
        pos = start + size
        if kind == _EXT_SNI:
            sni = _server_name(body[start:pos])
        elif kind == _EXT_ALPN:
            alpn = _protocols(body[start:pos])
    return Hello(sni, alpn)


def _server_name(ext: bytes) -> str:
    pos = 2
    while pos + 3 <= len(ext):
        kind = ext[pos]
        size = (ext[pos + 1] << 8) | ext[pos + 2]
        if kind == 0:
            return ext[pos + 3 : pos + 3 + size].decode("ascii").lower().rstrip(".")
        pos += 3 + size
    return ""


def _protocols(ext: bytes) -> tuple[str, ...]:
    names: list[str] = []
    pos = 2
    while pos < len(ext):
        size = ext[pos]
        names.append(ext[pos + 1 : pos + 1 + size].decode("ascii", "replace"))
        pos += 1 + size
    return tuple(names)
