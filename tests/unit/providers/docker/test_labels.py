"""Label → configuration, table-driven: every label family, the derivations, the errors.

Each case is one container (name `app`, on `bridge` at 10.0.0.2, exposing port 80 unless
the case says otherwise) with its `proxynow.*` labels, and the expected value at a path
of the built configuration (dumped with Traefik's spelling, defaults left out) or the
expected errors per object. Re-describes Traefik's `pkg/provider/docker/config_test.go`
and `pkg/config/label` tables.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from proxynow.providers.docker.build import BuildOptions, Container, build_update
from proxynow.providers.docker.constraints import ConstraintError, compile_constraints
from proxynow.providers.docker.template import TemplateValues, normalize, render

APP = Container("id-app", "app", {}, networks={"bridge": "10.0.0.2"}, ports=(80,))
SERVICE = {"loadBalancer": {"servers": [{"url": "http://10.0.0.2:80"}]}}
P = "proxynow."


def _dump(labels: dict[str, str], container: Container = APP, **options: Any) -> Any:
    update = build_update([replace(container, labels=labels)], BuildOptions(**options))
    return update.config.model_dump(by_alias=True, exclude_defaults=True), update.object_errors


def _at(data: Any, path: str) -> Any:
    for part in path.split("/"):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


def _r(key: str, value: str) -> dict[str, str]:
    """A router `r` with a rule plus one more label."""
    return {P + "http.routers.r.rule": "Host(`a`)", P + key: value}


def _m(key: str, value: str) -> dict[str, str]:
    return {P + "http.middlewares.m." + key: value}


def _s(key: str, value: str) -> dict[str, str]:
    return {P + "http.services.s.loadbalancer." + key: value}


# (id, labels, path in the dumped configuration, expected value)
VALUE_CASES: list[tuple[str, dict[str, str], str, Any]] = [
    # routers
    ("router rule", _r("http.routers.r.priority", "0"), "http/routers/r/rule", "Host(`a`)"),
    (
        "router entrypoints list",
        _r("http.routers.r.entrypoints", "web, websecure"),
        "http/routers/r/entryPoints",
        ["web", "websecure"],
    ),
    (
        "router entryPoints camel",
        _r("http.routers.r.entryPoints", "web"),
        "http/routers/r/entryPoints",
        ["web"],
    ),
    (
        "router middlewares",
        _r("http.routers.r.middlewares", "a,b@file"),
        "http/routers/r/middlewares",
        ["a", "b@file"],
    ),
    ("router priority", _r("http.routers.r.priority", "42"), "http/routers/r/priority", 42),
    (
        "router explicit service",
        _r("http.routers.r.service", "api@internal"),
        "http/routers/r/service",
        "api@internal",
    ),
    ("router tls true", _r("http.routers.r.tls", "true"), "http/routers/r/tls", {}),
    ("router tls TRUE", _r("http.routers.r.tls", "TRUE"), "http/routers/r/tls", {}),
    (
        "router tls certresolver",
        _r("http.routers.r.tls.certresolver", "le"),
        "http/routers/r/tls",
        {"certResolver": "le"},
    ),
    (
        "router tls and certresolver",
        {**_r("http.routers.r.tls", "true"), P + "http.routers.r.tls.certResolver": "le"},
        "http/routers/r/tls",
        {"certResolver": "le"},
    ),
    (
        "router tls options",
        _r("http.routers.r.tls.options", "modern@file"),
        "http/routers/r/tls/options",
        "modern@file",
    ),
    (
        "router tls domains main",
        _r("http.routers.r.tls.domains[0].main", "a.com"),
        "http/routers/r/tls/domains",
        [{"main": "a.com"}],
    ),
    (
        "router tls domains sans",
        {
            **_r("http.routers.r.tls.domains[0].main", "a.com"),
            P + "http.routers.r.tls.domains[0].sans": "b.a.com, c.a.com",
        },
        "http/routers/r/tls/domains/0/sans",
        ["b.a.com", "c.a.com"],
    ),
    (
        "router tls two domains",
        {
            **_r("http.routers.r.tls.domains[1].main", "b.com"),
            P + "http.routers.r.tls.domains[0].main": "a.com",
        },
        "http/routers/r/tls/domains",
        [{"main": "a.com"}, {"main": "b.com"}],
    ),
    ("router rulesyntax", _r("http.routers.r.rulesyntax", "v3"), "http/routers/r/ruleSyntax", "v3"),
    (
        "router name keeps case",
        {P + "http.routers.MyRouter.rule": "Host(`a`)"},
        "http/routers/MyRouter/rule",
        "Host(`a`)",
    ),
    (
        "router keys any case",
        {P + "HTTP.Routers.r.RULE": "Path(`/x`)"},
        "http/routers/r/rule",
        "Path(`/x`)",
    ),
    (
        "router rule with commas kept",
        _r("http.routers.r.priority", "1") | {P + "http.routers.r.rule": "Host(`a`, `b`)"},
        "http/routers/r/rule",
        "Host(`a`, `b`)",
    ),
    # services
    (
        "service port",
        _s("server.port", "8080"),
        "http/services/s",
        {"loadBalancer": {"servers": [{"url": "http://10.0.0.2:8080"}]}},
    ),
    (
        "service scheme",
        {**_s("server.port", "8443"), **_s("server.scheme", "https")},
        "http/services/s/loadBalancer/servers/0/url",
        "https://10.0.0.2:8443",
    ),
    (
        "service url",
        _s("server.url", "http://elsewhere:9000"),
        "http/services/s/loadBalancer/servers",
        [{"url": "http://elsewhere:9000"}],
    ),
    (
        "service passhostheader",
        _s("passhostheader", "false"),
        "http/services/s/loadBalancer/passHostHeader",
        False,
    ),
    ("service strategy", _s("strategy", "p2c"), "http/services/s/loadBalancer/strategy", "p2c"),
    (
        "service serverstransport",
        _s("serverstransport", "tr@file"),
        "http/services/s/loadBalancer/serversTransport",
        "tr@file",
    ),
    (
        "service healthcheck path",
        _s("healthcheck.path", "/health"),
        "http/services/s/loadBalancer/healthCheck",
        {"path": "/health"},
    ),
    (
        "service healthcheck interval seconds",
        {**_s("healthcheck.path", "/h"), **_s("healthcheck.interval", "10")},
        "http/services/s/loadBalancer/healthCheck/interval",
        10.0,
    ),
    (
        "service healthcheck timeout go duration",
        {**_s("healthcheck.path", "/h"), **_s("healthcheck.timeout", "1m30s")},
        "http/services/s/loadBalancer/healthCheck/timeout",
        90.0,
    ),
    (
        "service healthcheck headers map",
        {**_s("healthcheck.path", "/h"), **_s("healthcheck.headers.X-Check", "yes")},
        "http/services/s/loadBalancer/healthCheck/headers",
        {"X-Check": "yes"},
    ),
    (
        "service healthcheck hostname port scheme",
        {
            **_s("healthcheck.path", "/h"),
            **_s("healthcheck.hostname", "h.local"),
            **_s("healthcheck.port", "81"),
            **_s("healthcheck.scheme", "https"),
        },
        "http/services/s/loadBalancer/healthCheck",
        {"path": "/h", "hostname": "h.local", "port": 81, "scheme": "https"},
    ),
    (
        "service sticky cookie true",
        _s("sticky.cookie", "true"),
        "http/services/s/loadBalancer/sticky",
        {"cookie": {}},
    ),
    (
        "service sticky cookie name",
        _s("sticky.cookie.name", "lb"),
        "http/services/s/loadBalancer/sticky/cookie/name",
        "lb",
    ),
    (
        "service sticky cookie flags",
        {
            **_s("sticky.cookie.secure", "true"),
            **_s("sticky.cookie.httponly", "true"),
            **_s("sticky.cookie.samesite", "strict"),
        },
        "http/services/s/loadBalancer/sticky/cookie",
        {"secure": True, "httpOnly": True, "sameSite": "strict"},
    ),
    (
        "service sticky cookie maxage",
        _s("sticky.cookie.maxage", "60"),
        "http/services/s/loadBalancer/sticky/cookie/maxAge",
        60,
    ),
    (
        "service responseforwarding",
        _s("responseforwarding.flushinterval", "1s"),
        "http/services/s/loadBalancer/responseForwarding/flushInterval",
        1.0,
    ),
    (
        "service name normalised case kept",
        {P + "http.services.Svc.loadbalancer.server.port": "81"},
        "http/services/Svc/loadBalancer/servers/0/url",
        "http://10.0.0.2:81",
    ),
    # middlewares
    (
        "addprefix",
        _m("addprefix.prefix", "/api"),
        "http/middlewares/m",
        {"addPrefix": {"prefix": "/api"}},
    ),
    (
        "basicauth users",
        _m("basicauth.users", "u:$apr1$x$y, v:$apr1$z$w"),
        "http/middlewares/m/basicAuth/users",
        ["u:$apr1$x$y", "v:$apr1$z$w"],
    ),
    (
        "basicauth realm removeheader",
        {
            **_m("basicauth.users", "u:p"),
            **_m("basicauth.realm", "R"),
            **_m("basicauth.removeheader", "true"),
        },
        "http/middlewares/m/basicAuth",
        {"users": ["u:p"], "realm": "R", "removeHeader": True},
    ),
    (
        "basicauth headerfield",
        {**_m("basicauth.users", "u:p"), **_m("basicauth.headerField", "X-User")},
        "http/middlewares/m/basicAuth/headerField",
        "X-User",
    ),
    (
        "digestauth",
        _m("digestauth.users", "u:r:h"),
        "http/middlewares/m/digestAuth/users",
        ["u:r:h"],
    ),
    (
        "buffering",
        _m("buffering.maxrequestbodybytes", "1000"),
        "http/middlewares/m/buffering/maxRequestBodyBytes",
        1000,
    ),
    (
        "buffering retryexpression",
        _m("buffering.retryexpression", "IsNetworkError() && Attempts() < 2"),
        "http/middlewares/m/buffering/retryExpression",
        "IsNetworkError() && Attempts() < 2",
    ),
    ("chain", _m("chain.middlewares", "a, b"), "http/middlewares/m/chain/middlewares", ["a", "b"]),
    (
        "circuitbreaker",
        _m("circuitbreaker.expression", "NetworkErrorRatio() > 0.5"),
        "http/middlewares/m/circuitBreaker/expression",
        "NetworkErrorRatio() > 0.5",
    ),
    (
        "circuitbreaker durations",
        {**_m("circuitbreaker.expression", "X"), **_m("circuitbreaker.checkperiod", "250ms")},
        "http/middlewares/m/circuitBreaker/checkPeriod",
        0.25,
    ),
    ("compress true", _m("compress", "true"), "http/middlewares/m", {"compress": {}}),
    (
        "compress excluded",
        _m("compress.excludedcontenttypes", "text/event-stream"),
        "http/middlewares/m/compress/excludedContentTypes",
        ["text/event-stream"],
    ),
    (
        "compress minresponsebodybytes",
        _m("compress.minresponsebodybytes", "2048"),
        "http/middlewares/m/compress/minResponseBodyBytes",
        2048,
    ),
    ("contenttype true", _m("contenttype", "true"), "http/middlewares/m", {"contentType": {}}),
    (
        "contenttype autodetect",
        _m("contenttype.autodetect", "true"),
        "http/middlewares/m/contentType/autoDetect",
        True,
    ),
    (
        "errors",
        {
            **_m("errors.status", "500-599, 404"),
            **_m("errors.service", "err"),
            **_m("errors.query", "/{status}.html"),
        },
        "http/middlewares/m/errors",
        {"status": ["500-599", "404"], "service": "err", "query": "/{status}.html"},
    ),
    (
        "errors statusrewrites map",
        {
            **_m("errors.status", "418"),
            **_m("errors.service", "e"),
            **_m("errors.statusrewrites.418", "500"),
        },
        "http/middlewares/m/errors/statusRewrites",
        {"418": 500},
    ),
    (
        "forwardauth address",
        _m("forwardauth.address", "http://auth:9000/"),
        "http/middlewares/m/forwardAuth/address",
        "http://auth:9000/",
    ),
    (
        "forwardauth headers",
        {
            **_m("forwardauth.address", "http://a/"),
            **_m("forwardauth.authresponseheaders", "X-User, X-Group"),
            **_m("forwardauth.trustforwardheader", "true"),
        },
        "http/middlewares/m/forwardAuth",
        {
            "address": "http://a/",
            "authResponseHeaders": ["X-User", "X-Group"],
            "trustForwardHeader": True,
        },
    ),
    (
        "forwardauth tls",
        {
            **_m("forwardauth.address", "https://a/"),
            **_m("forwardauth.tls.ca", "/ca.pem"),
            **_m("forwardauth.tls.insecureskipverify", "true"),
        },
        "http/middlewares/m/forwardAuth/tls",
        {"ca": "/ca.pem", "insecureSkipVerify": True},
    ),
    (
        "headers customrequestheaders",
        _m("headers.customrequestheaders.X-Script-Name", "test"),
        "http/middlewares/m/headers/customRequestHeaders",
        {"X-Script-Name": "test"},
    ),
    (
        "headers customresponseheaders empty",
        _m("headers.customresponseheaders.X-Powered-By", ""),
        "http/middlewares/m/headers/customResponseHeaders",
        {"X-Powered-By": ""},
    ),
    (
        "headers cors",
        {
            **_m("headers.accesscontrolallowmethods", "GET,OPTIONS"),
            **_m("headers.accesscontrolalloworiginlist", "https://a.com"),
            **_m("headers.accesscontrolmaxage", "100"),
        },
        "http/middlewares/m/headers",
        {
            "accessControlAllowMethods": ["GET", "OPTIONS"],
            "accessControlAllowOriginList": ["https://a.com"],
            "accessControlMaxAge": 100,
        },
    ),
    (
        "headers sts",
        {**_m("headers.stsseconds", "31536000"), **_m("headers.stsincludesubdomains", "true")},
        "http/middlewares/m/headers",
        {"stsSeconds": 31536000, "stsIncludeSubdomains": True},
    ),
    ("headers frame", _m("headers.framedeny", "1"), "http/middlewares/m/headers/frameDeny", True),
    (
        "headers sslproxyheaders map",
        _m("headers.sslproxyheaders.X-Forwarded-Proto", "https"),
        "http/middlewares/m/headers/sslProxyHeaders",
        {"X-Forwarded-Proto": "https"},
    ),
    (
        "ipallowlist",
        _m("ipallowlist.sourcerange", "127.0.0.1/32, 192.168.1.7"),
        "http/middlewares/m/ipAllowList/sourceRange",
        ["127.0.0.1/32", "192.168.1.7"],
    ),
    (
        "ipallowlist ipstrategy depth",
        {**_m("ipallowlist.sourcerange", "10.0.0.0/8"), **_m("ipallowlist.ipstrategy.depth", "2")},
        "http/middlewares/m/ipAllowList/ipStrategy",
        {"depth": 2},
    ),
    (
        "ipallowlist ipstrategy true",
        {**_m("ipallowlist.sourcerange", "10.0.0.0/8"), **_m("ipallowlist.ipstrategy", "true")},
        "http/middlewares/m/ipAllowList/ipStrategy",
        {},
    ),
    (
        "ipallowlist excludedips",
        {
            **_m("ipallowlist.sourcerange", "10.0.0.0/8"),
            **_m("ipallowlist.ipstrategy.excludedips", "1.1.1.1, 2.2.2.2"),
        },
        "http/middlewares/m/ipAllowList/ipStrategy/excludedIPs",
        ["1.1.1.1", "2.2.2.2"],
    ),
    ("inflightreq", _m("inflightreq.amount", "10"), "http/middlewares/m/inFlightReq/amount", 10),
    (
        "inflightreq sourcecriterion",
        {
            **_m("inflightreq.amount", "1"),
            **_m("inflightreq.sourcecriterion.requestheadername", "X-Id"),
        },
        "http/middlewares/m/inFlightReq/sourceCriterion/requestHeaderName",
        "X-Id",
    ),
    (
        "ipallowlist rejectstatuscode ipv6subnet",
        {
            **_m("ipallowlist.sourcerange", "2001:db8::/32"),
            **_m("ipallowlist.rejectstatuscode", "404"),
            **_m("ipallowlist.ipstrategy.ipv6subnet", "64"),
        },
        "http/middlewares/m/ipAllowList",
        {
            "sourceRange": ["2001:db8::/32"],
            "rejectStatusCode": 404,
            "ipStrategy": {"ipv6Subnet": 64},
        },
    ),
    (
        "ipwhitelist, the deprecated alias",
        _m("ipwhitelist.sourcerange", "10.0.0.0/8"),
        "http/middlewares/m/ipAllowList/sourceRange",
        ["10.0.0.0/8"],
    ),
    (
        "ratelimit sourcecriterion requesthost",
        {**_m("ratelimit.average", "5"), **_m("ratelimit.sourcecriterion.requesthost", "true")},
        "http/middlewares/m/rateLimit",
        {"average": 5, "sourceCriterion": {"requestHost": True}},
    ),
    (
        "basicauth usersfile, a bcrypt hash with its $ kept",
        {
            **_m("basicauth.usersfile", "/etc/proxynow/htpasswd"),
            **_m("basicauth.users", "a:$2y$05$abcdefghijklmnopqrstuu"),
        },
        "http/middlewares/m/basicAuth",
        {"usersFile": "/etc/proxynow/htpasswd", "users": ["a:$2y$05$abcdefghijklmnopqrstuu"]},
    ),
    (
        "digestauth options",
        {
            **_m("digestauth.users", "u:r:h"),
            **_m("digestauth.realm", "r"),
            **_m("digestauth.headerfield", "X-User"),
            **_m("digestauth.removeheader", "true"),
        },
        "http/middlewares/m/digestAuth",
        {"users": ["u:r:h"], "realm": "r", "headerField": "X-User", "removeHeader": True},
    ),
    (
        "passtlsclientcert",
        _m("passtlsclientcert.pem", "true"),
        "http/middlewares/m/passTLSClientCert/pem",
        True,
    ),
    (
        "ratelimit",
        {
            **_m("ratelimit.average", "100"),
            **_m("ratelimit.burst", "50"),
            **_m("ratelimit.period", "1m"),
        },
        "http/middlewares/m/rateLimit",
        {"average": 100, "burst": 50, "period": 60.0},
    ),
    (
        "redirectregex",
        {
            **_m("redirectregex.regex", "^http://localhost/(.*)"),
            **_m("redirectregex.replacement", "http://mydomain/${1}"),
            **_m("redirectregex.permanent", "true"),
        },
        "http/middlewares/m/redirectRegex",
        {
            "regex": "^http://localhost/(.*)",
            "replacement": "http://mydomain/${1}",
            "permanent": True,
        },
    ),
    (
        "redirectscheme",
        {**_m("redirectscheme.scheme", "http"), **_m("redirectscheme.port", "8080")},
        "http/middlewares/m/redirectScheme",
        {"scheme": "http", "port": "8080"},
    ),
    ("replacepath", _m("replacepath.path", "/foo"), "http/middlewares/m/replacePath/path", "/foo"),
    (
        "replacepathregex",
        {
            **_m("replacepathregex.regex", "^/foo/(.*)"),
            **_m("replacepathregex.replacement", "/bar/$1"),
        },
        "http/middlewares/m/replacePathRegex",
        {"regex": "^/foo/(.*)", "replacement": "/bar/$1"},
    ),
    (
        "retry",
        {**_m("retry.attempts", "4"), **_m("retry.initialinterval", "250ms")},
        "http/middlewares/m/retry",
        {"attempts": 4, "initialInterval": 0.25},
    ),
    (
        "stripprefix",
        _m("stripprefix.prefixes", "/foobar, /fiibar"),
        "http/middlewares/m/stripPrefix/prefixes",
        ["/foobar", "/fiibar"],
    ),
    (
        "stripprefixregex",
        _m("stripprefixregex.regex", "/foo/[a-z0-9]+/"),
        "http/middlewares/m/stripPrefixRegex/regex",
        ["/foo/[a-z0-9]+/"],
    ),
    ("grpcweb", _m("grpcweb.alloworigins", "*"), "http/middlewares/m/grpcWeb/allowOrigins", ["*"]),
    (
        "middleware key case",
        _m("AddPrefix.Prefix", "/x"),
        "http/middlewares/m/addPrefix/prefix",
        "/x",
    ),
    # TCP and UDP
    (
        "tcp router",
        {P + "tcp.routers.t.rule": "HostSNI(`*`)", P + "tcp.routers.t.entrypoints": "db"},
        "tcp/routers/t",
        {"rule": "HostSNI(`*`)", "entryPoints": ["db"], "service": "app"},
    ),
    (
        "tcp router tls passthrough",
        {P + "tcp.routers.t.rule": "HostSNI(`a`)", P + "tcp.routers.t.tls.passthrough": "true"},
        "tcp/routers/t/tls",
        {"passthrough": True},
    ),
    (
        "tcp router tls certresolver",
        {P + "tcp.routers.t.rule": "HostSNI(`a`)", P + "tcp.routers.t.tls.certresolver": "le"},
        "tcp/routers/t/tls/certResolver",
        "le",
    ),
    (
        "tcp service port",
        {
            P + "tcp.routers.t.rule": "HostSNI(`*`)",
            P + "tcp.services.db.loadbalancer.server.port": "5432",
        },
        "tcp/services/db",
        {"loadBalancer": {"servers": [{"address": "10.0.0.2:5432"}]}},
    ),
    (
        "tcp router linked to lone service",
        {
            P + "tcp.routers.t.rule": "HostSNI(`*`)",
            P + "tcp.services.db.loadbalancer.server.port": "5432",
        },
        "tcp/routers/t/service",
        "db",
    ),
    (
        "tcp proxyprotocol",
        {
            P + "tcp.routers.t.rule": "HostSNI(`*`)",
            P + "tcp.services.db.loadbalancer.server.port": "1",
            P + "tcp.services.db.loadbalancer.proxyprotocol.version": "1",
        },
        "tcp/services/db/loadBalancer/proxyProtocol",
        {"version": 1},
    ),
    (
        "tcp middleware ipallowlist",
        {P + "tcp.middlewares.tm.ipallowlist.sourcerange": "10.0.0.0/8"},
        "tcp/middlewares/tm",
        {"ipAllowList": {"sourceRange": ["10.0.0.0/8"]}},
    ),
    (
        "tcp middleware inflightconn",
        {P + "tcp.middlewares.tm.inflightconn.amount": "5"},
        "tcp/middlewares/tm/inFlightConn/amount",
        5,
    ),
    (
        "udp router and service",
        {
            P + "udp.routers.u.entrypoints": "dns",
            P + "udp.services.u.loadbalancer.server.port": "53",
        },
        "udp",
        {
            "routers": {"u": {"entryPoints": ["dns"], "service": "u"}},
            "services": {"u": {"loadBalancer": {"servers": [{"address": "10.0.0.2:53"}]}}},
        },
    ),
    # derivations
    (
        "no labels: router and service named after the container",
        {},
        "http",
        {
            "routers": {"app": {"rule": "Host(`app`)", "service": "app"}},
            "services": {"app": SERVICE},
        },
    ),
    (
        "router without service links the lone service",
        {P + "http.routers.r.rule": "Host(`a`)"},
        "http/routers/r/service",
        "app",
    ),
    (
        "router without rule gets the default rule",
        {P + "http.routers.r.entrypoints": "web"},
        "http/routers/r/rule",
        "Host(`app`)",
    ),
    (
        "service only: the router is named after the container",
        _s("server.port", "81"),
        "http/routers",
        {"app": {"rule": "Host(`app`)", "service": "s"}},
    ),
    (
        "tcp router without service: one named after the container",
        {P + "tcp.routers.t.rule": "HostSNI(`*`)"},
        "tcp/services",
        {"app": {"loadBalancer": {"servers": [{"address": "10.0.0.2:80"}]}}},
    ),
    ("enable label true", {P + "enable": "true"}, "http/routers/app/service", "app"),
    (
        "lowest exposed port",
        {},
        "http/services/app/loadBalancer/servers/0/url",
        "http://10.0.0.2:80",
    ),
]
VALUE_CASES += [
    (
        "traefik prefix ignored by default",
        {"traefik.http.routers.t.rule": "Host(`t`)"},
        "http/routers",
        {"app": {"rule": "Host(`app`)", "service": "app"}},
    ),
]


@pytest.mark.parametrize(("labels", "path", "expected"), [c[1:] for c in VALUE_CASES],
                         ids=[c[0] for c in VALUE_CASES])  # fmt: skip
def test_label_values(labels: dict[str, str], path: str, expected: Any) -> None:
    config, errors = _dump(labels)
    assert errors == {}
    assert _at(config, path) == expected


# (id, labels, expected errors per object key)
ERROR_CASES: list[tuple[str, dict[str, str], dict[str, tuple[str, ...]]]] = [
    (
        "non-numeric port",
        _s("server.port", "eighty"),
        {"http.services.s": ("server.port: 'eighty' is not a port number",)},
    ),
    (
        "port out of range",
        _s("server.port", "70000"),
        {"http.services.s": ("server.port: 70000 is out of range",)},
    ),
    (
        "unknown router field",
        _r("http.routers.r.rulee", "x"),
        {"http.routers.r": ("rulee: unknown key 'rulee' (did you mean 'rule'?)",)},
    ),
    (
        "non-integer priority",
        _r("http.routers.r.priority", "high"),
        {"http.routers.r": ("priority: expected an integer, got 'high'",)},
    ),
    ("unknown middleware type", _m("frobnicate.level", "3"), {"http.middlewares.m": ()}),
    ("bad bool", _s("passhostheader", "maybe"), {"http.services.s": ()}),
    (
        "bad duration",
        {**_s("healthcheck.path", "/"), **_s("healthcheck.interval", "soon")},
        {"http.services.s": ()},
    ),
    (
        "index on a non-list",
        _r("http.routers.r.rule[0]", "x"),
        {"http.routers.r": ("label 'http.routers.r.rule[0]': 'rule' is not a list",)},
    ),
    (
        "dot before index",
        _r("http.routers.r.tls.domains.[0].main", "a"),
        {
            "http.routers.r": (
                "label 'http.routers.r.tls.domains.[0].main': malformed segment '[0]'",
            )
        },
    ),
    (
        "incomplete key",
        {P + "http.routers.r": "x"},
        {"http.routers.r": ("label 'http.routers.r': incomplete key",)},
    ),
    (
        "struct given a value",
        _r("http.routers.r.tls", "yes-please"),
        {
            "http.routers.r": (
                "label 'http.routers.r.tls': expected true or a sub-key, got 'yes-please'",
            )
        },
    ),
    (
        "two services, router not linked",
        {
            **_r("http.routers.r.entrypoints", "web"),
            **_s("server.port", "1"),
            P + "http.services.t.loadbalancer.server.port": "2",
        },
        {"http.routers.r": ("cannot be linked automatically with multiple services",)},
    ),
    (
        "port missing",
        {},
        {"http.services.app": ("port is missing: set loadbalancer.server.port or expose a port",)},
    ),
    (
        "unsupported template",
        {},
        {"http.routers.app": ("defaultRule: unsupported template action {{ .Image }}",)},
    ),
]


@pytest.mark.parametrize(("labels", "expected"), [c[1:] for c in ERROR_CASES],
                         ids=[c[0] for c in ERROR_CASES])  # fmt: skip
def test_label_errors(
    request: pytest.FixtureRequest, labels: dict[str, str], expected: dict[str, tuple[str, ...]]
) -> None:
    case = request.node.callspec.id
    container = replace(APP, ports=()) if case == "port missing" else APP
    options = {"default_rule": "Host(`{{ .Image }}`)"} if case == "unsupported template" else {}
    config, errors = _dump(labels, container, **options)
    assert set(errors) == set(expected)
    for key, messages in expected.items():
        assert errors[key], key
        if messages:
            assert errors[key] == messages
        protocol, section, name = key.split(".")
        assert name in config[protocol][section]  # present, so the API can show the error


def test_tcp_labels_only_make_no_http_router() -> None:
    config, errors = _dump({P + "tcp.routers.t.rule": "HostSNI(`*`)"})
    assert errors == {}
    assert "http" not in config and set(config["tcp"]["routers"]) == {"t"}


def test_error_isolated_to_its_object() -> None:
    labels = {**_r("http.routers.r.priority", "x"), P + "http.routers.ok.rule": "Host(`ok`)"}
    config, errors = _dump(labels)
    assert set(errors) == {"http.routers.r"}
    assert config["http"]["routers"]["ok"] == {"rule": "Host(`ok`)", "service": "app"}


def test_unknown_middleware_error_names_the_type() -> None:
    _, errors = _dump(_m("frobnicate.level", "3"))
    assert "frobnicate" in " ".join(errors["http.middlewares.m"])


# ---------------------------------------------------------------- across containers


def _c(name: str, ip: str, labels: dict[str, str], **fields: Any) -> Container:
    return Container(f"id-{name}", name, labels, networks={"bridge": ip}, ports=(80,), **fields)


def test_replicas_of_one_compose_service_are_one_load_balancer() -> None:
    compose = {"com.docker.compose.project": "shop", "com.docker.compose.service": "web"}
    containers = [_c(f"shop_web_{i}", f"10.0.0.{i}", compose) for i in (1, 2, 3)]
    update = build_update(containers, BuildOptions())
    service = update.config.http.services["web-shop"]
    assert service.load_balancer is not None
    assert [s.url for s in service.load_balancer.servers] == [
        "http://10.0.0.1:80", "http://10.0.0.2:80", "http://10.0.0.3:80"]  # fmt: skip
    assert update.config.http.routers["web-shop"].rule == "Host(`web-shop`)"
    assert update.object_errors == {}


def test_conflicting_routers_are_reported() -> None:
    a = _c(
        "a", "10.0.0.1", {P + "http.routers.r.rule": "Host(`a`)", P + "http.routers.r.service": "x"}
    )
    b = _c(
        "b", "10.0.0.2", {P + "http.routers.r.rule": "Host(`b`)", P + "http.routers.r.service": "x"}
    )
    update = build_update([a, b], BuildOptions())
    assert update.object_errors["http.routers.r"] == (
        "defined differently by containers 'a' and 'b'",
    )


def test_identical_middlewares_merge() -> None:
    labels = _m("addprefix.prefix", "/p")
    update = build_update(
        [_c("a", "10.0.0.1", labels), _c("b", "10.0.0.2", labels)], BuildOptions()
    )
    assert "http.middlewares.m" not in update.object_errors


def test_merge_does_not_mutate_per_container_results() -> None:
    compose = {"com.docker.compose.project": "p", "com.docker.compose.service": "s"}
    containers = [_c("x1", "10.0.0.1", compose), _c("x2", "10.0.0.2", compose)]
    first = build_update(containers, BuildOptions())
    second = build_update(containers, BuildOptions())
    assert first == second


# ---------------------------------------------------------------- which containers


@pytest.mark.parametrize(
    ("labels", "fields", "options", "routed"),
    [
        ({}, {}, {}, True),
        ({P + "enable": "false"}, {}, {}, False),
        ({}, {}, {"exposed_by_default": False}, False),
        ({P + "enable": "true"}, {}, {"exposed_by_default": False}, True),
        ({}, {"state": "exited"}, {}, False),
        ({}, {"state": "paused"}, {}, False),
        ({}, {"health": "starting"}, {}, False),
        ({}, {"health": "unhealthy"}, {}, False),
        ({}, {"health": "healthy"}, {}, True),
    ],
    ids=["default", "enable false", "not exposed by default", "enabled explicitly", "exited",
         "paused", "health starting", "unhealthy", "healthy"],
)  # fmt: skip
def test_kept_containers(
    labels: dict[str, str], fields: dict[str, Any], options: dict[str, Any], routed: bool
) -> None:
    update = build_update([replace(APP, labels=labels, **fields)], BuildOptions(**options))
    assert ("app" in update.config.http.routers) is routed


def test_allow_empty_services_keeps_an_unhealthy_service_without_servers() -> None:
    update = build_update(
        [replace(APP, health="unhealthy")], BuildOptions(allow_empty_services=True)
    )
    balancer = update.config.http.services["app"].load_balancer
    assert balancer is not None and balancer.servers == []


def test_traefik_labels_are_read_when_enabled_and_proxynow_wins() -> None:
    labels = {"traefik.http.routers.r.rule": "Host(`t`)", "traefik.http.routers.r.priority": "5",
              P + "http.routers.r.priority": "9"}  # fmt: skip
    config, _ = _dump(labels, prefixes=("proxynow", "traefik"))
    assert config["http"]["routers"]["r"] == {"rule": "Host(`t`)", "priority": 9, "service": "app"}


def test_constraints_select_containers() -> None:
    predicate = compile_constraints("Label(`team`,`a`) && !LabelRegex(`tier`,`db.*`)")
    kept = replace(APP, labels={"team": "a", "tier": "web"})
    dropped = replace(APP, id="2", name="other", labels={"team": "a", "tier": "db1"})
    update = build_update([kept, dropped], BuildOptions(constraints=predicate))
    assert set(update.config.http.routers) == {"app"}


@pytest.mark.parametrize(
    ("expression", "labels", "expected"),
    [
        ("Label(`a`,`1`)", {"a": "1"}, True),
        ("Label(`a`,`1`)", {"a": "2"}, False),
        ("LabelRegex(`a`,`x.*`)", {"a": "xyz"}, True),
        ("LabelRegex(`a`,`x`)", {"a": "xyz"}, False),  # the whole value must match
        # Linear time: a container's label cannot make the provider backtrack.
        ("LabelRegex(`a`,`(x+)+y`)", {"a": "x" * 5000}, False),
        ("Label(`a`,`1`) || Label(`b`,`2`)", {"b": "2"}, True),
        ("!(Label(`a`,`1`) || Label(`b`,`2`))", {"b": "2"}, False),
        ("", {}, True),
    ],
)
def test_constraint_expressions(expression: str, labels: dict[str, str], expected: bool) -> None:
    assert compile_constraints(expression)(labels) is expected


@pytest.mark.parametrize(
    "expression", ["Label(`a`)", "Label(`a`,`b`) &&", "Nope(`a`,`b`)", "(Label(`a`,`b`)"]
)
def test_bad_constraints_are_errors(expression: str) -> None:
    with pytest.raises(ConstraintError, match="column"):
        compile_constraints(expression)


# ---------------------------------------------------------------- networks and ports


def test_network_label_then_option_then_own_then_first_by_name() -> None:
    networks = {"zeta": "10.0.1.2", "alpha": "10.0.2.2", "mine": "10.0.3.2"}
    container = replace(APP, networks=networks)

    def url(labels: dict[str, str], **options: Any) -> str:
        config, _ = _dump(labels, container, **options)
        return str(_at(config, "http/services/app/loadBalancer/servers/0/url"))

    assert url({}) == "http://10.0.2.2:80"  # first by name
    assert url({}, own_networks=frozenset({"mine"})) == "http://10.0.3.2:80"
    assert url({}, network="zeta") == "http://10.0.1.2:80"
    assert url({P + "docker.network": "mine"}, network="zeta") == "http://10.0.3.2:80"


def test_host_network_uses_loopback() -> None:
    config, _ = _dump({}, replace(APP, networks={}, network_mode="host"))
    assert _at(config, "http/services/app/loadBalancer/servers/0/url") == "http://127.0.0.1:80"


def test_use_bind_port_ip() -> None:
    container = replace(APP, bindings={80: ("192.168.1.5", 8080)})
    config, _ = _dump({}, container, use_bind_port_ip=True)
    assert _at(config, "http/services/app/loadBalancer/servers/0/url") == "http://192.168.1.5:8080"
    config, _ = _dump({}, container)
    assert _at(config, "http/services/app/loadBalancer/servers/0/url") == "http://10.0.0.2:80"


def test_lowest_exposed_port_wins() -> None:
    config, _ = _dump({}, replace(APP, ports=(8080, 443, 9000)))
    assert _at(config, "http/services/app/loadBalancer/servers/0/url") == "http://10.0.0.2:443"


# ---------------------------------------------------------------- defaultRule


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Host(`{{ normalize .Name }}`)", "Host(`my-app`)"),
        ("Host(`{{ .Name }}.docker.localhost`)", "Host(`my-app.docker.localhost`)"),
        ("Host(`{{ .ContainerName }}`)", "Host(`my_app_1`)"),
        ('Host(`{{ index .Labels "domain" }}`)', "Host(`example.com`)"),
        ('Host(`{{ normalize (index .Labels "domain") }}`)', "Host(`example-com`)"),
        ("Host(`{{ lower .ContainerName }}`)", "Host(`my_app_1`)"),
    ],
)
def test_default_rule_templates(template: str, expected: str) -> None:
    values = TemplateValues("my-app", "my_app_1", {"domain": "example.com"})
    assert render(template, values) == expected


def test_normalize_matches_traefik() -> None:
    assert normalize("web_shop") == "web-shop"
    assert normalize("/my_app") == "my-app"
    assert normalize("a..b--c") == "a-b-c"
