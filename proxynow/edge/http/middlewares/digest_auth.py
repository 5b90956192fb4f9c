"""`digestAuth`: HTTP Digest authentication (RFC 2617, MD5, qop=auth) as Traefik does it
with go-http-auth (traefik pkg/middlewares/auth/digest_auth.go).

Entries are `user:realm:HA1` (htpasswd.py; HA1 = MD5(user:realm:password), as
`htdigest` writes). A request without valid credentials gets 401 with a fresh nonce:
`WWW-Authenticate: Digest realm="…", nonce="…", opaque="…", algorithm="MD5", qop="auth"`.
The answer is accepted when its opaque is this middleware's, algorithm MD5 (or absent),
qop `auth`, its uri the request target (or, as go-http-auth allows, a prefix of its
path), its response MD5(HA1:nonce:nc:cnonce:qop:MD5(method:uri)) (compared in constant
time), its nonce one this middleware issued and its nonce count above the last one seen;
an unknown nonce or a replayed count gets the 401 with `stale=true`.

The nonces are bounded as go-http-auth bounds them: past CLIENTS + TOLERANCE, the
2·TOLERANCE least recently seen are forgotten.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from typing import TYPE_CHECKING

from proxynow.edge.http.middlewares.base import BuildContext, Reply, Step
from proxynow.edge.http.middlewares.basic_auth import challenge, realm_of
from proxynow.edge.http.middlewares.htpasswd import header_field, load_users

if TYPE_CHECKING:
    from proxynow.config.middlewares import Middleware
    from proxynow.edge.http.exchange import Exchange

__all__ = ["CLIENTS", "TOLERANCE", "Nonces", "build", "digest_params"]

CLIENTS = 1000
TOLERANCE = 100
# An answer is a few hundred bytes; a longer header is refused unparsed, because the
# parser (urllib's) walks it in Python, on the event loop.
MAX_HEADER = 4096


def build(middleware: Middleware, context: BuildContext) -> Step:
    """The `digestAuth` builder (registry.py); `ValueError`/`OSError` for bad users."""
    options = middleware.digest_auth
    assert options is not None
    users = load_users(options.users, options.users_file, 3)
    realm = realm_of(options.realm).decode()
    field = header_field(options.header_field)
    nonces = Nonces()
    opaque = _random_key()
    base = f'Digest realm="{realm}", nonce="%s", opaque="{opaque}", algorithm="MD5", qop="auth"'

    def refuse(stale: bool) -> Reply:
        value = base % nonces.issue(time.monotonic())
        return challenge((value + (", stale=true" if stale else "")).encode())

    def request(exchange: Exchange) -> Reply | None:
        params = digest_params(exchange.head.get(b"authorization"))
        if params is None:
            return refuse(False)
        verdict = _verify(params, exchange, users, realm, opaque)
        if verdict is None:
            return refuse(False)
        known = nonces.use(params.get("nonce", ""), verdict, time.monotonic())
        if not known:
            return refuse(True)
        if field:
            exchange.head.set(field, params["username"].encode())
        if options.remove_header:
            exchange.head.remove(b"authorization")
        return None

    return Step("digestAuth", request=request)


def digest_params(header: bytes | None) -> dict[str, str] | None:
    """The parameters of an `Authorization: Digest` value; None for another scheme."""
    if header is None or len(header) > MAX_HEADER or not header.startswith(b"Digest "):
        return None
    # Imported here: urllib.request brings http.client, email and ssl (about 4 MB per
    # process), which a worker without digestAuth does not need; cached after the first.
    from urllib.request import parse_http_list, parse_keqv_list

    text = header[7:].decode("latin-1")
    try:
        return parse_keqv_list(parse_http_list(text))
    except ValueError:
        return None


def _verify(
    params: dict[str, str], exchange: Exchange, users: dict[str, str], realm: str, opaque: str
) -> int | None:
    """The nonce count of a correct answer; None for a wrong one."""
    params.setdefault("algorithm", "MD5")
    if params.get("opaque") != opaque or params["algorithm"] != "MD5":
        return None
    if params.get("qop") != "auth":
        return None
    uri = params.get("uri", "")
    target = exchange.target.decode("latin-1")
    if uri != target:
        path = target.partition("?")[0]
        given = uri.partition("?")[0]
        if not uri or len(given) > len(path) or not path.startswith(given):
            return None
    ha1 = users.get(f"{params.get('username', '')}:{realm}")
    if ha1 is None:
        return None
    ha2 = _md5(f"{exchange.method}:{uri}")
    parts = (ha1, params.get("nonce", ""), params.get("nc", ""), params.get("cnonce", ""))
    expected = _md5(":".join((*parts, "auth", ha2)))
    if not hmac.compare_digest(expected.encode(), params.get("response", "").encode()):
        return None
    try:
        return int(params.get("nc", ""), 16)
    except ValueError:
        return None


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("latin-1", "replace")).hexdigest()


def _random_key() -> str:
    return base64.b64encode(os.urandom(12)).decode()


class Nonces:
    """The nonces issued, each with the last nonce count seen and when it was used."""

    __slots__ = ("clients",)

    def __init__(self) -> None:
        self.clients: dict[str, list[float]] = {}  # nonce → [last nc, last seen]

    def issue(self, now: float) -> str:
        if len(self.clients) > CLIENTS + TOLERANCE:
            oldest = sorted(self.clients.items(), key=lambda item: item[1][1])
            for nonce, _ in oldest[: 2 * TOLERANCE]:
                del self.clients[nonce]
        nonce = _random_key()
        self.clients[nonce] = [0, now]
        return nonce

    def use(self, nonce: str, count: int, now: float) -> bool:
        """Whether `nonce` was issued and `count` is new; records it."""
        client = self.clients.get(nonce)
        if client is None or (client[0] != 0 and client[0] >= count):
            return False
        client[0], client[1] = count, now
        return True
