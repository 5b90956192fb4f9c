"""Client affinity: Traefik's `sticky.cookie` (loadBalancer, weighted) and `strategy: hrw`.

A sticky service keeps a client on the child it was first sent to. The response that
starts a session carries `Set-Cookie: <name>=<value>`, where the value names the child
(a server URL for a load balancer, a child service name for a weighted service) as
Traefik v3 does: the first 16 hex digits of its SHA-256. Cookies written by older
Traefik versions (the plain name, its FNV-1 64 hash, that hash hashed again) are still
honoured, and rewritten to the current form. A cookie naming an unknown child, or one
that is not in its balancer's live set (see `live`), is ignored: the request is balanced
as usual and gets a new cookie. Nested services are sticky at every level that asks for
it, each with its own cookie.

Everything is computed when the graph is built (pkg/server/service/loadbalancer/sticky.go
is the behaviour followed): the value → child map, the whole `Set-Cookie` line of each
child, the cookie name as bytes. A request of a sticky service pays for one scan of its
`Cookie` headers per sticky level; requests of other services pay nothing here (the one
test is `HttpTarget.sticky is not None` in `edge/proxy/dispatch.py`). The header lines are added
to the client's response head through `Exchange.response_head`, which holds the lines the
proxy adds until the backend's head arrives (`edge/http1/protocol.py` `upstream_head`).

This module sits below the request model: it reads a request only through `StickyRequest`
(the client IP, a cookie lookup, adding a line to the response head), which
`edge/http/exchange.py::Exchange` satisfies structurally, and is generic over the server type
it hands back (`S`, anything with a `url`), so it imports neither the exchange nor the graph.

`Rendezvous` (`strategy: hrw`) is the other pick that reads the request (its client IP),
so it reaches the data plane the same way, as `HttpTarget.sticky`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import re
import string
import struct
from collections.abc import Callable, Iterable, Sequence
from typing import Generic, Protocol, TypeVar

from proxynow.config.dynamic import Cookie
from proxynow.edge.balance.wrr import Balancer

__all__ = [
    "Rendezvous",
    "StickyBalancer",
    "StickyCookie",
    "StickyPick",
    "StickyRequest",
    "Through",
    "cookie_name",
    "cookie_value",
    "fnv1_64",
    "fnv1a_32",
    "live",
    "set_cookie_suffix",
    "sha256_value",
    "sticky_failover",
    "sticky_servers",
    "sticky_services",
]

log = logging.getLogger(__name__)


class StickyRequest(Protocol):
    """What a sticky pick reads of a request and writes for its response."""

    @property
    def client_ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        """The client's address (hrw hashes it)."""

    def cookie(self, name: bytes) -> bytes | None:
        """The value of the request's cookie `name` (see `cookie_value`), or None."""

    def add_response_line(self, line: bytes) -> None:
        """Add a whole header line (CRLF included) to the response sent to the client."""


class Backend(Protocol):
    """What a sticky pick reads of the servers it chooses among: their URL."""

    @property
    def url(self) -> str: ...


T = TypeVar("T")
S = TypeVar("S", bound=Backend)
# A pick that reads the request, down to a server of type S (edge/graph/services.py: `Server`).
StickyPick = Callable[[StickyRequest], S | None]
# A pick that does not: a balancer's, or a service tree's below it.
Pick = Callable[[], S | None]

# RFC 2616 §2.2 token characters: anything else in a configured name becomes "_".
_TOKEN = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-.^`|~")
_DOMAIN = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?")
_SAME_SITE = {"none": "None", "lax": "Lax", "strict": "Strict"}
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK = (1 << 64) - 1
_FNV32_OFFSET = 0x811C9DC5
_FNV32_PRIME = 0x01000193


# ---------------------------------------------------------------- names and values


def cookie_name(configured: str, service: str) -> str:
    """The cookie's name: the configured one made a token, else derived from the
    (qualified) service name as Traefik does: "_" and 5 hex digits of a SHA-1."""
    if configured:
        return "".join(c if c in _TOKEN else "_" for c in configured)
    digest = hashlib.sha1(("_TRAEFIK_BACKEND_" + service).encode()).hexdigest()
    return "_" + digest[:5]


def sha256_value(key: str) -> str:
    """The value naming `key` in a cookie written now: 16 hex digits of its SHA-256."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def fnv1_64(key: str) -> str:
    """FNV-1 (not 1a) 64-bit hash in lowercase hex without padding: the value Traefik
    before v3.1 wrote (Go's `fnv.New64`, formatted base 16)."""
    h = _FNV_OFFSET
    for byte in key.encode():
        h = (h * _FNV_PRIME) & _MASK
        h ^= byte
    return format(h, "x")


def fnv1a_32(data: bytes, h: int = _FNV32_OFFSET) -> int:
    """FNV-1a 32-bit of `data`, continuing from `h` (Go's `fnv.New32a`)."""
    for byte in data:
        h = ((h ^ byte) * _FNV32_PRIME) & 0xFFFFFFFF
    return h


def _values(key: str) -> list[tuple[bytes, bool]]:
    """Every cookie value that names `key`, with whether it is the current form."""
    fnv = fnv1_64(key)
    legacy = (key, fnv, fnv1_64(fnv))
    return [(sha256_value(key).encode(), True)] + [(v.encode("latin-1"), False) for v in legacy]


def set_cookie_suffix(cookie: Cookie) -> bytes:
    """The attributes after `name=value` and the line end, formatted as Go's
    `http.Cookie.String` does (Path, Domain, Max-Age, HttpOnly, Secure, SameSite)."""
    parts: list[str] = []
    # Go drops bytes a path attribute cannot hold; that also keeps CR/LF out of the head.
    path = "".join(c for c in cookie.path if " " <= c < "\x7f" and c != ";")
    if path:
        parts.append("; Path=" + path)
    domain = cookie.domain.removeprefix(".")
    if domain and _DOMAIN.fullmatch(domain):
        parts.append("; Domain=" + domain)
    elif domain:
        log.warning("sticky cookie: invalid domain %r ignored", cookie.domain)
    if cookie.max_age > 0:
        parts.append(f"; Max-Age={cookie.max_age}")
    elif cookie.max_age < 0:
        parts.append("; Max-Age=0")  # expire now
    if cookie.http_only:
        parts.append("; HttpOnly")
    if cookie.secure:
        parts.append("; Secure")
    if cookie.same_site:
        parts.append("; SameSite=" + _SAME_SITE[cookie.same_site])
    return "".join(parts).encode("ascii") + b"\r\n"


class StickyCookie:
    """One service's cookie: its name and the fixed part of its `Set-Cookie` line."""

    __slots__ = ("name", "suffix")

    def __init__(self, cookie: Cookie, service: str) -> None:
        self.name = cookie_name(cookie.name, service).encode("ascii")
        self.suffix = set_cookie_suffix(cookie)

    def line(self, key: str) -> bytes:
        """The whole `Set-Cookie` header line naming `key`."""
        return b"Set-Cookie: %b=%b%b" % (self.name, sha256_value(key).encode(), self.suffix)


# ---------------------------------------------------------------- reading the request


def cookie_value(headers: Iterable[bytes], name: bytes) -> bytes | None:
    """The value of cookie `name` in a request's Cookie header values (in order), or None.
    The first one wins across every Cookie header, as Go's `Request.Cookie`; pairs are
    split on ";", trimmed, and a quoted value is unquoted."""
    for header in headers:
        if name in header:
            found = _pair_value(header, name)
            if found is not None:
                return found
    return None


def _pair_value(header: bytes, name: bytes) -> bytes | None:
    for pair in header.split(b";"):
        key, _, value = pair.strip().partition(b"=")
        if key == name:
            if len(value) > 1 and value[0] == 0x22 and value[-1] == 0x22:
                value = value[1:-1]
            return value
    return None


# ---------------------------------------------------------------- choosing


def live(balancer: Balancer[T], index: int) -> bool:
    """Whether child `index` may serve a request whose cookie names it: it is in its
    balancer's live set. The one place that decides it (health checks hook here)."""
    return balancer.has(index)


class _Child(Generic[T, S]):
    __slots__ = ("current", "index", "item", "line", "sticky")

    def __init__(
        self, index: int, item: T, line: bytes, sticky: StickyPick[S] | None, current: bool
    ) -> None:
        self.index = index
        self.item = item
        self.line = line  # the Set-Cookie line naming this child
        self.sticky = sticky  # the child service's own stickiness (weighted services)
        self.current = current  # False: an old cookie form, rewritten when it is used


# From the chosen child (a server, or a service's pick) down to a server.
Descend = Callable[[T, StickyPick[S] | None, StickyRequest], S | None]


class StickyBalancer(Generic[T, S]):
    """A balancer with a cookie: the child the cookie names if it is live, else the
    balancer's pick with a new cookie; then down into the child (`descend`)."""

    __slots__ = ("balancer", "by_id", "by_value", "descend", "name")

    def __init__(
        self,
        balancer: Balancer[T],
        cookie: StickyCookie,
        children: Sequence[tuple[str, T, StickyPick[S] | None]],
        descend: Descend[T, S],
    ) -> None:
        self.balancer = balancer
        self.name = cookie.name
        self.descend = descend
        self.by_value: dict[bytes, _Child[T, S]] = {}
        self.by_id: dict[int, _Child[T, S]] = {}
        for index, (key, item, sticky) in enumerate(children):
            line = cookie.line(key)
            for value, current in _values(key):
                # setdefault: two children with one key (the same URL twice) keep the first.
                self.by_value.setdefault(value, _Child(index, item, line, sticky, current))
            self.by_id[id(item)] = _Child(index, item, line, sticky, True)

    def __call__(self, request: StickyRequest) -> S | None:
        value = request.cookie(self.name)
        if value is not None:
            known = self.by_value.get(value)
            if known is not None and live(self.balancer, known.index):
                if not known.current:
                    request.add_response_line(known.line)
                return self.descend(known.item, known.sticky, request)
        item = self.balancer.pick()
        if item is None:
            return None
        child = self.by_id.get(id(item))
        if child is None:
            # The balancer was rebound to a newer graph's children (a build that failed
            # after it): serve the child, without a cookie this once.
            return self.descend(item, None, request)
        request.add_response_line(child.line)
        return self.descend(item, child.sticky, request)


class Through(Generic[S]):
    """A weighted service without a cookie of its own whose children have one: balanced
    as usual, then the chosen child's stickiness."""

    __slots__ = ("balancer", "stickies")

    def __init__(self, balancer: Balancer[Pick[S]], stickies: dict[int, StickyPick[S]]) -> None:
        self.balancer = balancer
        self.stickies = stickies  # id(child pick) → its stickiness

    def __call__(self, request: StickyRequest) -> S | None:
        child = self.balancer.pick()
        if child is None:
            return None
        sticky = self.stickies.get(id(child))
        return sticky(request) if sticky is not None else child()


def _server(item: S, sticky: StickyPick[S] | None, request: StickyRequest) -> S | None:
    return item


def _service(item: Pick[S], sticky: StickyPick[S] | None, request: StickyRequest) -> S | None:
    return sticky(request) if sticky is not None else item()


def sticky_servers(
    balancer: Balancer[S], cookie: Cookie, service: str, servers: Sequence[S]
) -> StickyPick[S]:
    """The stickiness of a load balancer over `servers` (in the balancer's order)."""
    children: list[tuple[str, S, StickyPick[S] | None]] = [
        (server.url, server, None) for server in servers
    ]
    sticky: StickyBalancer[S, S] = StickyBalancer(
        balancer, StickyCookie(cookie, service), children, _server
    )
    return sticky


def sticky_services(
    balancer: Balancer[Pick[S]],
    cookie: Cookie | None,
    service: str,
    children: Sequence[tuple[str, Pick[S], StickyPick[S] | None]],
) -> StickyPick[S] | None:
    """The stickiness of a weighted service over its live children `(name, pick, their
    stickiness)` in the balancer's order; None when no level below or here is sticky."""
    if cookie is not None:
        sticky: StickyBalancer[Pick[S], S] = StickyBalancer(
            balancer, StickyCookie(cookie, service), children, _service
        )
        return sticky
    stickies = {id(pick): sticky for _, pick, sticky in children if sticky is not None}
    return Through(balancer, stickies) if stickies else None


def sticky_failover(
    main: Pick[S],
    fallback: Pick[S],
    main_sticky: StickyPick[S] | None,
    fallback_sticky: StickyPick[S] | None,
) -> StickyPick[S] | None:
    """A failover service's stickiness: its main service's while that has a live server,
    else its fallback's (edge/graph/build.py `_failover`); None when neither is sticky."""
    if main_sticky is None and fallback_sticky is None:
        return None
    first: StickyPick[S] = main_sticky or (lambda request: main())
    second: StickyPick[S] = fallback_sticky or (lambda request: fallback())

    def pick(request: StickyRequest) -> S | None:
        server = first(request)
        return server if server is not None else second(request)

    return pick


class Rendezvous(Generic[S]):
    """`strategy: hrw`: rendezvous hashing of the client IP over the live servers, scored
    as Traefik does (pkg/server/service/loadbalancer/hrw): FNV-1a 32 of IP + server URL,
    as a float32 fraction s of 2^32, score = 1 / -ln(s) * weight; the highest wins, the first
    one on a tie. Stickiness by cookie does not apply to it (as in Traefik)."""

    __slots__ = ("balancer", "servers")

    def __init__(self, balancer: Balancer[S], servers: Sequence[tuple[S, float]]):
        self.balancer = balancer
        self.servers = [(i, s, s.url.encode(), w) for i, (s, w) in enumerate(servers) if w > 0]

    def __call__(self, request: StickyRequest) -> S | None:
        ip = request.client_ip
        start = fnv1a_32(str(ip).encode() if ip is not None else b"")
        best, top = None, 0.0
        for index, server, name, weight in self.servers:
            if live(self.balancer, index):
                score = hrw_score(fnv1a_32(name, start), weight)
                if score > top:
                    best, top = server, score
        return best


def hrw_score(hashed: int, weight: float) -> float:
    """Traefik's HRW score of a 32-bit hash: 1 / -ln(float32(hash) / 2^32) * weight."""
    fraction = _float32(hashed) / 4294967296.0
    if fraction <= 0.0 or fraction >= 1.0:
        return 0.0  # Go gets 0 and -Inf there: never the highest
    return (1.0 / -math.log(fraction)) * weight  # Go's order of operations


def _float32(value: int) -> float:
    """`value` rounded to the nearest float32, as Go's float32(uint32) conversion does."""
    result: float = struct.unpack("<f", struct.pack("<f", float(value)))[0]
    return result
