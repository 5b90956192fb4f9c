"""A worker's data-plane state: the current graph and what outlives graph swaps.

`graph` is replaced by one assignment when a snapshot arrives (`load` builds it with this
worker's registries, so balancer cursors, pools and metrics carry over); a request reads it
once when its head is complete and keeps it. `snapshot` is the configuration the graph was
built from: a `SnapshotDelta` from the control plane is applied on top of it (`apply`).
`connections` are the live client connections (each has `shutdown()` and `abort()`), used
for draining and by the tick, which runs once per `tick_interval` and enforces the
connection deadlines (read, idle, response header) and closes upstream connections idle
past idleConnTimeout. One periodic timer per worker, not a
timer per request. Server health (edge/upstream/health.py) is applied to the balancers after every
build and whenever the control plane's `HealthSet` or a passive check changes.

`apply_sliced` is how a running worker applies a change: the delta is unpickled and the
graph built a slice at a time (`graph.build_graph_steps`), each slice at most about
`SLICE` seconds, with the event loop serving requests (on the old graph) in between; the
new graph is swapped in at the end. A running worker takes slices of `SERVING_SLICE`
(0.1 ms: a one-router change then takes a few, the loop serving between them); 20,000
new routers take a few seconds but never hold the loop for more than a slice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Generator
from typing import Any

from proxynow.config.static import StaticConfig
from proxynow.edge.core.metrics import WorkerMetrics
from proxynow.edge.graph.build import (
    GraphResources,
    RouterGraph,
    build_graph,
    build_graph_steps,
    empty_graph,
)
from proxynow.edge.http.access import AccessLog
from proxynow.edge.upstream.health import HealthSet
from proxynow.ipc.challenges import EMPTY_CHALLENGES, ChallengeSet
from proxynow.snapshot import Snapshot, SnapshotDelta

__all__ = ["SERVING_SLICE", "SLICE", "Slices", "WorkerState", "tick_interval"]

SLICE = 0.01
"""Seconds of building after which a sliced apply lets the event loop run (edge/graph/build.py)."""
SERVING_SLICE = 0.0001
"""The slice of a worker that serves: every request in flight waits for a slice, so a
one-router change (0.3-0.5 ms of CPU on a worker whose caches the requests keep: the
unpickling about 0.1 ms, the first step as much, the others 15-40 us) is taken in a few
of them, the loop serving between. One loop round each, 10-20 us."""

log = logging.getLogger(__name__)

# The tick enforces deadlines at most one interval late: a tenth of the smallest timeout
# configured, between these bounds (Traefik's defaults give the upper one).
_TICK_MIN, _TICK_MAX = 0.05, 1.0


class WorkerState:
    """Everything a worker's protocols share."""

    __slots__ = (
        "_ticker",
        "access_log",
        "challenges",
        "clocked",
        "connections",
        "draining",
        "graph",
        "http01",
        "resources",
        "snapshot",
        "tick_interval",
        "worker_id",
    )

    def __init__(
        self,
        graph: RouterGraph | None = None,
        worker_id: int = 0,
        resources: GraphResources | None = None,
        tick_interval: float = 1.0,
    ) -> None:
        self.resources = resources or GraphResources()
        self.graph = graph if graph is not None else empty_graph(StaticConfig(), self.resources)
        self.worker_id = worker_id
        self.draining = False
        self.connections: set[Any] = set()
        # The HTTP connections, whose `deadline` the tick enforces (a subset of the above).
        self.clocked: set[Any] = set()
        self.tick_interval = tick_interval
        self.challenges = EMPTY_CHALLENGES
        # The HTTP-01 tokens: empty (falsy) unless a challenge is pending, so the request
        # path pays one truth test.
        self.http01 = EMPTY_CHALLENGES.http01
        self._ticker: asyncio.TimerHandle | None = None
        self.snapshot = Snapshot.empty()
        # The worker's access log (static `accessLog`); None: off, the default.
        self.access_log: AccessLog | None = None

    @property
    def metrics(self) -> WorkerMetrics:
        return self.resources.metrics

    def load(
        self, snapshot: Snapshot, static: StaticConfig, delta: SnapshotDelta | None = None
    ) -> RouterGraph:
        """Build a graph for `snapshot` with this worker's registries and swap it in;
        `delta` (what changed since the current snapshot) lets the build patch."""
        graph = build_graph(snapshot, static, self.resources, delta)
        self._swap(graph, snapshot, static)
        return graph

    def apply(self, message: Snapshot | SnapshotDelta, static: StaticConfig) -> RouterGraph:
        """`load` a full snapshot, or a delta on top of the current one (`ValueError` if it
        is based on another version: the control plane then sends what we lack)."""
        if isinstance(message, SnapshotDelta):
            return self.load(message.apply(self.snapshot), static, message)
        return self.load(message, static)

    async def apply_sliced(
        self, message: Snapshot | SnapshotDelta, static: StaticConfig, slices: Slices
    ) -> RouterGraph:
        """`apply`, a slice at a time: the loop serves requests between slices (`slices`
        measures them), the new graph is swapped in at the end."""
        graph: RouterGraph = await slices.run(self.apply_steps(message, static))
        return graph

    def apply_steps(
        self, message: Snapshot | SnapshotDelta, static: StaticConfig
    ) -> Generator[None, None, RouterGraph]:
        """`apply` as steps (see `Slices`): unpack, build, and swap at the last step."""
        if isinstance(message, SnapshotDelta):
            yield from message.unpack()
            snapshot, delta = message.apply(self.snapshot), message
        else:
            snapshot, delta = message, None
        graph = yield from build_graph_steps(snapshot, static, self.resources, delta)
        self._swap(graph, snapshot, static)
        return graph

    def _swap(self, graph: RouterGraph, snapshot: Snapshot, static: StaticConfig) -> None:
        self.tick_interval = tick_interval(static, snapshot)
        # Before the swap: a rebuilt balancer must not serve a down server even once.
        self.resources.health.apply(snapshot.config, self.resources.balancers)
        self.graph = graph
        self.snapshot = snapshot
        if self.access_log is not None:
            self.access_log.reconfigured()

    def set_health(self, health: HealthSet) -> None:
        """The control plane's active health checks changed: rebalance, no rebuild."""
        self.resources.health.set_active(health)

    def set_challenges(self, challenges: ChallengeSet) -> None:
        self.challenges = challenges
        self.http01 = challenges.http01

    def ensure_ticking(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._ticker is None:
            self._ticker = loop.call_later(self.tick_interval, self._tick, loop)

    def stop(self) -> None:
        """Stop the tick and close idle upstream connections (worker exit)."""
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        self.resources.health.stop()
        self.resources.pools.close()

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for conn in [c for c in self.clocked if c.deadline <= now]:
            try:
                conn.on_deadline(now)
            except Exception:
                # One connection's failure must not stop the tick that clocks all others.
                log.exception("internal error at a connection deadline; closing it")
                conn.abort()
        self.resources.pools.sweep(now)
        if self.access_log is not None:
            self.access_log.flush()  # bufferingSize: lines wait at most one tick
        self._ticker = loop.call_later(self.tick_interval, self._tick, loop)


def tick_interval(static: StaticConfig, snapshot: Snapshot) -> float:
    """How often the tick must run for the configured timeouts to fire on time: a
    `responseHeaderTimeout` of 500 ms should not wait for a once-a-second tick."""
    forwarding = [static.servers_transport.forwarding_timeouts]
    forwarding += [t.forwarding_timeouts for t in snapshot.config.http.servers_transports.values()]
    timeouts = [t.response_header_timeout for t in forwarding]
    # HTTP/2 health pings: counted in ticks (edge/upstream/h2.py `H2Upstream.check`).
    pinged = [f for f in forwarding if f.read_idle_timeout > 0]
    timeouts += [f.read_idle_timeout for f in pinged] + [f.ping_timeout for f in pinged]
    for entrypoint in static.entry_points.values():
        responding = entrypoint.transport.responding_timeouts
        timeouts += [responding.read_timeout, responding.write_timeout, responding.idle_timeout]
        timeouts.append(entrypoint.transport.keep_alive_max_time)
    smallest = min((t for t in timeouts if t > 0), default=_TICK_MAX * 10)
    return min(_TICK_MAX, max(_TICK_MIN, smallest / 10))


class Slices:
    """Runs step generators on the event loop a slice at a time and measures the slices.

    `run(steps)` takes steps until `budget` seconds have passed, then yields to the loop
    (`asyncio.sleep(0)`: one round of ready callbacks and I/O) and goes on; it returns what
    the generator returned. `longest` is the longest time the loop was held in one slice,
    counted from `started` (what came before the first step, such as unpickling, counts
    in the first slice); `slices` how many there were.
    """

    __slots__ = ("_mark", "budget", "busy", "longest", "slices")

    def __init__(self, budget: float = SLICE) -> None:
        self.budget = budget
        self.longest = 0.0
        self.busy = 0.0  # the slices' time in all (`done` adds the last one)
        self.slices = 1
        self._mark = time.perf_counter()

    def started(self) -> None:
        """The loop is held from now on (the current slice begins)."""
        self._mark = time.perf_counter()

    def first(self, steps: Generator[None, None, Any]) -> tuple[bool, Any]:
        """Take the first slice of `steps` right now, without the loop: (True, result)
        when they ended within it, (False, None) when `run` must go on with them. A
        small change ends in its first slice and costs no task and no loop round."""
        deadline = self._mark + self.budget
        # Checked before each step: what came before the first (unpickling) may have
        # taken the slice already.
        while time.perf_counter() < deadline:
            try:
                next(steps)
            except StopIteration as done:
                return True, done.value
            except BaseException:
                steps.close()
                raise
        return False, None

    async def run(self, steps: Generator[None, None, Any]) -> Any:
        """Take steps to the end, a slice at a time, yielding to the loop in between."""
        budget = self.budget
        deadline = self._mark + budget
        try:
            while True:
                now = time.perf_counter()
                if now >= deadline:
                    self.longest = max(self.longest, now - self._mark)
                    self.busy += now - self._mark
                    await asyncio.sleep(0)
                    self.slices += 1
                    self._mark = time.perf_counter()
                    deadline = self._mark + budget
                try:
                    next(steps)
                except StopIteration as done:
                    return done.value
        finally:
            steps.close()  # cancelled or failed: the builder drops its half-made caches now

    def done(self) -> float:
        """The end of the last slice: the longest slice, in seconds."""
        last = time.perf_counter() - self._mark
        self.longest = max(self.longest, last)
        self.busy += last
        return self.longest
