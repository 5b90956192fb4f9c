"""The requests of the differential test: hand-picked cases per router plus a seeded mix.

Every request is sent to real Traefik and to proxynow; the answers (router name, "404" or
"status N") must be equal. Hand-picked cases probe one behaviour each; the mix crosses
hosts, paths, methods, headers, queries and client addresses.
"""

from __future__ import annotations

import random

from tests.e2e.differential.traefik_harness import RawRequest

R = RawRequest
SOURCES = ("127.0.0.1", "127.0.0.2", "127.0.1.5", "127.9.9.9", "::1")

HAND_PICKED: tuple[RawRequest, ...] = (
    # Host: case, port, trailing dot, IPv6 literal, IP literal.
    R("/", host="h07.example.com"),
    R("/", host="H07.EXAMPLE.COM"),
    R("/", host="h07.example.com:8080"),
    R("/", host="h07.example.com."),
    R("/", host="h07.example.com.:81"),
    R("/", host="h07.example.org"),
    R("/", host="dot.test"),
    R("/", host="dot.test."),
    R("/", host="mixed.test"),
    R("/", host="MIXED.TEST:1"),
    R("/v6host", host="[::1]"),
    R("/v6host", host="[::1]:8080"),
    R("/iphost", host="127.0.0.1:80"),
    R("/", host="port.test:8080"),
    R("/", host="port.test"),
    # Host + paths.
    R("/api", host="app.example.com"),
    R("/api/v2/x", host="app.example.com"),
    R("/api/v1", host="app.example.com"),
    R("/apix", host="app.example.com"),
    R("/static", host="app.example.com"),
    R("/static/", host="app.example.com"),
    R("/login", host="app.example.com"),
    R("/login/", host="app.example.com"),
    R("/other", host="app.example.com"),
    # HostRegexp gotcha and quirks.
    R("/", host="foobar.regex.test"),
    R("/", host="prio.regex.test"),
    R("/", host="abc.regex.test"),
    R("/", host="ABC.regex.test:99"),
    R("/n/1", host="123.regex.test"),
    R("/m/1", host="123.regex.test"),
    R("/", host="up.test"),
    R("/", host="UP.test"),
    R("/anything", method="PATCH"),
    R("/anything", method="PATCH", host="nomatch.test"),
    R("/unanchored", host="xmidx.test"),
    R("/unanchored", host="none.test"),
    # Wildcards and catch-all.
    R("/", host="a.wild.test"),
    R("/", host="exact.wild.test"),
    R("/", host="a.b.wild.test"),
    R("/", host="wild.test"),
    R("/deep/x", host="a.wild.test"),
    R("/", host="A.WILD.TEST."),
    R("/", host="nobody.test", headers=(("X-Catch", "all"),)),
    R("/", host="nobody.test", headers=(("x-catch", "all"),)),
    R("/", host="nobody.test", headers=(("X-Catch", "ALL"),)),
    R("/", host="x.or3.test"),
    R("/", host="or1.test"),
    R("/", host="OR2.test"),
    # Paths and routing-path decoding.
    R("/exact", host="paths.test"),
    R("/exact/", host="paths.test"),
    R("/p", host="paths.test"),
    R("/products-for-sale", host="paths.test"),
    R("/items/42", host="paths.test"),
    R("/items/42/x", host="paths.test"),
    R("/items/abc", host="paths.test"),
    R("/foo%20bar", host="paths.test"),
    R("/foo%20Bar", host="paths.test"),
    R("/enc%2Fslash", host="paths.test"),
    R("/enc%2fslash", host="paths.test"),
    R("/enc/slash", host="paths.test"),
    R("/caf%C3%A9", host="paths.test"),
    R("/caf%c3%a9", host="paths.test"),
    # Raw UTF-8 in the target: Traefik percent-encodes the path and routes.
    R("/café", host="paths.test"),
    R("/café?x=ü", host="paths.test"),
    R("/café/", host="paths.test"),
    R("/ü/x", host="app.example.com"),
    R("/api/ü", host="app.example.com"),
    # Extension methods are forwarded (Method(`get`) is a router of its own).
    R("/", host="m.test", method="get"),
    R("/", host="m.test", method="FOO"),
    R("/notput", host="m.test", method="BREW"),
    # Host syntax: Traefik's 400s, and what it still routes.
    R("/", host="bad host.test"),
    R("/", host="u@paths.test"),
    R("/", host="é.test"),
    R("/", host="a/b.test"),
    R("/", host="a,b.test"),
    R("/", host="a_b.test"),
    R("/index.php", host="paths.test"),
    R("/index.php5", host="paths.test"),
    R("/%7Euser", host="paths.test"),
    R("/~user", host="paths.test"),
    R("/a+b", host="paths.test"),
    R("/a%2Bb", host="paths.test"),
    R("/a%20b", host="paths.test"),
    R("/%61%62", host="paths.test"),
    R("/dot/./x", host="paths.test"),
    R("/dot/../p", host="paths.test"),
    R("/healthz", host="anything.test"),
    R("/healthz/", host="anything.test"),
    R("/.well-known/acme-challenge/t", host="h01.example.com"),
    R("/download/file.zip", host="nobody.test"),
    R("/download/file.rar", host="nobody.test"),
    R("/download/FILE.zip", host="nobody.test"),
    # Methods.
    R("/", host="m.test", method="POST"),
    R("/", host="m.test", method="GET"),
    R("/", host="m.test", method="HEAD"),
    R("/d", host="m.test", method="DELETE"),
    R("/x", host="m.test", method="DELETE"),
    R("/notput", host="m.test", method="PUT"),
    R("/notput", host="m.test", method="OPTIONS"),
    # Headers.
    R("/", host="h.test", headers=(("X-Env", "prod"),)),
    R("/", host="h.test", headers=(("x-env", "prod"),)),
    R("/", host="h.test", headers=(("X-Env", "Prod"),)),
    R("/", host="h.test", headers=(("X-Env", "stage"),)),
    R("/", host="h.test", headers=(("X-Env", "dev"), ("X-Env", "prod"))),
    R("/", host="h.test", headers=(("User-Agent", "curl/8.1"),)),
    R("/", host="h.test", headers=(("User-Agent", "Mozilla curl/x"),)),
    R("/multi", host="h.test", headers=(("X-Multi", "a"), ("X-Multi", "b"))),
    R("/multi", host="h.test", headers=(("X-Multi", "a, b"),)),
    R("/any", host="h.test", headers=(("X-Any", ""),)),
    R("/any", host="h.test"),
    # Queries.
    R("/?mobile", host="q.test"),
    R("/?mobile=", host="q.test"),
    R("/?mobile=1", host="q.test"),
    R("/?lang=fr", host="q.test"),
    R("/?lang=en&lang=fr", host="q.test"),
    R("/?lang=FR", host="q.test"),
    R("/?id=123", host="q.test"),
    R("/?id=12a", host="q.test"),
    R("/?flag", host="q.test"),
    R("/?flag=on", host="q.test"),
    R("/?s=a+b", host="q.test"),
    R("/?s=a%20b", host="q.test"),
    R("/?e=x%26y", host="q.test"),
    R("/?e=x&y", host="q.test"),
    # Regexps: Unicode classes and folding, octal, invalid UTF-8 as U+FFFD, Go's \s.
    R("/u/caf%C3%A9", host="re.test"),
    R("/u/caf1", host="re.test"),
    R("/u/%FF", host="re.test"),
    R("/k/K", host="re.test"),
    R("/k/%E2%84%AA", host="re.test"),  # KELVIN SIGN folds to k
    R("/o/a", host="re.test"),
    R("/p/aaaa", host="re.test"),
    R("/p/" + "a" * 40 + "!", host="re.test"),  # exponential for a backtracking engine
    R("/?q=%FF", host="re.test"),
    R("/?q=%EF%BF%BD", host="re.test"),
    R("/?q=a", host="re.test"),
    R("/?s=a+b", host="re.test"),
    R("/?s=a%0Cb", host="re.test"),
    R("/?s=a%0Bb", host="re.test"),  # \v: not in Go's \s
    R("/?lang=fr;x=1", host="q.test"),
    R("/?lang=%zz&mobile", host="q.test"),
    # Client IPs.
    *(R("/", host="ip.test", source=s) for s in SOURCES),
    *(R("/notone", host="ip.test", source=s) for s in SOURCES),
    *(R("/v6net", host="ip.test", source=s) for s in SOURCES),
    *(R("/hostbits", host="ip.test", source=s) for s in SOURCES),
    *(R("/never", host="ip.test", source=s) for s in SOURCES),
    # Operators and precedence.
    R("/a", host="ops.test"),
    R("/b", host="ops.test", method="DELETE"),
    R("/x", host="ops.test"),
    R("/prec-y", host="elsewhere.test"),
    R("/x", host="elsewhere.test"),
    R("/n1", host="ops.test"),
    R("/z", host="ops.test", method="HEAD"),
    R("/z", host="ops.test"),
    R("/k/yes", host="ops2.test"),
    R("/k/no", host="ops3.test"),
    R("/dn", host="ops2.test"),
    # Priorities.
    R("/", host="prio.test"),
    R("/hi", host="prio.test"),
    R("/hi/very/long/path/that/is/longer", host="prio.test"),
    R("/hi/very/long/x", host="prio.test"),
    R("/hi/very/long/x", host="prio.test", headers=(("X-No", "1"),)),
    R("/neg", host="h03.example.com"),
    R("/neg", host="nobody.test"),
    # Rule syntax variants.
    R("/escA", host="dq.test"),
    R("/esc%41", host="dq.test"),
    R("/L", host="lower.test"),
    R("/", host="upper.test"),
    R("/t", host="title.test"),
    R("/s", host="spaces.test"),
    # Tenants.
    R("/api/x", host="t03.tenants.test"),
    R("/app", host="t11.tenants.test"),
    R("/other", host="t11.tenants.test"),
    R("/api", host="t99.tenants.test"),
    # Every host-keyed router at least once, with varied spelling of the host.
    *(
        R("/x", host=f"h{i:02d}.example.com" if i % 3 else f"H{i:02d}.Example.COM:80")
        for i in range(30)
    ),
    *(R("/api/v" if i % 2 else "/app", host=f"t{i:02d}.tenants.test") for i in range(12)),
    # No Host at all is a 400 in HTTP/1.1.
    R("/", host=None),
    R("/", host=""),
)

_HOSTS = (
    "h00.example.com",
    "H12.Example.Com:443",
    "h29.example.com.",
    "app.example.com",
    "paths.test",
    "m.test",
    "h.test",
    "q.test",
    "ip.test",
    "ops.test",
    "prio.test",
    "t05.tenants.test",
    "t42.tenants.test",
    "z.wild.test",
    "abc.regex.test",
    "unknown.test",
    "[::1]:1234",
)
_PATHS = (
    "/",
    "/api",
    "/api/v2",
    "/static/x",
    "/login",
    "/p",
    "/products",
    "/items/7",
    "/foo%20bar",
    "/healthz",
    "/.well-known/x",
    "/download/a.tar",
    "/d",
    "/notput",
    "/multi",
    "/a",
    "/x",
    "/hi",
    "/neg",
    "/app/y",
    "/deep",
    "/v6host",
    "/caf%C3%A9",
)
_QUERIES = ("", "?mobile", "?lang=fr", "?id=9", "?flag=1", "?s=a+b")
_METHODS = ("GET", "GET", "POST", "PUT", "DELETE", "HEAD", "PATCH")
_HEADERS = (
    (),
    (("X-Env", "prod"),),
    (("User-Agent", "curl/7.0"),),
    (("X-Catch", "all"),),
    (("X-Multi", "b"),),
    (("X-No", "1"),),
)


def mixed_requests(count: int, seed: int = 20260) -> list[RawRequest]:
    """``count`` seeded random combinations of the pools above."""
    rng = random.Random(seed)
    return [
        R(
            rng.choice(_PATHS) + rng.choice(_QUERIES),
            host=rng.choice(_HOSTS),
            method=rng.choice(_METHODS),
            headers=rng.choice(_HEADERS),
            source=rng.choice(SOURCES),
        )
        for _ in range(count)
    ]


def all_requests() -> list[RawRequest]:
    return [*HAND_PICKED, *mixed_requests(420)]
