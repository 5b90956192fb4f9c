"""The incremental apply path: deltas between snapshots, and graphs rebuilt from them.

Snapshots come from the real aggregator (`build_snapshot`), go through
`SnapshotDelta.between` and pickle exactly as the supervisor sends them, and are applied
with `WorkerState.apply`. Each change is checked for what it must do (a changed router
takes effect, a removed one disappears, a rule or middleware change is picked up), for
what it must keep (an unchanged service's pool, balancer cursor and compiled pick), and
against a graph compiled from the full snapshot from scratch.
"""

from __future__ import annotations

import ipaddress
import pickle
import random
from typing import Any

import pytest

from proxynow.config.loader import validate_dynamic
from proxynow.config.static import StaticConfig
from proxynow.control.aggregator import EntryPoints, build_snapshot
from proxynow.edge.graph.build import HttpTarget, build_graph, describe
from proxynow.edge.graph.state import WorkerState
from proxynow.providers.base import ProviderUpdate
from proxynow.rules import SimpleRequest
from proxynow.snapshot import Snapshot, SnapshotDelta

STATIC = StaticConfig.model_validate({"entryPoints": {"web": {"address": ":80"}}})
ENTRY_POINTS = EntryPoints.from_flags({"web": False})


def snapshot(version: int, http: dict[str, Any]) -> Snapshot:
    config = validate_dynamic({"http": http})
    return build_snapshot(version, [ProviderUpdate("file", config, {})], ENTRY_POINTS)


def lb(*urls: str) -> dict[str, Any]:
    return {"loadBalancer": {"servers": [{"url": url} for url in urls]}}


def router(rule: str, service: str = "app", **extra: Any) -> dict[str, Any]:
    return {"rule": rule, "service": service, **extra}


def base_http() -> dict[str, Any]:
    return {
        "routers": {
            "a": router("Host(`a.test`)"),
            "b": router("Host(`b.test`)"),
            "other": router("Host(`o.test`)", "other"),
        },
        "services": {
            "app": lb("http://10.0.0.1:80", "http://10.0.0.2:80"),
            "other": lb("http://10.0.0.3"),
        },
    }


def target(state: WorkerState, host: str, path: str = "/") -> HttpTarget | None:
    request = SimpleRequest(host=host, path=path, client_ip=ipaddress.ip_address("127.0.0.1"))
    found: HttpTarget | None = state.graph.http["web"].match(request)
    return found


def send(old: Snapshot, new: Snapshot) -> SnapshotDelta:
    """The delta as the worker receives it (pickled by the supervisor)."""
    delta: SnapshotDelta = pickle.loads(pickle.dumps(SnapshotDelta.between(old, new)))
    return delta


def loaded(http: dict[str, Any]) -> tuple[WorkerState, Snapshot]:
    state = WorkerState()
    first = snapshot(1, http)
    state.apply(pickle.loads(pickle.dumps(first)), STATIC)
    return state, first


def test_a_delta_carries_only_what_changed_and_keeps_the_rest_as_the_same_objects() -> None:
    http = base_http()
    old = snapshot(1, http)
    http["routers"]["c"] = router("Host(`c.test`)")
    del http["routers"]["b"]
    new = snapshot(2, http)
    delta = SnapshotDelta.between(old, new)
    assert (delta.version, delta.base, delta.size) == (2, 1, 2)
    assert set(delta.tables) == {("http", "routers")}
    assert list(delta.tables["http", "routers"].upserts) == ["c@file"]
    assert delta.tables["http", "routers"].removed == ("b@file",)
    applied = delta.apply(old)
    assert applied.config == new.config
    assert applied.config.http.routers["a@file"] is old.config.http.routers["a@file"]
    assert applied.config.http.services is old.config.http.services


def test_a_delta_for_another_base_is_refused() -> None:
    one, two = snapshot(1, base_http()), snapshot(2, {})
    with pytest.raises(ValueError, match="based on 1"):
        SnapshotDelta.between(one, two).apply(two)


def test_an_added_router_serves_a_removed_one_is_gone() -> None:
    http = base_http()
    state, old = loaded(http)
    http["routers"]["c"] = router("Host(`c.test`)")
    del http["routers"]["b"]
    new = snapshot(2, http)
    state.apply(send(old, new), STATIC)
    assert state.graph.version == state.snapshot.version == 2
    assert (found := target(state, "c.test")) is not None and found.router == "c@file"
    assert target(state, "b.test") is None
    assert describe(state.graph) == describe(build_graph(new, STATIC))


def test_an_unchanged_service_keeps_its_pool_cursor_and_pick() -> None:
    http = base_http()
    state, old = loaded(http)
    before = target(state, "a.test")
    assert before is not None
    first = before.pick()
    assert first is not None
    http["routers"]["c"] = router("Host(`c.test`)")
    http["services"]["other"] = lb("http://10.0.0.9")
    state.apply(send(old, snapshot(2, http)), STATIC)
    after = target(state, "a.test")
    assert after is not None
    assert after is before  # router and service unchanged: the very same compiled target
    second = after.pick()
    assert second is not None and second.url != first.url  # the cursor moved on
    assert second.pool is state.resources.pools.get(second.pool.key)
    other = target(state, "o.test")
    assert other is not None and (server := other.pick()) is not None
    assert server.url == "http://10.0.0.9"


def test_a_changed_rule_takes_effect() -> None:
    http = base_http()
    state, old = loaded(http)
    http["routers"]["a"] = router("Host(`a.test`) && PathPrefix(`/api`)")
    state.apply(send(old, snapshot(2, http)), STATIC)
    assert target(state, "a.test", "/") is None
    assert (found := target(state, "a.test", "/api/x")) is not None and found.router == "a@file"


def test_a_changed_service_gives_its_routers_the_new_servers() -> None:
    http = base_http()
    state, old = loaded(http)
    http["services"]["app"] = lb("http://10.0.0.7")
    state.apply(send(old, snapshot(2, http)), STATIC)
    for host in ("a.test", "b.test"):
        found = target(state, host)
        assert found is not None and (server := found.pick()) is not None
        assert server.url == "http://10.0.0.7"


def test_a_changed_middleware_is_picked_up() -> None:
    http = base_http()
    http["middlewares"] = {"up": {"redirectScheme": {"scheme": "https", "port": "8443"}}}
    http["routers"]["a"] = router("Host(`a.test`)", middlewares=["up"])
    state, old = loaded(http)
    before = target(state, "a.test")
    assert before is not None and before.chain is not None
    http["middlewares"]["up"] = {"redirectScheme": {"scheme": "https", "port": "9443"}}
    state.apply(send(old, snapshot(2, http)), STATIC)
    after = target(state, "a.test")
    assert after is not None and after.chain is not None
    assert after.chain is not before.chain
    assert target(state, "b.test") is not None  # a router without middlewares still serves


def random_http(rng: random.Random) -> dict[str, Any]:
    routers = {}
    for i in rng.sample(range(40), 25):
        rule = rng.choice([f"Host(`h{i}.test`)", f"Host(`h{i}.test`) && PathPrefix(`/p{i % 3}`)"])
        service = rng.choice(["s0", "s1", "s2", "missing"])
        routers[f"r{i}"] = router(rule, service, priority=rng.choice([0, 0, 10]))
    services = {f"s{i}": lb(f"http://10.0.1.{i}:{rng.choice([80, 81])}") for i in range(3)}
    return {"routers": routers, "services": services}


@pytest.mark.parametrize("seed", range(4))
def test_a_chain_of_deltas_builds_what_a_full_build_would(seed: int) -> None:
    rng = random.Random(seed)
    state, current = loaded(random_http(rng))
    for version in range(2, 25):
        http = random_http(rng) if rng.random() < 0.2 else current_http(current, rng)
        new = snapshot(version, http)
        state.apply(send(current, new), STATIC)
        fresh = build_graph(new, STATIC)
        assert describe(state.graph) == describe(fresh)
        for i in range(40):
            for path in ("/", "/p0", "/p1/x"):
                request = SimpleRequest(host=f"h{i}.test", path=path)
                got, want = state.graph.http["web"].match(request), fresh.http["web"].match(request)
                assert (got and got.router, got and got.service) == (
                    want and want.router,
                    want and want.service,
                )
        current = new


def current_http(current: Snapshot, rng: random.Random) -> dict[str, Any]:
    """`current`'s file configuration with one router added, changed or removed."""
    routers = {
        name.split("@")[0]: router(r.rule, r.service.split("@")[0], priority=r.priority)
        for name, r in current.config.http.routers.items()
    }
    for key in current.statuses:
        name = key.removeprefix("http.routers.").split("@")[0]
        if key.startswith("http.routers.") and name not in routers:
            routers[name] = router(f"Host(`{name}.test`)", "missing")
    name = f"r{rng.randrange(40)}"
    if name in routers and rng.random() < 0.5:
        del routers[name]
    else:
        routers[name] = router(f"Host(`h{name[1:]}.test`)", rng.choice(["s0", "s1", "s2"]))
    services = {f"s{i}": lb(f"http://10.0.1.{i}:80") for i in range(3)}
    return {"routers": routers, "services": services}
