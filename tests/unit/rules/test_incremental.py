"""TableBuilder: a patched table answers exactly what a fresh `compile_table` answers.

Random route sets are changed step by step (routes added, removed, replaced); after each
step the patched table and a table compiled from scratch must list the same routes in the
same order and pick the same route for every probe request. Seeded, so a failure repeats.
"""

from __future__ import annotations

import random

import pytest

from proxynow.rules import Route, SimpleRequest, compile_table, parse_rule
from proxynow.rules.incremental import TableBuilder

HOSTS = ["a.test", "b.test", "c.test", "x.a.test", "x.b.test"]
PATHS = ["/", "/api", "/api/v1", "/static", "/x"]
METHODS = ["GET", "POST"]


def _random_rule(rng: random.Random) -> str:
    terms: list[str] = []
    shape = rng.randrange(6)
    if shape in (0, 1, 2):
        hosts = rng.sample(HOSTS, rng.choice([1, 1, 2]))
        terms.append(" || ".join(f"Host(`{h}`)" for h in hosts))
    elif shape == 3:
        terms.append(f"HostRegexp(`^.+\\.{rng.choice(['a', 'b'])}\\.test$`)")
    elif shape == 4:
        terms.append("Host(`*.a.test`)".replace("*.a.test", rng.choice(["a.test", "c.test"])))
    if rng.random() < 0.6:
        matcher = rng.choice(["Path", "PathPrefix"])
        terms.append(f"{matcher}(`{rng.choice(PATHS)}`)")
    if rng.random() < 0.2:
        terms.append(f"Method(`{rng.choice(METHODS)}`)")
    return " && ".join(terms) or "PathPrefix(`/`)"


def _random_route(rng: random.Random, name: str) -> Route[str]:
    text = _random_rule(rng)
    priority = rng.choice([0, 0, 0, 5, 100])
    return Route(name, parse_rule(text), f"{name}:{text}", priority, rng.randrange(3), text)


def _probes() -> list[SimpleRequest]:
    hosts = [*HOSTS, "y.a.test", "other.test", ""]
    paths = [*PATHS, "/api/v1/users", "/nope"]
    return [SimpleRequest(h, p, m) for h in hosts for p in paths for m in METHODS]


def _assert_same(builder: TableBuilder[str], routes: list[Route[str]]) -> None:
    patched = builder.build(routes)
    fresh = compile_table(routes)
    assert patched.route_names == fresh.route_names
    for probe in _probes():
        assert patched.match(probe) == fresh.match(probe), probe


@pytest.mark.parametrize("seed", range(8))
def test_patched_table_matches_a_fresh_compile(seed: int) -> None:
    rng = random.Random(seed)
    routes = {f"r{i}": _random_route(rng, f"r{i}") for i in range(40)}
    builder: TableBuilder[str] = TableBuilder()
    _assert_same(builder, list(routes.values()))
    for step in range(60):
        action = rng.randrange(3)
        if action == 0 or len(routes) < 5:
            name = f"n{seed}-{step}"
            routes[name] = _random_route(rng, name)
        elif action == 1:
            del routes[rng.choice(sorted(routes))]
        else:
            name = rng.choice(sorted(routes))
            routes[name] = _random_route(rng, name)
        _assert_same(builder, list(routes.values()))


def test_routes_arriving_at_the_same_place_are_respaced_not_rebuilt() -> None:
    # Sorted names with the same priority land next to each other, halving the gap every
    # time: after ~20 of them the builder must spread the neighbours, and stay correct.
    builder: TableBuilder[str] = TableBuilder()
    routes = [
        Route(f"z{i:03d}", parse_rule(f"Host(`h{i:03d}.test`)"), f"z{i:03d}") for i in range(50)
    ]
    live = routes[:2] + routes[-1:]
    _assert_same(builder, live)
    for route in routes[2:-1]:
        live = [*live[:-1], route, live[-1]]
        _assert_same(builder, live)
    table = builder.build(live)
    assert table.match(SimpleRequest("h030.test", "/")) == "z030"


def test_an_unchanged_route_list_gives_the_same_table() -> None:
    builder: TableBuilder[str] = TableBuilder()
    routes = [
        Route("a", parse_rule("Host(`a.test`)"), "a"),
        Route("b", parse_rule("Path(`/b`)"), "b"),
    ]
    first = builder.build(routes)
    assert builder.build(list(routes)) is first
    second = builder.build(routes[:1])
    assert second is not first
    assert first.match(SimpleRequest("x.test", "/b")) == "b"  # the old table is untouched
    assert second.match(SimpleRequest("x.test", "/b")) is None
