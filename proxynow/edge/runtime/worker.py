"""A data-plane worker process: uvloop, one listener per entrypoint, snapshots, drain.

Started by the supervisor as `python -m proxynow.edge.runtime.worker --channel-fd N`, where N is
its end of a unix socket pair. The first message (INIT) brings the worker id, the static
configuration, the entrypoint addresses the control plane resolved and the latest
snapshot; the worker binds its own SO_REUSEPORT sockets, builds its graph and answers
READY. Every later SNAPSHOT (a full `Snapshot`, or usually a `SnapshotDelta` on top of the
one we serve) is compiled and swapped in with one assignment
(`state.graph = graph`); requests in flight keep the graph they started with. The apply
is taken a slice at a time (`WorkerState.apply_steps`, `Slices`) of `SERVING_SLICE`
(0.1 ms): every request in flight waits for a slice, so even a one-router change (0.3-0.5
ms of CPU here, the apply's code and data cold in caches the requests keep) goes on in a
task after its first slice, and requests are served, on the old graph, between its
slices. SERVING
answers with the version now served and how long the apply stalled the loop: its longest
slice. One apply runs at a time (the control plane sends the next on SERVING; one that
came anyway waits for the current one to end).

The cyclic garbage collector is kept off while a graph is built and the graph is frozen
afterwards (`gc.freeze`, after a first graph of 2,000 objects or more and after every
apply whose slices took `SLICE`, 10 ms, or more): a full collection walks every object the worker
holds, 0.3 to 0.5 s with 20,000 routers, and the growth of a large build triggers one or
two of them. A graph build
leaves no cyclic garbage (its old objects go by reference counting), so freezing keeps
nothing alive that would otherwise be collected but the cyclic garbage of the requests in
flight at that moment, once per large change.

Drain (SIGTERM, or the control plane going away): keep accepting for each entrypoint's
`requestAcceptGraceTimeout`, close the listeners, ask every connection to `shutdown()`
(finish what is in flight, then close), and wait up to `graceTimeOut` before dropping
what is left. SIGINT is ignored: Ctrl-C reaches the whole process group, and the control
plane turns it into the same orderly drain.

This module imports only what a worker needs: no providers, no aggregator, no API.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import logging
import os
import pickle
import signal
import socket
import sys
from collections.abc import Generator, Mapping
from typing import Any

import uvloop

from proxynow.config.static import EntryPoint, StaticConfig
from proxynow.edge.core.metrics import BUCKETS, WorkerMetrics
from proxynow.edge.graph.build import GraphResources, empty_graph
from proxynow.edge.graph.state import SERVING_SLICE, SLICE, Slices, WorkerState
from proxynow.edge.runtime.accept import connection_factory
from proxynow.edge.runtime.access import open_access_log
from proxynow.edge.upstream.health import HealthSet
from proxynow.ipc import channel as ch
from proxynow.ipc import priority
from proxynow.ipc.challenges import ChallengeSet
from proxynow.ipc.listen import ListenAddress, bind
from proxynow.logs import configure_logging, reopen_logging
from proxynow.snapshot import Snapshot, SnapshotDelta

__all__ = ["Worker", "main", "tune_allocator", "worker_metrics"]

# Not __name__: run with `-m`, this module is `__main__`, outside the proxynow logger.
log = logging.getLogger("proxynow.edge.runtime.worker")

EXIT_OK = 0
EXIT_START_FAILED = 3
_DRAIN_POLL = 0.05  # seconds between checks for "all connections closed"
_LARGE = 2000  # objects from which the first graph is frozen (a smaller one: as before)

# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 4 << 20
_TRIM_THRESHOLD = 32 << 20


class Worker:
    """One worker's life: init from the channel, listen, apply snapshots, drain."""

    def __init__(self, channel_sock: socket.socket) -> None:
        self._sock = channel_sock
        self._loop = asyncio.get_running_loop()
        self._init: asyncio.Future[ch.Message | None] = self._loop.create_future()
        self._stop = asyncio.Event()
        self._channel: ch.Channel | None = None
        self._static = StaticConfig()
        self._state: WorkerState | None = None
        self._servers: dict[str, list[asyncio.Server]] = {}
        self._pending_challenges: ChallengeSet | None = None
        self._pending_health: HealthSet | None = None
        self._pending_ticket_key: bytes | None = None
        self._applying: asyncio.Task[None] | None = None
        self._queued: bytes | None = None  # a SNAPSHOT that came while applying another

    async def run(self) -> int:
        _, self._channel = await self._loop.create_unix_connection(
            lambda: ch.Channel(self._on_message, self._request_stop), sock=self._sock
        )
        self._loop.add_signal_handler(signal.SIGTERM, self._request_stop)
        # logrotate: the control plane forwards its SIGUSR1 (installed before INIT, so that
        # an early one cannot kill us by its default action).
        self._loop.add_signal_handler(signal.SIGUSR1, self._reopen_logs)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        init = await self._first_message()
        if init is None:
            return EXIT_OK
        _, _, worker_id, static, addresses, blob = init
        self._static = static
        configure_logging(static.log)
        snapshot: Snapshot | None = pickle.loads(blob) if blob is not None else None
        resources = GraphResources(metrics=worker_metrics(static))
        state = self._state = WorkerState(worker_id=worker_id, resources=resources)
        if self._pending_challenges is not None:
            state.set_challenges(self._pending_challenges)
        if self._pending_health is not None:
            state.resources.health.active = self._pending_health  # applied by the load below
        if self._pending_ticket_key is not None:
            state.resources.contexts.set_ticket_key(self._pending_ticket_key)
        # Entrypoint redirections name the port clients reach (port 0 resolved).
        state.resources.ports = {name: address.port for name, address in addresses.items()}
        collecting = gc.isenabled()
        gc.disable()  # not serving yet: built in one go, but without full collections
        try:
            if snapshot is not None:
                state.load(snapshot, static)
            else:
                state.graph = empty_graph(static, state.resources)
        finally:
            if snapshot is not None and _objects(snapshot) >= _LARGE:
                gc.freeze()  # a large start lives as long as we do: no collection walks it
            if collecting:
                gc.enable()
        if static.access_log is not None:
            state.access_log = open_access_log(static.access_log, state, self._loop)
        state.ensure_ticking(self._loop)
        try:
            await self._listen(addresses)
        except OSError as exc:
            self._channel.send((ch.FATAL, f"worker {worker_id}: cannot listen: {exc}"))
            await self._close_channel()
            return EXIT_START_FAILED
        version = snapshot.version if snapshot is not None else 0
        self._channel.send((ch.READY, worker_id, os.getpid(), version))
        await self._stop.wait()
        await self._drain()
        if state.access_log is not None:
            state.access_log.close()
        await self._close_channel()
        return EXIT_OK

    def _reopen_logs(self) -> None:
        reopen_logging()
        if self._state is not None and self._state.access_log is not None:
            self._state.access_log.reopen()

    async def _first_message(self) -> ch.Message | None:
        """The INIT message, or None if the control plane stopped us before sending it."""
        init = await self._init
        if init is not None and init[1] != ch.PROTOCOL_VERSION:
            raise RuntimeError(f"channel protocol {init[1]} != {ch.PROTOCOL_VERSION}")
        return init

    def _request_stop(self) -> None:
        self._stop.set()
        if not self._init.done():
            self._init.set_result(None)

    # -- messages from the control plane

    def _on_message(self, message: ch.Message) -> None:
        kind = message[0]
        if kind == ch.INIT:
            if not self._init.done():
                self._init.set_result(message)
        elif kind == ch.SNAPSHOT:
            self._apply(message[2])
        elif kind == ch.COLLECT:
            self._collect(message[1])
        elif kind == ch.CHALLENGES:
            self._pending_challenges = message[1]
            if self._state is not None:
                self._state.set_challenges(message[1])
        elif kind == ch.HEALTH:
            self._pending_health = message[1]
            if self._state is not None:
                self._state.set_health(message[1])
        elif kind == ch.TICKETS:
            self._pending_ticket_key = message[1]
            if self._state is not None:
                self._state.resources.contexts.set_ticket_key(message[1])
        else:
            log.warning("worker: unknown message %r from the control plane", kind)

    def _apply(self, blob: bytes) -> None:
        state = self._state
        if state is None:
            return  # before INIT completed: INIT itself carried the newest snapshot
        if self._applying is not None:
            self._queued = blob  # the newest wins; applied when the current one is done
            return
        # Every request waits while a slice runs: the longest is reported as the stall.
        slices = Slices(SERVING_SLICE)
        collecting = gc.isenabled()
        gc.disable()
        version = -1
        try:
            message: Snapshot | SnapshotDelta = pickle.loads(blob)  # chunked if large: cheap
            version = message.version
            steps = state.apply_steps(message, self._static)
            done, _ = slices.first(steps)  # a small change ends here, as one slice
        except Exception:
            log.exception("worker %d: building graph %d failed", state.worker_id, version)
            done = True
        if done:
            self._applied(slices, collecting)
        else:
            self._applying = self._loop.create_task(
                self._apply_rest(steps, slices, collecting, version), name="apply"
            )

    async def _apply_rest(
        self, steps: Generator[None, None, Any], slices: Slices, collecting: bool, version: int
    ) -> None:
        """The slices after the first, with the loop serving in between."""
        state = self._state
        assert state is not None
        try:
            await slices.run(steps)
        except Exception:
            log.exception("worker %d: building graph %d failed", state.worker_id, version)
        finally:
            self._applying = None
            self._applied(slices, collecting)
        blob, self._queued = self._queued, None
        if blob is not None:
            self._apply(blob)

    def _applied(self, slices: Slices, collecting: bool) -> None:
        """An apply is over (done or failed): the collector back on, SERVING sent."""
        state = self._state
        assert state is not None
        if slices.busy >= SLICE:
            # Before collecting again: what a large build made is all in the youngest
            # generation, which the next allocation would walk (0.15 s for 20,000). A
            # small change is not frozen: that would keep the requests' cyclic garbage.
            gc.freeze()
        if collecting:
            gc.enable()
        stall = slices.done()
        if slices.busy >= SLICE:
            log.debug(
                "worker %d: graph %d built in %d slices, the longest %.1f ms",
                state.worker_id,
                state.snapshot.version,
                slices.slices,
                stall * 1000,
            )
        self._serving(stall)

    def _serving(self, stall: float) -> None:
        state = self._state
        assert state is not None and self._channel is not None
        # The version we serve, which on failure is the old one: the control plane then
        # knows what a next delta must be based on.
        self._channel.send((ch.SERVING, state.snapshot.version, stall))

    def _collect(self, request_id: int) -> None:
        state = self._state
        data = state.metrics.collect() if state is not None else {}
        if state is not None and state.access_log is not None:
            data["accessLog"] = state.access_log.counters()
        assert self._channel is not None
        self._channel.send((ch.METRICS, request_id, data))

    # -- listeners

    async def _listen(self, addresses: Mapping[str, ListenAddress]) -> None:
        state = self._state
        assert state is not None
        for name, address in addresses.items():
            entrypoint = self._static.entry_points[name]
            if address.transport != "tcp":
                continue
            factory = self._factory(state, name, entrypoint)
            servers = self._servers.setdefault(name, [])
            backlog = entrypoint.transport.listen_backlog
            for sock in bind(address, backlog):
                # create_server listens again with its own backlog (100 unless told).
                server = await self._loop.create_server(factory, sock=sock, backlog=backlog)
                servers.append(server)

    def _factory(self, state: WorkerState, name: str, entrypoint: EntryPoint) -> Any:
        return connection_factory(state, name, entrypoint)

    # -- drain

    async def _drain(self) -> None:
        state = self._state
        assert state is not None
        log.info("worker %d: draining", state.worker_id)
        if self._applying is not None:
            self._applying.cancel()  # a graph we would not serve for long
        async with asyncio.TaskGroup() as group:
            for name, servers in self._servers.items():
                grace = self._static.entry_points[name].transport.life_cycle
                group.create_task(self._close_later(servers, grace.request_accept_grace_timeout))
        state.draining = True
        for connection in list(state.connections):
            connection.shutdown()
        deadline = self._loop.time() + self._grace_time_out()
        while state.connections and self._loop.time() < deadline:
            await asyncio.sleep(_DRAIN_POLL)
        for connection in list(state.connections):
            connection.abort()
        state.stop()
        log.info("worker %d: drained", state.worker_id)

    async def _close_later(self, servers: list[asyncio.Server], delay: float) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        for server in servers:
            server.close()

    def _grace_time_out(self) -> float:
        """The longest graceTimeOut of our entrypoints (connections are tracked together)."""
        lifecycles = [ep.transport.life_cycle for ep in self._static.entry_points.values()]
        return max((life.grace_time_out for life in lifecycles), default=0.0)

    async def _close_channel(self) -> None:
        if self._channel is not None:
            self._channel.close()
            with contextlib.suppress(asyncio.CancelledError):
                await self._channel.closed


async def _serve(fd: int) -> int:
    sock = socket.socket(fileno=fd)
    return await Worker(sock).run()


def _objects(snapshot: Snapshot) -> int:
    config = snapshot.config
    return sum(
        len(getattr(config, protocol).routers) + len(getattr(config, protocol).services)
        for protocol in ("http", "tcp", "udp")
    )


def tune_allocator() -> None:
    """Keep glibc from returning the heap to the kernel after every large read.

    uvloop reads up to 256 KiB at a time and each read becomes a new bytes object. With
    glibc's defaults every one of those is a fresh brk (or mmap) and its free a trim, so
    each read page-faults its whole buffer in again: a 1 MiB response cost twice the CPU
    it costs with the heap kept (bench body-1m: 1,176 -> 554 us per response). Fixed
    thresholds keep those buffers on the heap and the freed heap for the next read. Not
    glibc (musl): nothing to tune.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        return
    mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
    mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)


def worker_metrics(static: StaticConfig) -> WorkerMetrics:
    """A worker's counters: the duration histogram's bounds from
    `metrics.prometheus.buckets`, else Traefik's; `headerLabels` when set."""
    prometheus = static.metrics.prometheus if static.metrics is not None else None
    if prometheus is None:
        return WorkerMetrics(BUCKETS)
    return WorkerMetrics(tuple(prometheus.buckets), prometheus.header_labels)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="proxynow.edge.runtime.worker")
    parser.add_argument("--channel-fd", type=int, required=True)
    parser.add_argument("--priority", type=int, default=None)
    args = parser.parse_args(argv)
    tune_allocator()
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    if args.priority is not None:
        priority.restore_worker(args.priority)
    return uvloop.run(_serve(args.channel_fd))


if __name__ == "__main__":
    raise SystemExit(main())
