"""Session-ticket keys shared by every worker, so that a client resumes on any of them.

OpenSSL encrypts a session ticket with a key of the SSL_CTX that issued it, random per
context unless set. Workers are separate processes behind one port (SO_REUSEPORT), so a
returning client reaches another worker about half of the time with two of them, and
each worker's own key made that a full handshake. The control plane draws one key
(`KEY_BYTES` random bytes: OpenSSL's 16-byte key name, 32-byte HMAC key and 32-byte AES
key), hands it to every worker (the channel's TICKETS message: proxynow/ipc/channel.py)
and draws a new one every `ROTATE_SECONDS`; a ticket made with the previous key then
costs one full handshake, as with nginx's single `ssl_session_ticket_key`.

Python's ssl module has no call for it, so `set_ticket_key` calls OpenSSL's
`SSL_CTX_ctrl(SSL_CTRL_SET_TLSEXT_TICKET_KEYS)` through ctypes on the context's SSL_CTX,
which CPython keeps right after the object header of an `ssl.SSLContext` (the
`PySSLContext` struct of its _ssl module). That is used only where it is known to hold:
CPython, and the libssl that ctypes loads reporting the very version the ssl module was
built against; the key is then read back (SSL_CTRL_GET_TLSEXT_TICKET_KEYS) and must
match. Anywhere else each worker keeps its own key, resumption works within a worker, and
the log says why once.

The same handle sets the TLS 1.3 suite order (`set_tls13_suites`, SSL_CTX_set_ciphersuites),
which the ssl module has no call for either.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import ssl
import sys

__all__ = [
    "KEY_BYTES",
    "ROTATE_SECONDS",
    "TLS13_SUITES",
    "set_ticket_key",
    "set_tls13_suites",
    "supported",
]

log = logging.getLogger(__name__)

KEY_BYTES = 80
# Tickets live for the context's session timeout (OpenSSL's 7200 s for TLS 1.3, 300 s for
# TLS 1.2), so a key drawn hourly leaves at most those last minutes' tickets unusable.
ROTATE_SECONDS = 3600.0
_SET_KEYS = 59  # SSL_CTRL_SET_TLSEXT_TICKET_KEYS (openssl/ssl.h)
_GET_KEYS = 58  # SSL_CTRL_GET_TLSEXT_TICKET_KEYS
# Go's order for TLS 1.3 on hardware with AES instructions, so Traefik's choice: AES-128-GCM
# (a SHA-256 key schedule) before OpenSSL's default first, AES-256-GCM with SHA-384, whose
# key schedule costs about 18 µs more per handshake (docs/tls.md, "What a handshake costs").
TLS13_SUITES = "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384"


@functools.cache
def _libssl() -> ctypes.CDLL | str:
    """The libssl the ssl module runs on, or why it cannot be reached."""
    if sys.implementation.name != "cpython":
        return f"not CPython ({sys.implementation.name})"
    name = ctypes.util.find_library("ssl")
    if name is None:
        return "libssl not found"
    try:
        lib = ctypes.CDLL(name)
        lib.OpenSSL_version.restype = ctypes.c_char_p
        lib.OpenSSL_version.argtypes = [ctypes.c_int]
        lib.SSL_CTX_ctrl.restype = ctypes.c_long
        lib.SSL_CTX_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
        lib.SSL_CTX_set_ciphersuites.restype = ctypes.c_int
        lib.SSL_CTX_set_ciphersuites.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    except (OSError, AttributeError) as exc:
        return f"{name}: {exc}"
    found = (lib.OpenSSL_version(0) or b"").decode("ascii", "replace")
    if found != ssl.OPENSSL_VERSION:
        return f"{name} is {found!r}, the ssl module runs {ssl.OPENSSL_VERSION!r}"
    return lib


def supported() -> str | None:
    """None when keys can be set, else why not."""
    lib = _libssl()
    return lib if isinstance(lib, str) else None


def _ssl_ctx(context: ssl.SSLContext) -> int:
    """The address of the context's SSL_CTX (the first field after the object header)."""
    address = ctypes.c_void_p.from_address(id(context) + object.__basicsize__).value
    return address or 0


def set_ticket_key(context: ssl.SSLContext, key: bytes) -> bool:
    """Make `context` encrypt and decrypt tickets with `key`; False when it cannot."""
    lib = _libssl()
    if isinstance(lib, str) or len(key) != KEY_BYTES:
        return False
    handle = _ssl_ctx(context)
    if not handle:
        return False
    given = ctypes.create_string_buffer(key, KEY_BYTES)
    if lib.SSL_CTX_ctrl(handle, _SET_KEYS, KEY_BYTES, given) != 1:
        return False
    back = ctypes.create_string_buffer(KEY_BYTES)
    if lib.SSL_CTX_ctrl(handle, _GET_KEYS, KEY_BYTES, back) != 1:
        return False
    return back.raw == key


def set_tls13_suites(context: ssl.SSLContext, suites: str = TLS13_SUITES) -> bool:
    """Make `context` prefer the TLS 1.3 suites in this order (Python's ssl sets only TLS 1.2
    ciphers); False when it cannot, and the context keeps OpenSSL's order."""
    lib = _libssl()
    if isinstance(lib, str):
        return False
    handle = _ssl_ctx(context)
    return bool(handle) and lib.SSL_CTX_set_ciphersuites(handle, suites.encode("ascii")) == 1
