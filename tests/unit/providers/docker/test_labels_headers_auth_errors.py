"""Labels of the `headers`, `forwardAuth` and `errors` middlewares: every option in its label form
(lists comma-separated, maps by key, Traefik's case-insensitive paths), the configuration
it parses to, and the step the data plane builds from it (edge/http/middlewares)."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from typing import Any

from proxynow.config.middlewares import Middleware
from proxynow.edge.http.exchange import Exchange
from proxynow.edge.http.middlewares import Reply
from proxynow.edge.http.middlewares.base import BuildContext
from proxynow.edge.http.middlewares.registry import BUILDERS
from proxynow.edge.message.headers import RequestHead, ResponseHead
from proxynow.providers.docker.build import BuildOptions, Container, build_update

APP = Container("id-app", "app", {}, networks={"bridge": "10.0.0.2"}, ports=(80,))
P = "proxynow.http.middlewares.m."


def middleware(labels: dict[str, str]) -> tuple[dict[str, Any], Middleware]:
    update = build_update(
        [replace(APP, labels={P + k: v for k, v in labels.items()})], BuildOptions()
    )
    assert update.object_errors == {}
    spec = update.config.http.middlewares["m"]
    dumped: dict[str, Any] = spec.model_dump(by_alias=True, exclude_defaults=True)
    return dumped, spec


HEADERS_LABELS = {
    "headers.customrequestheaders.X-Script-Name": "test",
    "headers.customrequestheaders.X-Drop": "",
    "headers.customresponseheaders.X-Powered-By": "",
    "headers.accesscontrolallowcredentials": "true",
    "headers.accesscontrolallowheaders": "X-A, X-B",
    "headers.accesscontrolallowmethods": "GET,OPTIONS",
    "headers.accesscontrolalloworiginlist": "https://a.com,https://b.com",
    "headers.accesscontrolalloworiginlistregex": r"^https://.*\.c\.com$",
    "headers.accesscontrolexposeheaders": "X-E",
    "headers.accesscontrolmaxage": "100",
    "headers.addvaryheader": "true",
    "headers.allowedhosts": "a.com, b.com",
    "headers.hostsproxyheaders": "X-Forwarded-Host",
    "headers.sslproxyheaders.X-Ssl": "on",
    "headers.stsseconds": "31536000",
    "headers.stsincludesubdomains": "true",
    "headers.stspreload": "true",
    "headers.forcestsheader": "true",
    "headers.framedeny": "true",
    "headers.customframeoptionsvalue": "SAMEORIGIN",
    "headers.contenttypenosniff": "true",
    "headers.browserxssfilter": "true",
    "headers.custombrowserxssvalue": "0",
    "headers.contentsecuritypolicy": "default-src 'self'",
    "headers.contentsecuritypolicyreportonly": "img-src 'none'",
    "headers.publickey": "pin",
    "headers.referrerpolicy": "no-referrer",
    "headers.permissionspolicy": "camera=()",
    "headers.isdevelopment": "false",
}


def test_headers_labels_parse_and_build() -> None:
    dumped, spec = middleware(HEADERS_LABELS)
    assert dumped["headers"] == {
        "customRequestHeaders": {"X-Script-Name": "test", "X-Drop": ""},
        "customResponseHeaders": {"X-Powered-By": ""},
        "accessControlAllowCredentials": True,
        "accessControlAllowHeaders": ["X-A", "X-B"],
        "accessControlAllowMethods": ["GET", "OPTIONS"],
        "accessControlAllowOriginList": ["https://a.com", "https://b.com"],
        "accessControlAllowOriginListRegex": [r"^https://.*\.c\.com$"],
        "accessControlExposeHeaders": ["X-E"],
        "accessControlMaxAge": 100,
        "addVaryHeader": True,
        "allowedHosts": ["a.com", "b.com"],
        "hostsProxyHeaders": ["X-Forwarded-Host"],
        "sslProxyHeaders": {"X-Ssl": "on"},
        "stsSeconds": 31536000,
        "stsIncludeSubdomains": True,
        "stsPreload": True,
        "forceSTSHeader": True,
        "frameDeny": True,
        "customFrameOptionsValue": "SAMEORIGIN",
        "contentTypeNosniff": True,
        "browserXssFilter": True,
        "customBrowserXSSValue": "0",
        "contentSecurityPolicy": "default-src 'self'",
        "contentSecurityPolicyReportOnly": "img-src 'none'",
        "publicKey": "pin",
        "referrerPolicy": "no-referrer",
        "permissionsPolicy": "camera=()",
    }
    step = BUILDERS["headers"](spec, BuildContext("r", False, lambda name: None))
    head = RequestHead(trusted=False)
    head.add(b"Host", b"a.com")
    head.add(b"Origin", b"https://x.c.com")
    exchange = Exchange(head, 0.0, ipaddress.ip_address("10.0.0.9"))
    exchange.method_b, exchange.target = b"GET", b"/"
    assert step.request is not None and step.request(exchange) is None
    assert head.get(b"x-script-name") == b"test"
    response = ResponseHead()
    response.add(b"X-Powered-By", b"php")
    assert step.response_head is not None
    step.response_head(exchange, 200, response)
    got = dict(response.items())
    assert b"X-Powered-By" not in got
    assert got[b"Access-Control-Allow-Origin"] == b"https://x.c.com"
    assert got[b"Strict-Transport-Security"] == b"max-age=31536000; includeSubDomains; preload"
    assert got[b"X-Frame-Options"] == b"SAMEORIGIN"


def test_forward_auth_labels_parse_and_build() -> None:
    dumped, spec = middleware(
        {
            "forwardauth.address": "https://auth.test:9443/check",
            "forwardauth.tls.ca": "/ca.pem",
            "forwardauth.tls.cert": "/c.pem",
            "forwardauth.tls.key": "/k.pem",
            "forwardauth.tls.insecureskipverify": "true",
            "forwardauth.trustforwardheader": "true",
            "forwardauth.authresponseheaders": "X-User, X-Group",
            "forwardauth.authresponseheadersregex": "^X-Auth-",
            "forwardauth.authrequestheaders": "Authorization,Cookie",
            "forwardauth.addauthcookiestoresponse": "session,csrf",
            "forwardauth.preservelocationheader": "true",
            "forwardauth.preserverequestmethod": "true",
            "forwardauth.maxresponsebodysize": "4096",
        }
    )
    assert dumped["forwardAuth"] == {
        "address": "https://auth.test:9443/check",
        "tls": {"ca": "/ca.pem", "cert": "/c.pem", "key": "/k.pem", "insecureSkipVerify": True},
        "trustForwardHeader": True,
        "authResponseHeaders": ["X-User", "X-Group"],
        "authResponseHeadersRegex": "^X-Auth-",
        "authRequestHeaders": ["Authorization", "Cookie"],
        "addAuthCookiesToResponse": ["session", "csrf"],
        "preserveLocationHeader": True,
        "preserveRequestMethod": True,
        "maxResponseBodySize": 4096,
    }
    step = BUILDERS["forwardAuth"](spec, BuildContext("r", False, lambda name: None))
    assert step.request is not None and step.response_head is not None  # cookies listed
    head = RequestHead(trusted=False)
    head.add(b"Host", b"site.test")
    head.add(b"Authorization", b"t")
    head.add(b"X-Other", b"o")
    exchange = Exchange(head, 0.0, ipaddress.ip_address("10.0.0.9"))
    exchange.method_b, exchange.target = b"PUT", b"/x"
    # The request it would send (the subrequest itself is the integration tests').
    auth = step.request.__self__  # type: ignore[attr-defined]
    sent = auth.auth_request(exchange)
    assert sent.startswith(b"PUT /check HTTP/1.1\r\nHost: auth.test:9443\r\n")
    assert b"Authorization: t\r\n" in sent and b"X-Other" not in sent
    assert b"X-Forwarded-Method: PUT\r\n" in sent and b"Content-Length: 0\r\n" in sent


def test_forward_auth_denied_answer_built_from_the_auth_response() -> None:
    _, spec = middleware({"forwardauth.address": "http://auth.test/a/b"})
    step = BUILDERS["forwardAuth"](spec, BuildContext("r", False, lambda name: None))
    auth = step.request.__self__  # type: ignore[union-attr]
    from proxynow.edge.upstream.subrequest import Fetched

    answer = Fetched(
        302,
        ((b"Location", b"../login"), (b"Connection", b"close"), (b"Content-Length", b"2")),
        b"no",
    )
    reply = auth.decide(None, answer)
    assert isinstance(reply, Reply)
    assert reply.status == 302 and reply.body == b"no"
    assert reply.headers == ((b"Location", b"http://auth.test/login"),)


def test_errors_labels_parse_and_ranges() -> None:
    from proxynow.edge.http.middlewares.errors import parse_ranges

    dumped, spec = middleware(
        {
            "errors.status": "500-599,404",
            "errors.statusrewrites.418": "400",
            "errors.statusrewrites.500-502": "503",
            "errors.service": "pages",
            "errors.query": "/{status}.html?from={originalStatus}&u={url}",
        }
    )
    assert dumped["errors"] == {
        "status": ["500-599", "404"],
        "statusRewrites": {"418": 400, "500-502": 503},
        "service": "pages",
        "query": "/{status}.html?from={originalStatus}&u={url}",
    }
    assert spec.errors is not None
    assert parse_ranges(spec.errors.status) == ((500, 599), (404, 404))
    assert parse_ranges(["5xx", "401, 403"]) == ((401, 401), (403, 403))
