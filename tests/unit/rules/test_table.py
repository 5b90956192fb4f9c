"""Route tables: priority order, ties, and the decision structure giving exactly the answer
of a linear scan in priority order (cases in the spirit of Traefik's Test_addRoutePriority
and TestMuxer, written for proxynow)."""

from __future__ import annotations

import random

import pytest

from proxynow.rules import Route, SimpleRequest, compile_predicate, compile_table, parse_rule


def req(target: str = "/", host: str = "example.com", **kw: object) -> SimpleRequest:
    return SimpleRequest.from_raw(target, host=host, **kw)  # type: ignore[arg-type]


Spec = tuple[str, str, int]  # name, rule, priority

PRIORITY_CASES: list[tuple[str, list[Spec], SimpleRequest, str | None]] = [
    (
        "longer rule wins by default",
        [("short", "PathPrefix(`/`)", 0), ("long", "PathPrefix(`/api`)", 0)],
        req("/api/x"),
        "long",
    ),
    (
        "shorter rule when the longer does not match",
        [("short", "PathPrefix(`/`)", 0), ("long", "PathPrefix(`/api`)", 0)],
        req("/web"),
        "short",
    ),
    (
        "HostRegexp longer than Host wins (the classic gotcha)",
        [
            ("regexp", "HostRegexp(`[a-z]+\\.traefik\\.com`)", 0),
            ("exact", "Host(`foobar.traefik.com`)", 0),
        ],
        req(host="foobar.traefik.com"),
        "regexp",
    ),
    (
        "explicit priority fixes the gotcha",
        [
            ("regexp", "HostRegexp(`[a-z]+\\.traefik\\.com`)", 0),
            ("exact", "Host(`foobar.traefik.com`)", 100),
        ],
        req(host="foobar.traefik.com"),
        "exact",
    ),
    (
        "explicit priority beats a longer rule",
        [("p100", "PathPrefix(`/`)", 100), ("long", "PathPrefix(`/abcdefghijklmn`)", 0)],
        req("/abcdefghijklmn"),
        "p100",
    ),
    (
        "priority 0 means the rule length",
        [("zero", "PathPrefix(`/a`)", 0), ("p15", "PathPrefix(`/`)", 15)],
        req("/a"),
        "zero",
    ),
    (
        "negative priority comes after everything",
        [("neg", "PathPrefix(`/api`)", -1), ("any", "PathPrefix(`/`)", 0)],
        req("/api"),
        "any",
    ),
    (
        "negative priority still matches alone",
        [("neg", "PathPrefix(`/api`)", -1), ("other", "Path(`/x`)", 0)],
        req("/api"),
        "neg",
    ),
    (
        "equal priority: name decides",
        [("b", "PathPrefix(`/`)", 5), ("a", "PathPrefix(`/`)", 5)],
        req("/"),
        "a",
    ),
    (
        "higher priority wins over name",
        [("a", "PathPrefix(`/`)", 5), ("b", "PathPrefix(`/`)", 6)],
        req("/"),
        "b",
    ),
    (
        "host route and catch-all path: longest first",
        [("host", "Host(`example.com`)", 0), ("prefix", "PathPrefix(`/verylongprefix`)", 0)],
        req("/verylongprefix/x"),
        "prefix",
    ),
    (
        "host route beats a shorter catch-all",
        [("host", "Host(`example.com`)", 0), ("prefix", "PathPrefix(`/`)", 0)],
        req("/verylongprefix/x"),
        "host",
    ),
    (
        "wildcard vs exact host: the longer rule wins, not the more specific",
        [("wild", "Host(`*.example.com`)", 0), ("exact", "Host(`ab.example.com`)", 0)],
        req(host="ab.example.com"),
        "exact",
    ),
    (
        "wildcard and exact host of equal length: name decides",
        [("wild", "Host(`*.example.com`)", 0), ("exact", "Host(`a.example.com`)", 0)],
        req(host="a.example.com"),
        "exact",
    ),
    (
        "exact host with priority over wildcard",
        [("wild", "Host(`*.example.com`)", 1), ("exact", "Host(`a.example.com`)", 2)],
        req(host="a.example.com"),
        "exact",
    ),
    (
        "no route matches",
        [("a", "Host(`a.test`)", 0), ("b", "Path(`/b`)", 0)],
        req("/c", host="c.test"),
        None,
    ),
    (
        "Host(`*`) route with a header",
        [("star", "Host(`*`) && Header(`X`, `1`)", 0), ("host", "Host(`example.com`)", 0)],
        req(headers=(("X", "1"),)),
        "star",
    ),
]


@pytest.mark.parametrize(
    ("routes", "request_", "winner"),
    [c[1:] for c in PRIORITY_CASES],
    ids=[c[0] for c in PRIORITY_CASES],
)
def test_priority(routes: list[Spec], request_: SimpleRequest, winner: str | None) -> None:
    table = compile_table(Route(n, r, n, p) for n, r, p in routes)
    assert table.match(request_) == winner
    reversed_table = compile_table(Route(n, r, n, p) for n, r, p in reversed(routes))
    assert reversed_table.match(request_) == winner


def test_provider_rank_breaks_ties_before_name() -> None:
    routes = [
        Route("a@file", "PathPrefix(`/`)", "file", provider_rank=6),
        Route("z@docker", "PathPrefix(`/`)", "docker", provider_rank=5),
    ]
    assert compile_table(routes).match(req()) == "docker"
    assert compile_table(routes).route_names == ("z@docker", "a@file")


def test_parsed_rule_priority_uses_canonical_text() -> None:
    node = parse_rule("Host(`a.test`)")
    route = Route("n", node, "t")
    assert route.effective_priority() == len("Host(`a.test`)")


def test_invalid_rule_raises() -> None:
    with pytest.raises(ValueError, match="unknown matcher"):
        compile_table([Route("bad", "Nope(`x`)", "t")])


def test_tcp_table() -> None:
    from proxynow.rules import SimpleConnection

    table = compile_table(
        [
            Route("exact", "HostSNI(`a.test`)", "exact"),
            Route("wild", "HostSNI(`*.test`) && ALPN(`h2`)", "wild"),
            Route("all", "HostSNI(`*`)", "all", priority=1),
        ],
        kind="tcp",
    )
    assert table.match(SimpleConnection(sni="a.test")) == "exact"
    assert table.match(SimpleConnection(sni="b.test", alpn=("h2",))) == "wild"
    assert table.match(SimpleConnection(sni="b.test")) == "all"
    assert table.match(SimpleConnection()) == "all"


# --- the decision structure equals a linear scan ------------------------------------------

_HOSTS = ["a.test", "b.test", "c.test", "x.wild.test", "y.wild.test", "z.other"]
_PATHS = ["/", "/api", "/api/v1", "/apix", "/static/a", "/login", "/p"]
_TERMS = [
    *(f"Host(`{h}`)" for h in _HOSTS[:3]),
    "Host(`*.wild.test`)",
    "Host(`*`)",
    "(Host(`a.test`) || Host(`b.test`))",
    "HostRegexp(`^[ab]\\.test$`)",
    *(f"PathPrefix(`{p}`)" for p in _PATHS[:4]),
    "Path(`/login`)",
    "(Path(`/p`) || PathPrefix(`/static`))",
    "PathRegexp(`^/api/v[0-9]$`)",
    "Method(`POST`)",
    "!Method(`GET`)",
    "Header(`X-K`, `1`)",
    "Query(`q`)",
]


def _random_rule(rng: random.Random) -> str:
    terms = rng.sample(_TERMS, rng.randint(1, 3))
    rule = " && ".join(terms)
    return f"{rule} || Path(`/or`)" if rng.random() < 0.1 else rule


def test_table_equals_linear_scan() -> None:
    """`match`, and the `by_host` shortcut wherever it has an answer, equal a linear scan."""
    rng = random.Random(7)
    shortcuts = 0
    for _ in range(40):
        specs = [
            (f"r{i:03d}", _random_rule(rng), rng.choice([0, 0, 0, 5, 50, -3]))
            for i in range(rng.randint(2, 30))
        ]
        # A bare host route, which the shortcut serves unless something outranks it.
        specs.append(("bare", f"Host(`{rng.choice(_HOSTS)}`)", rng.choice([0, 60, 1000])))
        routes = [Route(n, r, n, p) for n, r, p in specs]
        table = compile_table(routes)
        ordered = sorted(routes, key=lambda r: (-r.effective_priority(), r.name))
        predicates = [(r.name, compile_predicate(parse_rule(str(r.rule)))) for r in ordered]
        for _ in range(30):
            request = req(
                rng.choice(_PATHS) + rng.choice(["", "?q"]),
                host=rng.choice(_HOSTS),
                method=rng.choice(["GET", "POST"]),
                headers=rng.choice([(), (("X-K", "1"),)]),
            )
            expected = next((n for n, p in predicates if p(request)), None)
            assert table.match(request) == expected
            decided = table.by_host.get(request.host)
            if decided is not None:
                shortcuts += 1
                assert decided == expected
    assert shortcuts > 20  # (43 with this seed)


def test_many_host_routes() -> None:
    routes = [Route(f"r{i}", f"Host(`h{i}.test`)", i) for i in range(10_000)]
    routes.append(Route("api", "PathPrefix(`/api`)", -1, priority=-1))
    table = compile_table(routes)
    assert table.match(req(host="h9876.test")) == 9876
    assert table.match(req("/api", host="H42.TEST:80")) == 42
    assert table.match(req("/api", host="nobody.test")) == -1
    assert table.match(req("/", host="nobody.test")) is None
    assert len(table.by_host) == 10_000


def test_by_host_only_where_the_host_alone_decides() -> None:
    def decided(*routes: Route[str]) -> dict[str, str]:
        return compile_table(routes).by_host

    host = Route("host", "Host(`a.test`)", "host")
    assert decided(host) == {"a.test": "host"}
    # A later host-less route cannot take a request from the host route...
    assert decided(host, Route("all", "PathPrefix(`/`)", "all", priority=1)) == {"a.test": "host"}
    # ...an earlier one can, and so can an earlier wildcard over the same host.
    assert decided(host, Route("all", "PathPrefix(`/`)", "all", priority=100)) == {}
    assert decided(host, Route("wild", "Host(`*.test`)", "wild", priority=100)) == {}
    # The path or another condition decides: no shortcut.
    assert decided(Route("p", "Host(`a.test`) && PathPrefix(`/api`)", "p")) == {}
    assert decided(Route("m", "Host(`a.test`) && Method(`GET`)", "m")) == {}
    assert decided(host, Route("api", "Host(`a.test`) && Path(`/api`)", "api")) == {}
