"""`forwardAuth`: ask an authentication server before the request goes on.

Traefik's semantics (pkg/middlewares/auth/forward.go), read and re-expressed:

- the auth request is GET (the request's method with `preserveRequestMethod`) to
  `address`, carrying the client's headers (all of them, or only `authRequestHeaders`)
  without the hop-by-hop ones, the X-Forwarded-Proto/Host/Port/Server and X-Real-Ip the
  entrypoint would add, and X-Forwarded-For (the client's address, after the client's own
  list with `trustForwardHeader`), X-Forwarded-Method, -Proto, -Host and -Uri describing the
  original request (the client's values of those only with `trustForwardHeader`);
- a 2xx answer lets the request go on, with each `authResponseHeaders` header (and those
  matching `authResponseHeadersRegex`, after removing the request's headers that match it)
  replaced by the auth server's values; cookies the auth server set whose names are in
  `addAuthCookiesToResponse` are added to the client's response, replacing the backend's
  cookies of those names;
- any other answer is the client's answer: status, headers (hop-by-hop ones removed) and
  body; a relative Location is resolved against `address` unless `preserveLocationHeader`;
- an auth server that cannot be reached, fails or does not answer in time (30 s, Go's
  client timeout in Traefik) gives a 500; a body over `maxResponseBodySize` a 401.

The subrequest is `edge/upstream/subrequest.py::fetch` on a pool of its own (keep-alive
connections to the auth server are reused), and the request waits through a `Defer`: no
task per request. Deliberate difference: the auth response body is bounded even when
`maxResponseBodySize` is -1 (at `UNBOUNDED_LIMIT`), so that an auth server cannot make a
worker hold an endless body. `forwardBody`, `headerField` and `authSigninURL` are not
applied yet: a middleware that sets them answers every request 500 (fail closed), and says
so in the log when the graph is built.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from proxynow.edge.http.middlewares.base import BuildContext, Defer, Reply, Resume, Step
from proxynow.edge.message.headers import HeaderError, RequestHead, ResponseHead
from proxynow.edge.upstream.pool import PoolRegistry, UpstreamPool
from proxynow.edge.upstream.subrequest import TOO_LARGE, Fetched, FetchError, fetch
from proxynow.edge.upstream.transport import PoolKey, TransportOptions
from proxynow.rules.goregexp import RegexpError, Search, compile_regexp

if TYPE_CHECKING:
    from proxynow.config.middlewares import ForwardAuth, Middleware
    from proxynow.edge.http.exchange import Exchange

__all__ = ["AUTH_TIMEOUT", "UNBOUNDED_LIMIT", "build", "canonical"]

log = logging.getLogger(__name__)

AUTH_TIMEOUT = 30.0  # Traefik's auth client: http.Client{Timeout: 30 * time.Second}
UNBOUNDED_LIMIT = 1024 * 1024  # the cap of an auth response body for maxResponseBodySize -1

# Never sent to the auth server as the client sent them (hop-by-hop, framing: the auth
# request has no body), nor taken from its answer.
_HOP = frozenset(
    (
        b"connection",
        b"keep-alive",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-connection",
        b"content-length",
        b"expect",
        b"host",
    )
)
_MANAGED = frozenset(
    (
        b"x-forwarded-for",
        b"x-forwarded-method",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-forwarded-uri",
    )
)
_BODY_METHODS = frozenset((b"POST", b"PUT", b"PATCH"))  # Go sends Content-Length: 0 for these
_SERVER_NAME = socket.gethostname().encode("ascii", "replace")
_FAIL = Reply(500)
_DENIED = Reply(401)


def canonical(name: bytes) -> bytes:
    """Go's CanonicalMIMEHeaderKey (`x-auth-user` → `X-Auth-User`), which the regexp of
    `authResponseHeadersRegex` is matched against."""
    return b"-".join(part[:1].upper() + part[1:].lower() for part in name.split(b"-"))


class _Auth:
    """The compiled options; `request` is the step's request hook."""

    def __init__(self, options: ForwardAuth, context: BuildContext, pool: UpstreamPool) -> None:
        self.pool = pool
        parts = urlsplit(options.address)
        self.address = options.address
        path = parts.path or "/"
        self.target = (path + ("?" + parts.query if parts.query else "")).encode("latin-1")
        self.host = parts.netloc.rpartition("@")[2].encode("idna")
        self.secure = context.secure
        self.trust = options.trust_forward_header
        self.preserve_method = options.preserve_request_method
        self.preserve_location = options.preserve_location_header
        self.request_headers = frozenset(
            name.lower().encode("latin-1") for name in options.auth_request_headers
        )
        self.response_headers = _settable(context.router, options.auth_response_headers)
        self.regex = _regex(context.router, options.auth_response_headers_regex)
        self.cookies = frozenset(
            name.encode("latin-1") for name in options.add_auth_cookies_to_response
        )
        limit = options.max_response_body_size
        self.limit = limit if limit >= 0 else UNBOUNDED_LIMIT
        self.timeout = AUTH_TIMEOUT  # read at build time (tests lower it)

    # -- the request phase

    def request(self, exchange: Exchange) -> Defer:
        data = self.auth_request(exchange)
        head_only = self.preserve_method and exchange.method_b == b"HEAD"

        def start(resume: Resume) -> None:
            def done(result: Fetched | FetchError) -> None:
                resume(self.decide(exchange, result))

            fetch(self.pool, data, head_only, self.limit, self.timeout, done)

        return Defer(start)

    def auth_request(self, exchange: Exchange) -> bytes:
        """The auth request as sent: start line, Host, the client's headers, X-Forwarded-*."""
        head = exchange.head
        method = exchange.method_b if self.preserve_method else b"GET"
        parts = [method, b" ", self.target, b" HTTP/1.1\r\nHost: ", self.host, b"\r\n"]
        kept = self.request_headers
        named = set(head.connection_tokens()) if head.connection else ()
        seen: set[bytes] = set()
        for name, value in head.items():
            lower = name.lower()
            if lower in _HOP or lower in _MANAGED or lower in named:
                continue
            if kept and lower not in kept:
                continue
            seen.add(lower)
            parts += (name, b": ", value, b"\r\n")
        for name, value in self._entrypoint_headers(exchange, head):
            lower = name.lower()
            if lower not in seen and (not kept or lower in kept):
                parts += (name, b": ", value, b"\r\n")
        for name, value in self._forwarded(exchange, head):
            parts += (name, b": ", value, b"\r\n")
        if method in _BODY_METHODS:
            parts.append(b"Content-Length: 0\r\n")
        parts.append(b"\r\n")
        return b"".join(parts)

    def _entrypoint_headers(
        self, exchange: Exchange, head: RequestHead
    ) -> list[tuple[bytes, bytes]]:
        """What the entrypoint adds when the client did not send it (or was not trusted),
        as Traefik's request carries it when its forwardAuth runs."""
        proto = head.xf_proto or (b"https" if self.secure else b"http")
        return [
            (b"X-Forwarded-Port", _port(head.host, proto)),
            (b"X-Forwarded-Server", _SERVER_NAME),
            (b"X-Real-Ip", _client_ip(exchange)),
        ]

    def _forwarded(self, exchange: Exchange, head: RequestHead) -> list[tuple[bytes, bytes]]:
        trust = self.trust
        client = _client_ip(exchange)
        xff = b", ".join([*head.xff, client]) if trust and head.xff else client
        method = (trust and head.get(b"x-forwarded-method")) or exchange.method_b
        proto = (trust and head.xf_proto) or (b"https" if self.secure else b"http")
        host = (trust and head.xf_host) or head.host
        uri = (trust and head.get(b"x-forwarded-uri")) or _request_uri(exchange.target)
        pairs = [(b"X-Forwarded-For", xff), (b"X-Forwarded-Method", method)]
        pairs.append((b"X-Forwarded-Proto", proto))
        if host:
            pairs.append((b"X-Forwarded-Host", host))
        pairs.append((b"X-Forwarded-Uri", uri))
        return pairs

    # -- the answer

    def decide(self, exchange: Exchange, result: Fetched | FetchError) -> Reply | None:
        """The auth server's answer → go on (None) or the client's answer."""
        if isinstance(result, FetchError):
            if log.isEnabledFor(logging.DEBUG):
                log.debug("forwardAuth %s: %s (%s)", self.address, result.kind, result.detail)
            return _DENIED if result.kind == TOO_LARGE else _FAIL
        if not 200 <= result.status < 300:
            return self._denied(result)
        self._copy_headers(exchange.head, result.headers)
        if self.cookies:
            self._add_cookies(exchange, result.headers)
        return None

    def _denied(self, result: Fetched) -> Reply:
        headers = [(name, value) for name, value in result.headers if name.lower() not in _HOP]
        if not self.preserve_location:
            for index, (name, value) in enumerate(headers):
                if name.lower() == b"location" and value:
                    joined = urljoin(self.address, value.decode("latin-1"))
                    headers[index] = (name, joined.encode("latin-1", "replace"))
        return Reply(result.status, tuple(headers), result.body)

    def _copy_headers(self, head: RequestHead, answer: tuple[tuple[bytes, bytes], ...]) -> None:
        for name in self.response_headers:
            lower = name.lower()
            values = [value for key, value in answer if key.lower() == lower]
            head.remove(name)
            for value in values:
                head.append(name, value)
        regex = self.regex
        if regex is None:
            return
        for name, _ in head.items():
            if regex(canonical(name).decode("latin-1")) is not None and name.lower() not in _HOP:
                _remove(head, name)
        for name, value in answer:
            if name.lower() not in _HOP and regex(canonical(name).decode("latin-1")) is not None:
                _append(head, canonical(name), value)

    def _add_cookies(self, exchange: Exchange, answer: tuple[tuple[bytes, bytes], ...]) -> None:
        for name, value in answer:
            if name.lower() == b"set-cookie" and _cookie_name(value) in self.cookies:
                exchange.add_response_line(b"Set-Cookie: " + value + b"\r\n")

    # -- the response-head phase (only with addAuthCookiesToResponse)

    def response_head(self, exchange: Exchange, status: int, head: ResponseHead) -> None:
        """Replace the backend's cookies of the listed names by the auth server's, which
        `_add_cookies` parked among the lines the proxy adds; they go last, as Traefik
        adds them after the backend's."""
        added = exchange.response_head
        if b"Set-Cookie: " not in added:
            return
        lines = added.split(b"\r\n")
        ours = [line for line in lines if self._parked(line)]
        if not ours:
            return
        exchange.response_head = b"".join(
            line + b"\r\n" for line in lines if line and line not in ours
        )
        cookies = head.get_all(b"set-cookie")
        head.remove(b"set-cookie")
        for value in cookies:
            if _cookie_name(value) not in self.cookies:
                head.append(b"Set-Cookie", value)
        for line in ours:
            head.append(b"Set-Cookie", line[len(b"Set-Cookie: ") :])

    def _parked(self, line: bytes) -> bool:
        return line.startswith(b"Set-Cookie: ") and _cookie_name(line[12:]) in self.cookies


def _cookie_name(value: bytes) -> bytes:
    return value.partition(b"=")[0].strip()


def _client_ip(exchange: Exchange) -> bytes:
    ip = exchange.client_ip
    return str(ip).encode("ascii") if ip is not None else b""


def _port(host: bytes, proto: bytes) -> bytes:
    colon = host.rfind(b":")
    if colon > host.rfind(b"]") and host[colon + 1 :]:
        return host[colon + 1 :]
    return b"443" if proto == b"https" else b"80"


def _request_uri(target: bytes) -> bytes:
    """Go's URL.RequestURI(): the path and query, also of an absolute-form target."""
    if target.startswith(b"/"):
        return target
    split = target.split(b"/", 3)
    return b"/" + split[3] if len(split) == 4 else b"/"


def _remove(head: RequestHead, name: bytes) -> None:
    # A header the proxy owns (framing) is never the auth server's to change.
    with contextlib.suppress(HeaderError):
        head.remove(name)


def _append(head: RequestHead, name: bytes, value: bytes) -> None:
    with contextlib.suppress(HeaderError):  # see _remove; an invalid value is never written
        head.append(name, value)


def _settable(router: str, names: list[str]) -> tuple[bytes, ...]:
    """The `authResponseHeaders` the header API lets a middleware write."""
    kept = []
    for text in names:
        name = canonical(text.encode("latin-1"))
        try:
            RequestHead(trusted=True).set(name, b"x")
        except HeaderError as exc:
            log.warning("router %s: forwardAuth authResponseHeaders: %s; skipped", router, exc)
            continue
        kept.append(name)
    return tuple(kept)


def _regex(router: str, pattern: str) -> Search | None:
    """A Go regexp, linear in time (RE2): header names come from clients and the auth server."""
    if not pattern:
        return None
    try:
        return compile_regexp(pattern).search
    except RegexpError as exc:
        log.error("router %s: forwardAuth authResponseHeadersRegex %r: %s", router, pattern, exc)
        return _nothing  # matches nothing: no header is copied


def _nothing(text: str) -> None:
    return None


def _pool(options: ForwardAuth, pools: PoolRegistry) -> UpstreamPool | None:
    parts = urlsplit(options.address)
    try:
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    tls = options.tls
    transport = TransportOptions(name="forwardAuth " + options.address)
    if tls is not None:
        transport = TransportOptions(
            name="forwardAuth " + options.address,
            insecure_skip_verify=tls.insecure_skip_verify,
            root_cas=(tls.ca,) if tls.ca else (),
            certificates=((tls.cert, tls.key),) if tls.cert and tls.key else (),
        )
    default = 443 if parts.scheme == "https" else 80
    return pools.get(PoolKey(parts.scheme, parts.hostname, port or default, transport))


def _refuse_all(exchange: Exchange) -> Reply:
    return _FAIL


def build(middleware: Middleware, context: BuildContext) -> Step:
    """The `forwardAuth` builder (registry.py)."""
    options = middleware.forward_auth
    assert options is not None
    unapplied = [
        name
        for name, value in (
            ("forwardBody", options.forward_body),
            ("headerField", options.header_field),
            ("authSigninURL", options.auth_signin_url),
        )
        if value
    ]
    pool = _pool(options, context.pools or PoolRegistry())
    if unapplied or pool is None:
        why = f"{', '.join(unapplied)} not applied yet" if unapplied else "invalid address"
        log.error(
            "router %s: forwardAuth %s: %s; every request is answered 500",
            context.router,
            options.address,
            why,
        )
        return Step("forwardAuth", request=_refuse_all)
    auth = _Auth(options, context, pool)
    head_hook = auth.response_head if auth.cookies else None
    return Step("forwardAuth", request=auth.request, response_head=head_hook)
