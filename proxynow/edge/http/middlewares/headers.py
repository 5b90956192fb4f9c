"""`headers`: custom request and response headers, CORS, and the security headers.

Traefik's layering is kept (pkg/middlewares/headers): the CORS/custom part wraps the
security part, so for a request

1. a CORS preflight (OPTIONS with Origin and Access-Control-Request-Method, when any CORS
   option is set) is answered here, 200 with no body, without reaching the backend: it
   gets Allow-Credentials, Allow-Headers, Allow-Methods, Expose-Headers and Max-Age as
   configured (Max-Age only when not 0), Allow-Origin only when the Origin is allowed;
   none of the custom or security response headers, nor Vary;
2. the custom request headers are applied (an empty value removes the header; `Host`
   replaces the Host sent on);
3. the security checks run on the rewritten request: `allowedHosts` (against the first
   non-empty `hostsProxyHeaders` value, else Host; a miss is 500 "Bad Host"), then the
   deprecated `sslRedirect`.

On the backend's response head the security headers are set first, then the custom
response headers (so a custom one overrides or, when empty, removes a security one), then
Access-Control-Allow-Origin (when the Origin is allowed; `*` in the list allows every
request, even one without an Origin), -Allow-Credentials, -Expose-Headers and Vary.
"HTTPS" for STS and Public-Key-Pins means: the router is served over TLS here, or a
`sslProxyHeaders` header has its configured value.

Everything is turned into bytes when the graph is built; a header name or value the
header API refuses (a framing or hop-by-hop header, a CR or LF) is logged and dropped then.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from proxynow.edge.http.middlewares.base import BuildContext, Reply, Step
from proxynow.edge.message.headers import HeaderError, RequestHead, ResponseHead, line_header
from proxynow.rules.goregexp import RegexpError, Search, compile_regexp

if TYPE_CHECKING:
    from proxynow.config.middlewares import Headers, Middleware
    from proxynow.edge.http.exchange import Exchange

__all__ = ["build", "has_cors", "has_security"]

log = logging.getLogger(__name__)

_Pairs = tuple[tuple[bytes, bytes], ...]
# Go's http.Error, as unrolled/secure's bad-host handler answers.
_BAD_HOST = Reply(
    500,
    ((b"Content-Type", b"text/plain; charset=utf-8"), (b"X-Content-Type-Options", b"nosniff")),
    b"Bad Host\n",
)


def has_cors(options: Headers) -> bool:
    """Traefik's `hasCorsHeaders`: any CORS option set."""
    return bool(
        options.access_control_allow_credentials
        or options.access_control_allow_headers
        or options.access_control_allow_methods
        or options.access_control_allow_origin_list
        or options.access_control_allow_origin_list_regex
        or options.access_control_expose_headers
        or options.access_control_max_age
        or options.add_vary_header
    )


def has_security(options: Headers) -> bool:
    """Traefik's `hasSecureHeaders`: any option of the security part set."""
    return bool(
        options.allowed_hosts
        or options.hosts_proxy_headers
        or options.ssl_redirect
        or options.ssl_temporary_redirect
        or options.ssl_force_host
        or options.ssl_host
        or options.ssl_proxy_headers
        or options.sts_seconds
        or options.sts_include_subdomains
        or options.sts_preload
        or options.force_sts_header
        or options.frame_deny
        or options.custom_frame_options_value
        or options.content_type_nosniff
        or options.browser_xss_filter
        or options.custom_browser_xss_value
        or options.content_security_policy
        or options.content_security_policy_report_only
        or options.public_key
        or options.referrer_policy
        or options.feature_policy
        or options.permissions_policy
        or options.is_development
    )


def _b(text: str) -> bytes:
    return text.encode("latin-1", "replace")


def _checked_pairs(
    router: str, headers: dict[str, str], probe: Callable[[bytes, bytes], None]
) -> _Pairs:
    """The configured (name, value) pairs the header API accepts (`probe` raises if not)."""
    kept: list[tuple[bytes, bytes]] = []
    for name, value in headers.items():
        pair = (_b(name), _b(value))
        try:
            if value:
                probe(*pair)
            else:
                probe(pair[0], b"x")
        except HeaderError as exc:
            log.warning("router %s: headers middleware: %s; header skipped", router, exc)
            continue
        kept.append(pair)
    return tuple(kept)


def _request_probe(name: bytes, value: bytes) -> None:
    RequestHead(trusted=True).set(name, value)


def _response_probe(name: bytes, value: bytes) -> None:
    ResponseHead().set(name, value)


class _Origins:
    """Which Origin values the CORS options allow (Traefik's `isOriginAllowed`)."""

    __slots__ = ("listed", "regexes")

    def __init__(self, options: Headers) -> None:
        self.listed = tuple(_b(item) for item in options.access_control_allow_origin_list)
        self.regexes = tuple(_compiled(options.access_control_allow_origin_list_regex))

    def match(self, origin: bytes) -> bytes | None:
        """The Allow-Origin value to send for `origin`, or None (the list in order,
        `*` matching anything, then the regexps)."""
        for item in self.listed:
            if item == b"*" or item == origin:
                return item
        if self.regexes:
            text = origin.decode("latin-1")
            for search in self.regexes:
                if search(text) is not None:  # Go's MatchString: anywhere in the value
                    return origin
        return None


def _compiled(patterns: list[str]) -> list[Search]:
    """Go regexps run in linear time (RE2): the Origin is the client's to choose."""
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(compile_regexp(pattern).search)
        except RegexpError as exc:
            log.warning(
                "headers middleware: accessControlAllowOriginListRegex %r: %s", pattern, exc
            )
    return compiled


def _security_headers(options: Headers) -> tuple[_Pairs, _Pairs]:
    """(headers always set, headers set only over HTTPS), in unrolled/secure's order."""
    always: list[tuple[bytes, bytes]] = []
    https: list[tuple[bytes, bytes]] = []
    dev = options.is_development
    if options.sts_seconds and not dev:
        sts = b"max-age=%d" % options.sts_seconds
        if options.sts_include_subdomains:
            sts += b"; includeSubDomains"
        if options.sts_preload:
            sts += b"; preload"
        (always if options.force_sts_header else https).append((b"Strict-Transport-Security", sts))
    if options.custom_frame_options_value:
        always.append((b"X-Frame-Options", _b(options.custom_frame_options_value)))
    elif options.frame_deny:
        always.append((b"X-Frame-Options", b"DENY"))
    if options.content_type_nosniff:
        always.append((b"X-Content-Type-Options", b"nosniff"))
    if options.custom_browser_xss_value:
        always.append((b"X-XSS-Protection", _b(options.custom_browser_xss_value)))
    elif options.browser_xss_filter:
        always.append((b"X-XSS-Protection", b"1; mode=block"))
    if options.public_key and not dev:
        https.append((b"Public-Key-Pins", _b(options.public_key)))
    for name, value in (
        (b"Content-Security-Policy", options.content_security_policy),
        (b"Content-Security-Policy-Report-Only", options.content_security_policy_report_only),
        (b"Referrer-Policy", options.referrer_policy),
        (b"Feature-Policy", options.feature_policy),
        (b"Permissions-Policy", options.permissions_policy),
    ):
        if value:
            always.append((name, _b(value)))
    return _valid(always), _valid(https)


def _valid(pairs: list[tuple[bytes, bytes]]) -> _Pairs:
    kept = []
    for name, value in pairs:
        try:
            _response_probe(name, value)
        except HeaderError as exc:
            log.warning("headers middleware: %s; header skipped", exc)
            continue
        kept.append((name, value))
    return tuple(kept)


# How a custom request header is written: removed (an empty value), set as a checked line
# (`RequestHead.set_line`), or through `set` (Host, the forwarded headers kept in fields).
_REMOVE: Final = 0
_SET_LINE: Final = 1
_SET: Final = 2


def _write(name: bytes, value: bytes) -> int:
    if not value:
        return _REMOVE
    return _SET_LINE if line_header(name, value) else _SET


class _HeadersStep:
    """The compiled options; its bound methods are the step's hooks."""

    def __init__(self, options: Headers, context: BuildContext) -> None:
        router = context.router
        self.secure = context.secure
        self.request_headers = _checked_pairs(
            router, options.custom_request_headers, _request_probe
        )
        self.request_writes = tuple(
            (name, value, _write(name, value)) for name, value in self.request_headers
        )
        self.response_headers = _checked_pairs(
            router, options.custom_response_headers, _response_probe
        )
        self.cors = has_cors(options)
        self.origins = _Origins(options)
        self.credentials = options.access_control_allow_credentials
        self.allow_headers = _b(",".join(options.access_control_allow_headers))
        self.allow_methods = _b(",".join(options.access_control_allow_methods))
        self.max_age = b"%d" % options.access_control_max_age
        self.expose = _b(",".join(options.access_control_expose_headers))
        self.vary = options.add_vary_header
        self.security = has_security(options)
        self.always, self.https = _security_headers(options) if self.security else ((), ())
        dev = options.is_development
        self.allowed_hosts = (
            frozenset(_b(host).lower() for host in options.allowed_hosts)
            if not dev
            else frozenset()
        )
        self.hosts_proxy_headers = tuple(_b(name) for name in options.hosts_proxy_headers)
        self.ssl_proxy_headers = tuple(
            (_b(name), _b(value)) for name, value in options.ssl_proxy_headers.items()
        )
        self.ssl_redirect = (options.ssl_redirect or options.ssl_temporary_redirect) and not dev
        self.ssl_status = 307 if options.ssl_temporary_redirect else 301
        self.ssl_host = _b(options.ssl_host)

    def needs_request(self) -> bool:
        return bool(self.cors or self.request_headers or self.allowed_hosts or self.ssl_redirect)

    def needs_response(self) -> bool:
        return bool(self.always or self.https or self.response_headers or self.cors)

    # -- request phase

    def request(self, exchange: Exchange) -> Reply | None:
        head = exchange.head
        if self.cors and exchange.method_b == b"OPTIONS":
            preflight = self._preflight(head)
            if preflight is not None:
                return preflight
        for name, value, write in self.request_writes:
            if write == _SET_LINE:
                head.set_line(name, value)  # checked at the build: no check per request
            elif write == _SET:
                head.set(name, value)
            else:
                head.remove(name)
        if self.allowed_hosts and self._host(head).lower() not in self.allowed_hosts:
            return _BAD_HOST
        if self.ssl_redirect and not self._https(head):
            return self._redirect(exchange)
        return None

    def _preflight(self, head: RequestHead) -> Reply | None:
        origin = head.get(b"origin")
        if not origin or not head.get(b"access-control-request-method"):
            return None
        headers: list[tuple[bytes, bytes]] = []
        if self.credentials:
            headers.append((b"Access-Control-Allow-Credentials", b"true"))
        if self.allow_headers:
            headers.append((b"Access-Control-Allow-Headers", self.allow_headers))
        if self.allow_methods:
            headers.append((b"Access-Control-Allow-Methods", self.allow_methods))
        allowed = self.origins.match(origin)
        if allowed is not None:
            headers.append((b"Access-Control-Allow-Origin", allowed))
        if self.expose:
            headers.append((b"Access-Control-Expose-Headers", self.expose))
        if self.max_age != b"0":
            headers.append((b"Access-Control-Max-Age", self.max_age))
        return Reply(200, tuple(headers))

    def _host(self, head: RequestHead) -> bytes:
        for name in self.hosts_proxy_headers:
            value = head.get(name)
            if value:
                return value
        return head.host

    def _https(self, head: RequestHead) -> bool:
        if self.secure:
            return True
        return any(head.get(name) == value for name, value in self.ssl_proxy_headers)

    def _redirect(self, exchange: Exchange) -> Reply:
        host = self.ssl_host or self._host(exchange.head)
        target = exchange.target
        if not target.startswith(b"/"):
            target = b"/" + target.split(b"/", 3)[3] if target.count(b"/") >= 3 else b"/"
        return Reply(self.ssl_status, ((b"Location", b"https://" + host + target),))

    # -- response-head phase

    def response_head(self, exchange: Exchange, status: int, head: ResponseHead) -> None:
        for name, value in self.always:
            head.set(name, value)
        if self.https and self._https(exchange.head):
            for name, value in self.https:
                head.set(name, value)
        for name, value in self.response_headers:
            if value:
                head.set(name, value)
            else:
                head.remove(name)
        if self.cors:
            self._cors(exchange, head)

    def _cors(self, exchange: Exchange, head: ResponseHead) -> None:
        allowed = self.origins.match(exchange.head.get(b"origin") or b"")
        if allowed is not None:
            head.set(b"Access-Control-Allow-Origin", allowed)
        if self.credentials:
            head.set(b"Access-Control-Allow-Credentials", b"true")
        if self.expose:
            head.set(b"Access-Control-Expose-Headers", self.expose)
        if self.vary:
            vary = head.get(b"vary")
            if vary != b"Origin":
                head.set(b"Vary", vary + b",Origin" if vary else b"Origin")


def build(middleware: Middleware, context: BuildContext) -> Step:
    """The `headers` builder (registry.py)."""
    options = middleware.headers
    assert options is not None
    step = _HeadersStep(options, context)
    return Step(
        "headers",
        request=step.request if step.needs_request() else None,
        response_head=step.response_head if step.needs_response() else None,
        rewrites=frozenset(name.lower() for name, _ in step.request_headers),
    )
