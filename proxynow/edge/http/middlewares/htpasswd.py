"""User lists of basicAuth and digestAuth: `users` entries and `usersFile` lines, and the
htpasswd hashes basicAuth checks.

Entries are read as Traefik reads them (traefik pkg/middlewares/auth/auth.go): the file's
lines first (trimmed; blank ones and `#` comments skipped), then `users`; a later entry for
the same user wins. basicAuth entries are `user:hash`, digestAuth entries
`user:realm:HA1`; anything else is an error, which disables the middleware.

Hashes, as Traefik's htpasswd checker accepts them (github.com/abbot/go-http-auth):
bcrypt (`$2a$`, `$2b$`, `$2x$`, `$2y$`; the `bcrypt` package), MD5-crypt (`$apr1$`,
`$1$`) and SHA1 (`{SHA}` + base64). Plain-text entries never match. Every comparison is
constant-time (`hmac.compare_digest`). MD5-crypt is written here: no maintained library
on PyPI implements it (passlib's last release is from 2020); it is checked against
`openssl passwd -apr1` outputs in the tests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from pathlib import Path

import bcrypt

from proxynow.edge.message.headers import HeaderError, RequestHead

__all__ = [
    "BCRYPT_PREFIXES",
    "check_bcrypt",
    "check_fast",
    "header_field",
    "is_bcrypt",
    "load_users",
    "md5_crypt",
]

BCRYPT_PREFIXES = (b"$2a$", b"$2b$", b"$2x$", b"$2y$")
_ITOA64 = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def load_users(users: Sequence[str], users_file: str, fields: int) -> dict[str, str]:
    """`user → secret` from the file's lines then `users`; an entry must have `fields`
    colon-separated fields (2: basic, 3: digest, keyed `user:realm`). `ValueError` for a
    malformed entry (its position, never its content: it holds a hash), `OSError` for
    an unreadable file."""
    lines: list[str] = []
    if users_file:
        text = Path(users_file).read_text(encoding="utf-8", errors="replace")
        lines = [line.strip() for line in text.split("\n")]
        lines = [line for line in lines if line and not line.startswith("#")]
    table: dict[str, str] = {}
    for index, entry in enumerate([*lines, *users]):
        parts = entry.split(":")
        if len(parts) != fields:
            where = where_of(index, len(lines))
            raise ValueError(f"{where} is not user:{'realm:' if fields == 3 else ''}hash")
        if any(ord(char) < 0x20 or ord(char) == 0x7F for char in entry):
            raise ValueError(f"{where_of(index, len(lines))} holds a control character")
        table[":".join(parts[:-1])] = parts[-1]
    return table


def where_of(index: int, file_lines: int) -> str:
    return f"line {index + 1} of usersFile" if index < file_lines else "a users entry"


def header_field(name: str) -> bytes:
    """`headerField` as bytes; `ValueError` for a name the request cannot carry (not a
    token, or one the proxy owns: Host, Content-Length, Connection...)."""
    field = name.encode("latin-1", "replace")
    if field:
        try:
            RequestHead(False).set(field, b"user")
        except HeaderError as exc:
            raise ValueError(f"headerField {name!r}: {exc}") from None
    return field


def is_bcrypt(secret: bytes) -> bool:
    return secret.startswith(BCRYPT_PREFIXES)


def check_bcrypt(password: bytes, secret: bytes) -> bool:
    """The slow check (50-250 ms): run it off the event loop (basic_auth.py)."""
    if secret.startswith(b"$2x$"):  # Go treats it as $2a$ (go-http-auth)
        secret = b"$2a$" + secret[4:]
    try:
        return bcrypt.checkpw(password, secret)
    except ValueError:  # a malformed hash, or a password bcrypt refuses (over 72 bytes)
        return False


def check_fast(password: bytes, secret: bytes) -> bool:
    """SHA1 and MD5-crypt, cheap enough for the event loop."""
    if secret.startswith(b"{SHA}"):
        digest = base64.b64encode(hashlib.sha1(password).digest())
        return hmac.compare_digest(secret[5:], digest)
    parts = secret.split(b"$", 3)
    if len(parts) != 4 or parts[0]:
        return False
    magic = b"$" + parts[1] + b"$"
    return hmac.compare_digest(secret, md5_crypt(password, parts[2], magic))


def md5_crypt(password: bytes, salt: bytes, magic: bytes = b"$apr1$") -> bytes:
    """Poul-Henning Kamp's MD5-crypt (`$1$`), Apache's `$apr1$` differing by its magic."""
    salt = salt[:8]
    alternate = hashlib.md5(password + salt + password).digest()
    context = hashlib.md5(password + magic + salt)
    for remaining in range(len(password), 0, -16):
        context.update(alternate[: min(16, remaining)])
    length = len(password)
    while length:
        context.update(b"\0" if length & 1 else password[:1])
        length >>= 1
    final = context.digest()
    for round_ in range(1000):
        step = hashlib.md5(password if round_ & 1 else final)
        if round_ % 3:
            step.update(salt)
        if round_ % 7:
            step.update(password)
        step.update(final if round_ & 1 else password)
        final = step.digest()
    return magic + salt + b"$" + _encode(final)


def _encode(final: bytes) -> bytes:
    out = bytearray()
    for a, b, c in ((0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)):
        out += _to64((final[a] << 16) | (final[b] << 8) | final[c], 4)
    out += _to64(final[11], 2)
    return bytes(out)


def _to64(value: int, count: int) -> bytes:
    out = bytearray()
    for _ in range(count):
        out.append(_ITOA64[value & 0x3F])
        value >>= 6
    return bytes(out)
