"""`headers`: custom headers, CORS and its preflight, the security headers, as Traefik
applies them (edge/http/middlewares/headers.py), table-driven on pure exchanges."""

from __future__ import annotations

import ipaddress
import time
from typing import Any

import pytest

from proxynow.config.middlewares import Middleware
from proxynow.edge.http.exchange import Exchange
from proxynow.edge.http.middlewares import Reply
from proxynow.edge.http.middlewares.base import BuildContext, Step
from proxynow.edge.http.middlewares.headers import build
from proxynow.edge.message.headers import RequestHead, ResponseHead


def step(options: dict[str, Any], secure: bool = False) -> Step:
    middleware = Middleware.model_validate({"headers": options})
    return build(middleware, BuildContext("r", secure, lambda name: None))


def request(
    method: bytes = b"GET", headers: tuple[tuple[bytes, bytes], ...] = (), trusted: bool = False
) -> Exchange:
    head = RequestHead(trusted=trusted)
    head.add(b"Host", b"example.com")
    for name, value in headers:
        head.add(name, value)
    exchange = Exchange(head, 0.0, ipaddress.ip_address("10.0.0.1"))
    exchange.method_b = method
    exchange.target = b"/p?q=1"
    return exchange


def respond(
    s: Step, exchange: Exchange, backend: tuple[tuple[bytes, bytes], ...] = ()
) -> dict[bytes, list[bytes]]:
    head = ResponseHead()
    for name, value in backend:
        head.add(name, value)
    assert s.response_head is not None
    s.response_head(exchange, 200, head)
    found: dict[bytes, list[bytes]] = {}
    for name, value in head.items():
        found.setdefault(name.lower(), []).append(value)
    return found


def test_custom_request_headers_set_remove_and_host() -> None:
    s = step({"customRequestHeaders": {"X-Added": "yes", "X-Gone": "", "Host": "other.test"}})
    exchange = request(headers=((b"X-Gone", b"1"), (b"X-Added", b"old")))
    assert s.request is not None and s.request(exchange) is None
    assert exchange.head.get_all(b"x-added") == [b"yes"]
    assert exchange.head.get(b"x-gone") is None
    assert exchange.head.host == b"other.test"
    assert s.response_head is None  # nothing to do on the response


def test_custom_response_headers_override_security_ones() -> None:
    s = step(
        {
            "frameDeny": True,
            "customResponseHeaders": {"X-Frame-Options": "", "X-New": "v", "Server": ""},
        }
    )
    found = respond(s, request(), ((b"Server", b"backend"), (b"X-Frame-Options", b"SAMEORIGIN")))
    assert b"x-frame-options" not in found and b"server" not in found
    assert found[b"x-new"] == [b"v"]


def test_refused_header_names_are_dropped_at_build() -> None:
    s = step({"customResponseHeaders": {"Content-Length": "5", "Bad\r\nName": "x", "X-Ok": "1"}})
    assert respond(s, request())[b"x-ok"] == [b"1"]


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (b"https://a.test", b"https://a.test"),
        (b"https://evil.test", None),
        (b"https://sub.b.test", b"https://sub.b.test"),
    ],
)
def test_preflight_answered_without_backend(origin: bytes, allowed: bytes | None) -> None:
    s = step(
        {
            "accessControlAllowOriginList": ["https://a.test"],
            "accessControlAllowOriginListRegex": [r"^https://.*\.b\.test$"],
            "accessControlAllowMethods": ["GET", "POST"],
            "accessControlAllowHeaders": ["X-A", "X-B"],
            "accessControlAllowCredentials": True,
            "customResponseHeaders": {"X-Custom": "c"},
            "frameDeny": True,
        }
    )
    exchange = request(
        b"OPTIONS", ((b"Origin", origin), (b"Access-Control-Request-Method", b"POST"))
    )
    assert s.request is not None
    reply = s.request(exchange)
    assert isinstance(reply, Reply) and reply.status == 200 and reply.body == b""
    headers = dict(reply.headers)
    assert headers[b"Access-Control-Allow-Credentials"] == b"true"
    assert headers[b"Access-Control-Allow-Headers"] == b"X-A,X-B"
    assert headers[b"Access-Control-Allow-Methods"] == b"GET,POST"
    assert b"Access-Control-Max-Age" not in headers  # 0: not sent
    assert headers.get(b"Access-Control-Allow-Origin") == allowed
    assert b"X-Custom" not in headers and b"X-Frame-Options" not in headers


def test_options_without_request_method_is_not_a_preflight() -> None:
    s = step({"accessControlAllowOriginList": ["*"]})
    assert s.request is not None
    assert s.request(request(b"OPTIONS", ((b"Origin", b"https://a.test"),))) is None


def test_cors_on_a_response() -> None:
    s = step(
        {
            "accessControlAllowOriginList": ["*"],
            "accessControlExposeHeaders": ["X-1", "X-2"],
            "addVaryHeader": True,
        }
    )
    found = respond(s, request(), ((b"Vary", b"Accept-Encoding"),))
    # `*` allows a request without an Origin too, as Traefik's isOriginAllowed("") does.
    assert found[b"access-control-allow-origin"] == [b"*"]
    assert found[b"access-control-expose-headers"] == [b"X-1,X-2"]
    assert found[b"vary"] == [b"Accept-Encoding,Origin"]
    assert respond(s, request(), ((b"Vary", b"Origin"),))[b"vary"] == [b"Origin"]


def test_security_headers() -> None:
    options = {
        "stsSeconds": 31536000,
        "stsIncludeSubdomains": True,
        "stsPreload": True,
        "customFrameOptionsValue": "SAMEORIGIN",
        "frameDeny": True,
        "contentTypeNosniff": True,
        "browserXssFilter": True,
        "contentSecurityPolicy": "default-src 'self'",
        "contentSecurityPolicyReportOnly": "script-src 'none'",
        "referrerPolicy": "no-referrer",
        "permissionsPolicy": "camera=()",
        "publicKey": 'pin-sha256="x"',
    }
    plain = respond(step(options), request())
    assert b"strict-transport-security" not in plain and b"public-key-pins" not in plain
    assert plain[b"x-frame-options"] == [b"SAMEORIGIN"]
    assert plain[b"x-content-type-options"] == [b"nosniff"]
    assert plain[b"x-xss-protection"] == [b"1; mode=block"]
    assert plain[b"content-security-policy"] == [b"default-src 'self'"]
    assert plain[b"content-security-policy-report-only"] == [b"script-src 'none'"]
    assert plain[b"referrer-policy"] == [b"no-referrer"]
    assert plain[b"permissions-policy"] == [b"camera=()"]
    secure = respond(step(options, secure=True), request())
    assert secure[b"strict-transport-security"] == [b"max-age=31536000; includeSubDomains; preload"]
    assert secure[b"public-key-pins"] == [b'pin-sha256="x"']
    forced = respond(step({"stsSeconds": 60, "forceSTSHeader": True}), request())
    assert forced[b"strict-transport-security"] == [b"max-age=60"]
    proxied = step({"stsSeconds": 60, "sslProxyHeaders": {"X-Forwarded-Proto": "https"}})
    trusted = request(headers=((b"X-Forwarded-Proto", b"https"),), trusted=True)
    assert respond(proxied, trusted)[b"strict-transport-security"] == [b"max-age=60"]
    dev = step({"stsSeconds": 60, "forceSTSHeader": True, "isDevelopment": True})
    assert dev.response_head is None  # no STS in development: nothing left to set
    xss = respond(step({"browserXssFilter": True, "customBrowserXSSValue": "0"}), request())
    assert xss[b"x-xss-protection"] == [b"0"]


def test_allowed_hosts() -> None:
    s = step({"allowedHosts": ["EXAMPLE.com"], "hostsProxyHeaders": ["X-Forwarded-Host"]})
    assert s.request is not None
    assert s.request(request()) is None
    reply = s.request(request(headers=((b"X-Forwarded-Host", b"evil.test"),), trusted=True))
    assert isinstance(reply, Reply) and reply.status == 500 and reply.body == b"Bad Host\n"
    dev = step({"allowedHosts": ["a.test"], "isDevelopment": True})
    assert dev.request is None or dev.request(request()) is None


def test_ssl_redirect() -> None:
    s = step({"sslRedirect": True, "sslHost": "secure.test"})
    assert s.request is not None
    reply = s.request(request())
    assert isinstance(reply, Reply) and reply.status == 301
    assert dict(reply.headers)[b"Location"] == b"https://secure.test/p?q=1"
    assert step({"sslRedirect": True}, secure=True).request(request()) is None  # type: ignore[misc]


def test_nothing_configured_has_no_hooks() -> None:
    s = step({})
    assert s.request is None and s.response_head is None


def test_origin_regexp_runs_in_linear_time() -> None:
    # On a backtracking engine this pattern takes minutes over a 40-byte Origin; the
    # client chooses the Origin, so the regexps run on RE2 as Go's do.
    s = step({"accessControlAllowOriginListRegex": ["^(a+)+$"]})
    started = time.perf_counter()
    found = respond(s, request(headers=((b"Origin", b"a" * 40 + b"!"),)))
    assert time.perf_counter() - started < 1.0
    assert b"access-control-allow-origin" not in found
    assert respond(s, request(headers=((b"Origin", b"aaa"),)))[b"access-control-allow-origin"] == [
        b"aaa"
    ]


def test_invalid_origin_regexp_is_skipped_at_build() -> None:
    s = step({"accessControlAllowOriginListRegex": ["(", "^https://ok$"]})
    found = respond(s, request(headers=((b"Origin", b"https://ok"),)))
    assert found[b"access-control-allow-origin"] == [b"https://ok"]
