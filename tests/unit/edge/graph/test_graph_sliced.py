"""Graph builds a slice at a time: the same graph as one go, requests served (on the old
graph) between slices, large deltas unpickled in chunks, `by_host` kept incrementally."""

from __future__ import annotations

import asyncio
import pickle
import random
from collections.abc import Generator
from typing import Any

from proxynow.config.loader import validate_dynamic
from proxynow.config.static import StaticConfig
from proxynow.control.aggregator import EntryPoints, build_snapshot
from proxynow.edge.graph.build import build_graph, build_graph_steps, describe
from proxynow.edge.graph.state import Slices, WorkerState
from proxynow.providers.base import ProviderUpdate
from proxynow.rules import SimpleRequest, parse_rule
from proxynow.rules.compiler import Route, _host_decided
from proxynow.rules.incremental import TableBuilder, finish
from proxynow.snapshot import Snapshot, SnapshotDelta

STATIC = StaticConfig.model_validate({"entryPoints": {"web": {"address": ":80"}}})
ENTRY_POINTS = EntryPoints.from_flags({"web": False})


def snapshot(version: int, routers: int, prefix: str = "h") -> Snapshot:
    http: dict[str, Any] = {
        "routers": {
            f"r{i}": {"rule": f"Host(`{prefix}{i}.test`)", "service": "app"} for i in range(routers)
        },
        "services": {"app": {"loadBalancer": {"servers": [{"url": "http://10.0.0.1"}]}}},
    }
    config = validate_dynamic({"http": http})
    return build_snapshot(version, [ProviderUpdate("file", config, {})], ENTRY_POINTS)


def host(state: WorkerState, name: str) -> str | None:
    found = state.graph.http["web"].match(SimpleRequest(host=name, path="/"))
    return None if found is None else found.router


def test_a_sliced_build_is_the_build_in_one_go() -> None:
    big = snapshot(1, 500)
    steps = build_graph_steps(big, STATIC)
    taken = 0
    while True:
        try:
            next(steps)
            taken += 1
        except StopIteration as done:
            sliced = done.value
            break
    assert taken >= 1000  # a step per router, and per route placed
    whole = build_graph(big, STATIC)
    assert describe(sliced) == describe(whole)
    assert sliced.http["web"].by_host.keys() == whole.http["web"].by_host.keys()


async def test_requests_are_served_on_the_old_graph_between_slices() -> None:
    state = WorkerState()
    state.apply(snapshot(1, 1), STATIC)
    old = state.graph
    delta = pickle.loads(pickle.dumps(SnapshotDelta.between(state.snapshot, snapshot(2, 3000))))
    assert delta.packed  # 3,000 new routers travel as chunks of 200
    seen: list[object] = []

    async def requests() -> None:
        while True:
            seen.append(state.graph)  # what a request arriving now would use
            assert host(state, "h0.test") == "r0@file"
            await asyncio.sleep(0)

    serving = asyncio.create_task(requests())
    slices = Slices(budget=0.001)
    await state.apply_sliced(delta, STATIC, slices)
    serving.cancel()
    assert slices.slices > 10 and len(seen) > 10
    assert seen[0] is old and state.graph is not old  # the old graph until the swap
    assert host(state, "h2999.test") == "r2999@file"
    assert state.snapshot.version == 2


async def test_a_small_change_is_applied_in_one_slice() -> None:
    state = WorkerState()
    state.apply(snapshot(1, 2000), STATIC)
    delta = SnapshotDelta.between(state.snapshot, snapshot(2, 2001))
    slices = Slices()
    await state.apply_sliced(pickle.loads(pickle.dumps(delta)), STATIC, slices)
    assert slices.slices == 1 and host(state, "h2000.test") == "r2000@file"


async def test_a_cancelled_build_leaves_the_old_graph_and_a_sound_next_build() -> None:
    state = WorkerState()
    state.apply(snapshot(1, 1), STATIC)
    old = state.graph
    delta = SnapshotDelta.between(state.snapshot, snapshot(2, 2000))
    task = asyncio.create_task(state.apply_sliced(delta, STATIC, Slices(budget=0.0005)))
    for _ in range(20):
        await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert state.graph is old and host(state, "h0.test") == "r0@file"
    state.apply(SnapshotDelta.between(state.snapshot, snapshot(2, 2000)), STATIC)
    assert host(state, "h1999.test") == "r1999@file"


def test_a_large_delta_is_unpickled_a_chunk_at_a_time() -> None:
    before, after = snapshot(1, 10), snapshot(2, 1000, prefix="n")
    delta = SnapshotDelta.between(before, after)
    copy = pickle.loads(pickle.dumps(delta))
    assert copy.size == delta.size == 1000  # r0-r9 changed, r10-r999 new
    assert len(copy.packed) == 5 and copy.tables["http", "routers"].upserts == {}
    assert sum(1 for _ in copy.unpack()) == 5
    assert copy.packed == () and copy.size == 1000
    assert copy.apply(Snapshot(1, before.config)).config == after.config


def test_by_host_kept_incrementally_is_by_host_worked_out_anew() -> None:
    rng = random.Random(15)
    builder: TableBuilder[str] = TableBuilder("http")
    rules = [
        "Host(`{0}.test`)",
        "Host(`{0}.test`) && Path(`/x`)",
        "Host(`*.test`)",
        "HostRegexp(`^{0}\\.other$`)",
        "PathPrefix(`/{0}`)",
        "Host(`{0}.sub.test`)",
    ]
    names: set[str] = set()
    for _ in range(300):
        added, removed = [], []
        for _ in range(rng.randint(1, 4)):
            name = f"r{rng.randint(0, 60)}"
            if name in names and rng.random() < 0.4:
                removed.append(name)
                names.discard(name)
            else:
                rule = rng.choice(rules).format(name)
                node = parse_rule(rule, "http")
                added.append(Route(name, node, name, rng.choice([0, 0, 5]), 0, rule))
                names.add(name)
        table = builder.patch([r for r in added if r.name in names], removed)
        fresh = _host_decided(table._exact, table._wildcards, table._any)
        # A host no longer decided may stay as a tombstone (None): the same shortcuts.
        assert {h: t for h, t in table.by_host.items() if t is not None} == fresh
    assert finish(builder.build_steps([])).route_names == ()


async def test_the_first_slice_is_taken_at_once_and_the_rest_later() -> None:
    state = WorkerState()
    state.apply(snapshot(1, 1000), STATIC)
    small = SnapshotDelta.between(state.snapshot, snapshot(2, 1001))
    done, graph = Slices().first(state.apply_steps(small, STATIC))
    assert done and state.graph is graph and host(state, "h1000.test") == "r1000@file"
    large = SnapshotDelta.between(state.snapshot, snapshot(3, 3000))
    slices = Slices(budget=0.001)
    steps = state.apply_steps(large, STATIC)
    done, _ = slices.first(steps)
    assert not done and state.snapshot.version == 2  # nothing swapped yet
    await slices.run(steps)
    assert state.snapshot.version == 3 and host(state, "h2999.test") == "r2999@file"
    assert slices.slices > 1


async def test_a_slice_spent_before_the_first_step_leaves_every_step_to_the_loop() -> None:
    """What comes before the first step (the worker's unpickling) counts in the first
    slice: once it has used the budget, no step is taken before the loop runs."""
    state = WorkerState()
    state.apply(snapshot(1, 10), STATIC)
    taken: list[int] = []

    def counted(steps: Generator[None, None, Any]) -> Generator[None, None, Any]:
        while True:
            taken.append(1)
            try:
                next(steps)
            except StopIteration as done:
                return done.value
            yield

    slices = Slices(budget=0.0)
    steps = counted(
        state.apply_steps(SnapshotDelta.between(state.snapshot, snapshot(2, 11)), STATIC)
    )
    done, _ = slices.first(steps)
    assert not done and taken == [] and state.snapshot.version == 1
    await slices.run(steps)
    assert state.snapshot.version == 2 and host(state, "h10.test") == "r10@file"
    assert slices.slices == len(taken) + 1 and slices.busy >= slices.longest > 0
