"""A thousand routers as Traefik users write them: the indexed table, compiled at once or
patched change after change (rules/incremental.py), picks exactly what a linear scan in
priority order picks (priority = rule length unless set, then provider, name)."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from proxynow.rules import (
    Route,
    SimpleRequest,
    compile_predicate,
    compile_table,
    parse_rule,
    rule_domains,
)
from proxynow.rules.compiler import _host_decided
from proxynow.rules.incremental import TableBuilder
from proxynow.rules.matchers import Predicate

_PATHS = ["/", "/api", "/api/v1", "/api/v1/users", "/static/app.js", "/health", "/login", "/x"]


def _host(i: int) -> str:
    return f"svc{i}.example.com"


def _rule(rng: random.Random, hosts: int, exact_hosts: bool = False) -> str:
    """A rule; with `exact_hosts` only rules on exact hosts (no wildcard, no host-less)."""
    host = _host(rng.randrange(hosts))
    shape = rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 8, 10] if exact_hosts else range(12))
    if shape < 4:
        return f"Host(`{host}`)"
    if shape < 7:
        return f"Host(`{host}`) && PathPrefix(`{rng.choice(['/api', '/static', '/api/v1'])}`)"
    if shape == 7:
        return f"Host(`{host}`) && Path(`{rng.choice(['/health', '/login'])}`)"
    if shape == 8:
        return f"Host(`{host}`) || Host(`{_host(rng.randrange(hosts))}`)"
    if shape == 9:
        return f"Host(`*.w{rng.randrange(5)}.example.com`)"
    if shape == 10:
        return f"Host(`{host}`) && Method(`POST`)"
    return rng.choice(["PathPrefix(`/api`)", "PathPrefix(`/`)", "HostRegexp(`^svc1[0-9]\\.`)"])


def _route(rng: random.Random, name: str, hosts: int, exact_hosts: bool = False) -> Route[str]:
    text = _rule(rng, hosts, exact_hosts)
    priority = rng.choice([0] * 12 + [1, 50, 500])
    return Route(name, parse_rule(text), name, priority, rng.randrange(3), text)


_PREDICATES: dict[str, Predicate] = {}


def _linear(routes: list[Route[str]]) -> Callable[[SimpleRequest], str | None]:
    """The reference: every rule in priority order, the first that matches."""
    ordered = sorted(routes, key=lambda r: (-r.effective_priority(), r.provider_rank, r.name))
    for r in ordered:
        if r.source not in _PREDICATES:
            _PREDICATES[r.source] = compile_predicate(parse_rule(r.source))
    predicates = [(r.target, _PREDICATES[r.source]) for r in ordered]

    def match(request: SimpleRequest) -> str | None:
        return next((target for target, predicate in predicates if predicate(request)), None)

    return match


def _request(rng: random.Random, hosts: int) -> SimpleRequest:
    host = rng.choice(
        [_host(rng.randrange(hosts + 20)), f"a.w{rng.randrange(6)}.example.com", "other.test"]
    )
    return SimpleRequest(host, rng.choice(_PATHS), rng.choice(["GET", "GET", "POST"]))


def test_a_thousand_routers_pick_what_the_linear_scan_picks() -> None:
    rng = random.Random(17)
    for hosts in (1000, 250):  # one router per host on average, then four
        routes = [_route(rng, f"r{i:04d}", hosts) for i in range(1000)]
        table, linear = compile_table(routes), _linear(routes)
        for _ in range(1500):
            request = _request(rng, hosts)
            expected = linear(request)
            assert table.match(request) == expected, request
            decided = table.by_host.get(request.host)
            assert decided is None or decided == expected, request


@pytest.mark.parametrize("exact_hosts", [False, True])
def test_a_thousand_routers_patched_through_churn_pick_what_the_linear_scan_picks(
    exact_hosts: bool,
) -> None:
    """One to five routers added, changed or removed per change, new hosts arriving and
    old ones leaving (tombstones, then their sweep), each table checked against a scan.
    With `exact_hosts` every change touches exact-host cells only, which patches
    `by_host` instead of working it out anew (rules/incremental.py `_freeze`)."""
    rng = random.Random(71)
    hosts = 1000
    routes = {f"r{i:04d}": _route(rng, f"r{i:04d}", hosts, exact_hosts) for i in range(1000)}
    builder: TableBuilder[str] = TableBuilder()
    table = builder.build(list(routes.values()))
    swept = False
    for step in range(200):
        added: list[Route[str]] = []
        removed: list[str] = []
        gone: dict[str, Route[str]] = {}
        for _ in range(rng.randint(1, 5)):
            name = rng.choice(sorted(routes))
            if rng.random() < 0.7:
                removed.append(name)
                gone[name] = routes[name]
                del routes[name]
            fresh = f"n{step}-{len(added)}" if name in removed else name
            # New routers mostly on new hosts: the old hosts' cells empty out.
            routes[fresh] = _route(rng, fresh, hosts + 10 * step, exact_hosts)
            added.append(routes[fresh])
        # A router added earlier in the same change may have been removed again.
        added = [r for r in added if routes.get(r.name) is r]
        removed = [n for n in removed if n not in routes]
        before = len(table._exact)
        table = builder.patch(added, removed)
        swept = swept or len(table._exact) < before
        linear = _linear(list(routes.values()))
        # The hosts of what changed, of routers still there, and random ones.
        touched = [*added, *(gone[n] for n in removed)]
        some = rng.sample(sorted(routes), 10)
        probes = [_request(rng, hosts + 10 * step) for _ in range(6)]
        for route in [*touched, *(routes[n] for n in some)]:
            assert not isinstance(route.rule, str)
            for host in rule_domains(route.rule):
                host = host.replace("*", "a")
                probes += [SimpleRequest(host, rng.choice(_PATHS), "GET") for _ in range(3)]
        for request in probes:
            expected = linear(request)
            assert table.match(request) == expected, (step, request)
            decided = table.by_host.get(request.host)
            assert decided is None or decided == expected, (step, request)
    assert table.route_names == compile_table(list(routes.values())).route_names
    assert swept  # the tombstones of hosts that left were swept at least once
    # Every host the host alone decides is in the shortcut, whatever was swept.
    shortcuts = {h: t for h, t in table.by_host.items() if t is not None}
    assert shortcuts == _host_decided(table._exact, table._wildcards, table._any)
    assert len(table.by_host) < 2 * len(shortcuts) + 100  # tombstones stay bounded
