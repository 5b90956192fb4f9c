"""A build that changes routers only (aggregator `_build_routers_only`) gives what a full
build gives: random router edits, each built both ways and compared, and the delta the
snapshot carries is the delta a comparison finds."""

from __future__ import annotations

import random
from typing import Any

import pytest

from proxynow.config.dynamic import DynamicConfig
from proxynow.control.aggregator import BuildCache, EntryPoints, build_snapshot
from proxynow.providers.base import ProviderUpdate
from proxynow.snapshot import Snapshot, SnapshotDelta

ENTRY_POINTS = EntryPoints.from_flags({"web": True, "websecure": False})
SERVICES = {
    "app": {"loadBalancer": {"servers": [{"url": "http://127.0.0.1:1"}]}},
    "empty": {"loadBalancer": {"servers": []}},
}
MIDDLEWARES = {"up": {"redirectScheme": {"scheme": "https"}}}


def random_router(rng: random.Random, name: str) -> dict[str, Any]:
    router: dict[str, Any] = {
        "rule": rng.choice(
            [f"Host(`{name}.test`)", "PathPrefix(`/x`)", "Host(`broken", f"Path(`/{name}`)"]
        ),
        "service": rng.choice(["app", "empty", "missing", "app@file", "api@internal"]),
    }
    if rng.random() < 0.3:
        router["entryPoints"] = rng.choice([["web"], ["nowhere"], ["web", "nowhere"]])
    if rng.random() < 0.2:
        router["middlewares"] = rng.choice([["up"], ["gone"]])
    if rng.random() < 0.1:
        router["tls"] = rng.choice([{}, {"options": "missing"}])
    return router


def update(provider: str, routers: dict[str, Any], tcp: dict[str, Any]) -> ProviderUpdate:
    raw = {
        "http": {"routers": routers, "services": SERVICES, "middlewares": MIDDLEWARES},
        "tcp": {"routers": tcp, "services": {"db": {"loadBalancer": {"servers": []}}}},
    }
    return ProviderUpdate(provider, DynamicConfig.model_validate(raw))


def same_objects(base: ProviderUpdate, raw: ProviderUpdate, changed: set[str]) -> ProviderUpdate:
    """`raw` with every router not in `changed` (and every other table) taken from `base`:
    what the file provider's loader hands over for an edit of those routers."""
    http, tcp = raw.config.http, raw.config.tcp
    routers = {
        name: base.config.http.routers[name]
        if name not in changed and name in base.config.http.routers
        else router
        for name, router in http.routers.items()
    }
    tcp_routers = {
        name: base.config.tcp.routers[name]
        if name not in changed and name in base.config.tcp.routers
        else router
        for name, router in tcp.routers.items()
    }
    config = base.config.model_copy(
        update={
            "http": base.config.http.model_copy(update={"routers": routers}),
            "tcp": base.config.tcp.model_copy(update={"routers": tcp_routers}),
        }
    )
    return ProviderUpdate(raw.provider, config)


def full(version: int, updates: list[ProviderUpdate]) -> Snapshot:
    return build_snapshot(version, updates, ENTRY_POINTS, frozenset({"api"}), BuildCache())


@pytest.mark.parametrize("seed", range(8))
def test_router_edits_built_incrementally_equal_a_full_build(seed: int) -> None:
    rng = random.Random(seed)
    routers = {f"r{i}": random_router(rng, f"r{i}") for i in range(40)}
    tcp = {"t0": {"rule": "HostSNI(`*`)", "service": "db"}}
    other = update("docker", {"d0": random_router(rng, "d0")}, {})
    current = update("file", routers, tcp)
    cache = BuildCache()
    previous = build_snapshot(1, [current, other], ENTRY_POINTS, frozenset({"api"}), cache)
    incremental_builds = 0
    for version in range(2, 40):
        changed: set[str] = set()
        for _ in range(rng.randint(1, 3)):
            action = rng.random()
            name = rng.choice([*routers, f"n{version}"])
            if action < 0.3 and name in routers:
                del routers[name]
            else:
                routers[name] = random_router(rng, name)
            changed.add(name)
        if rng.random() < 0.2:
            tcp = {"t0": {"rule": rng.choice(["HostSNI(`*`)", "HostSNI(`a"]), "service": "db"}}
            changed.add("t0")
        current = same_objects(current, update("file", routers, tcp), changed)
        snapshot = build_snapshot(
            version, [current, other], ENTRY_POINTS, frozenset({"api"}), cache
        )
        incremental_builds += snapshot.changes is not None
        expected = full(version, [current, other])
        assert snapshot.same_content(expected), version
        assert dict(snapshot.statuses) == dict(expected.statuses)
        # The delta the snapshot carries is the one a comparison finds.
        carried = SnapshotDelta.between(previous, snapshot)
        compared = SnapshotDelta.between(
            previous, Snapshot(snapshot.version, snapshot.config, snapshot.statuses)
        )
        assert {k: (dict(c.upserts), set(c.removed)) for k, c in carried.tables.items()} == {
            k: (dict(c.upserts), set(c.removed)) for k, c in compared.tables.items()
        }
        assert carried.apply(Snapshot(previous.version, previous.config)).config == (
            snapshot.config
        )
        previous = snapshot
    assert incremental_builds > 20  # the point: most of these edits took the short path


def test_a_service_change_takes_the_full_build() -> None:
    routers = {"a": {"rule": "Host(`a.test`)", "service": "app"}}
    cache = BuildCache()
    first = update("file", routers, {})
    build_snapshot(1, [first], ENTRY_POINTS, frozenset(), cache)
    changed = first.config.model_copy(
        update={"http": first.config.http.model_copy(update={"services": {}})}
    )
    snapshot = build_snapshot(
        2, [ProviderUpdate("file", changed)], ENTRY_POINTS, frozenset(), cache
    )
    assert snapshot.changes is None
    assert snapshot.status("http", "routers", "a@file").status == "disabled"  # type: ignore[union-attr]


def test_the_carried_changes_are_not_pickled() -> None:
    import pickle

    cache = BuildCache()
    first = update("file", {"a": {"rule": "Host(`a.test`)", "service": "app"}}, {})
    base = build_snapshot(1, [first], ENTRY_POINTS, frozenset(), cache)
    routers = dict(first.config.http.routers)
    routers["b"] = routers["a"].model_copy(update={"rule": "Host(`b.test`)"})
    second = first.config.model_copy(
        update={"http": first.config.http.model_copy(update={"routers": routers})}
    )
    snapshot = build_snapshot(2, [ProviderUpdate("file", second)], ENTRY_POINTS, frozenset(), cache)
    assert snapshot.changes is not None and snapshot.changes[0] is base.config
    copy = pickle.loads(pickle.dumps(snapshot))
    assert copy.changes is None and copy.same_content(snapshot)
