"""`basicAuth`: HTTP Basic authentication against htpasswd entries (htpasswd.py).

As Traefik (traefik pkg/middlewares/auth/basic_auth.go): the credentials come from
`Authorization: Basic` (any case of `Basic`, standard base64, `user:password` cut at the
first colon); a failure is 401 with `WWW-Authenticate: Basic realm="<realm>"` (default
realm "traefik") and the body `401 Unauthorized`; on success `headerField`, when set, gets
the user name and `removeHeader` drops `Authorization` before the backend.

bcrypt takes 50-250 ms: it never runs on the event loop. The check goes to a small thread
pool shared by the worker (`_Verifier`, two threads; bcrypt releases the GIL) and the
request waits on a `Defer` resumed from the future's done callback. Concurrent checks of
the same credentials run once (Traefik's singleflight); a success is remembered for
`CACHE_TTL` seconds in a bounded table (keyed by a SHA-256 of user, password and hash, so
no password is kept); at most `MAX_PENDING` distinct checks wait at once per worker, and
past that a request is answered 503 with `Retry-After: 1` rather than queueing CPU work
without bound. MD5-crypt and SHA1 are cheap and checked inline. Neither a password nor a
hash is ever logged.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from proxynow.edge.http.middlewares.base import BuildContext, Defer, Reply, Resume, Step
from proxynow.edge.http.middlewares.htpasswd import (
    check_bcrypt,
    check_fast,
    header_field,
    is_bcrypt,
    load_users,
)
from proxynow.edge.http.middlewares.replies import text_reply

if TYPE_CHECKING:
    from proxynow.config.middlewares import Middleware
    from proxynow.edge.http.exchange import Exchange

__all__ = ["CACHE_TTL", "MAX_PENDING", "build", "challenge", "credentials", "realm_of"]

CACHE_TTL = 30.0  # seconds a verified (user, password, hash) is trusted without bcrypt
CACHE_SIZE = 1024
MAX_PENDING = 32
_BUSY = text_reply(503, (b"Retry-After", b"1"))


def build(middleware: Middleware, context: BuildContext) -> Step:
    """The `basicAuth` builder (registry.py); `ValueError`/`OSError` for bad users."""
    options = middleware.basic_auth
    assert options is not None
    table = load_users(options.users, options.users_file, 2)
    users = {name.encode(): secret.encode() for name, secret in table.items()}
    refusal = challenge(b'Basic realm="%s"' % realm_of(options.realm))
    grant = _granting(header_field(options.header_field), options.remove_header)
    cache = _Cache()

    def request(exchange: Exchange) -> Reply | Defer | None:
        given = credentials(exchange.head.get(b"authorization"))
        secret = users.get(given[0]) if given is not None else None
        if given is None or secret is None:
            return refusal
        user, password = given
        if not is_bcrypt(secret):
            return grant(exchange, user) if check_fast(password, secret) else refusal
        key = hashlib.sha256(b"\0".join((user, password, secret))).digest()
        loop = asyncio.get_running_loop()
        if cache.hit(key, loop.time()):
            return grant(exchange, user)
        if not VERIFIER.has_room(key):
            return _BUSY

        def start(resume: Resume) -> None:
            def checked(ok: bool) -> None:
                if ok:
                    cache.add(key, loop.time())
                resume(grant(exchange, user) if ok else refusal)

            VERIFIER.check(loop, key, password, secret, checked)

        return Defer(start)

    return Step("basicAuth", request=request)


def realm_of(realm: str) -> bytes:
    """The realm as it goes into the challenge; `ValueError` for one that would break it."""
    value = (realm or "traefik").encode("utf-8")
    if any(byte < 0x20 or byte == 0x7F for byte in value) or b'"' in value:
        raise ValueError("realm must not contain control characters or quotes")
    return value


def challenge(authenticate: bytes) -> Reply:
    """go-http-auth's 401: its text/plain body and the challenge."""
    headers = ((b"Content-Type", b"text/plain"), (b"WWW-Authenticate", authenticate))
    return Reply(401, headers, b"401 Unauthorized\n")


def credentials(header: bytes | None) -> tuple[bytes, bytes] | None:
    """(user, password) of an `Authorization: Basic` value, as Go's Request.BasicAuth."""
    if header is None or len(header) < 6 or header[:6].lower() != b"basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:], validate=True)
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(b":")
    return (user, password) if colon else None


def _granting(field: bytes, remove: bool) -> Callable[[Exchange, bytes], None]:
    """What success does to the request: the user in `headerField`, no Authorization."""

    def grant(exchange: Exchange, user: bytes) -> None:
        head = exchange.head
        if field:
            head.set(field, user)
        if remove:
            head.remove(b"authorization")

    return grant


class _Cache:
    """Verified credential digests → when they stop being trusted (bounded, LRU)."""

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: OrderedDict[bytes, float] = OrderedDict()

    def hit(self, key: bytes, now: float) -> bool:
        until = self.entries.get(key)
        if until is None:
            return False
        if until < now:
            del self.entries[key]
            return False
        return True

    def add(self, key: bytes, now: float) -> None:
        self.entries[key] = now + CACHE_TTL
        self.entries.move_to_end(key)
        if len(self.entries) > CACHE_SIZE:
            self.entries.popitem(last=False)


class _Verifier:
    """The worker's bcrypt checks: a two-thread pool (made on first use), one check per
    distinct credentials at a time, at most MAX_PENDING waiting."""

    __slots__ = ("pending", "pool")

    def __init__(self) -> None:
        self.pool: ThreadPoolExecutor | None = None
        self.pending: dict[bytes, list[Callable[[bool], None]]] = {}

    def has_room(self, key: bytes) -> bool:
        return key in self.pending or len(self.pending) < MAX_PENDING

    def check(
        self,
        loop: asyncio.AbstractEventLoop,
        key: bytes,
        password: bytes,
        secret: bytes,
        done: Callable[[bool], None],
    ) -> None:
        waiting = self.pending.get(key)
        if waiting is not None:
            waiting.append(done)
            return
        self.pending[key] = [done]
        if self.pool is None:
            self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="bcrypt")
        future = loop.run_in_executor(self.pool, check_bcrypt, password, secret)
        future.add_done_callback(lambda finished: self._finished(key, finished))

    def _finished(self, key: bytes, finished: asyncio.Future[bool]) -> None:
        ok = not finished.cancelled() and finished.exception() is None and finished.result()
        for done in self.pending.pop(key, ()):
            done(ok)


# One per worker process (a worker is one thread and one loop): the threads outlive graph
# swaps, so a configuration change does not leave pools behind.
VERIFIER = _Verifier()
