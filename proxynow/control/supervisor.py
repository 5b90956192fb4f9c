"""The control-plane side of the workers: start, watch, restart, publish, collect, drain.

Each worker is a `python -m proxynow.edge.runtime.worker` subprocess connected by a unix socket
pair (`proxynow.ipc.channel`). A worker gets a full snapshot once, in INIT; after that
each new version goes as a `SnapshotDelta` against the version it serves (pickled once
per distinct base), so a change of one router costs the worker one router. A worker has
at most one snapshot in flight: the next is sent when its SERVING arrives, as one delta
from what it serves to the newest version, so a slow worker is never sent a queue of
them and always ends up with the newest. A worker that exits while we are
not draining is logged and replaced (with the latest snapshot, after a short capped
backoff if it keeps dying at start), and the others keep serving. `stop()` sends
SIGTERM to every worker, which drains by itself, and waits for them to exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import pickle
import signal
import socket
import sys
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from proxynow.config.static import StaticConfig
from proxynow.edge.tls import tickets
from proxynow.edge.upstream.health import HealthSet
from proxynow.ipc import channel as ch
from proxynow.ipc import priority
from proxynow.ipc.challenges import ChallengeSet
from proxynow.ipc.listen import ListenAddress
from proxynow.snapshot import Snapshot, SnapshotDelta

__all__ = ["Supervisor", "WorkerInfo", "WorkerStartError"]

log = logging.getLogger(__name__)

_BACKOFF_FIRST = 0.1
_BACKOFF_MAX = 5.0
_QUICK_DEATH = 1.0  # a worker dying sooner than this after READY counts as a crash loop
_RECENT_STALLS = 200
_STOP_MARGIN = 5.0  # seconds beyond the drain deadline before a worker is killed


class WorkerStartError(RuntimeError):
    """A worker could not start (its FATAL message, or its exit before READY)."""


@dataclass(slots=True)
class WorkerInfo:
    """What the control plane knows about one worker slot."""

    worker_id: int
    pid: int = 0
    ready: bool = False
    version: int = -1
    restarts: int = 0
    started_at: float = 0.0
    # The snapshot in flight to this worker (sent, no SERVING yet), and what it reported.
    awaiting: bool = False
    applied: int = 0
    stall_max: float = 0.0  # seconds the longest snapshot apply held its loop
    # The last applies' stalls (tooling: bench/change_cost.py takes those of its window).
    stalls: deque[float] = field(default_factory=lambda: deque(maxlen=_RECENT_STALLS))
    process: asyncio.subprocess.Process | None = field(default=None, repr=False)
    channel: ch.Channel | None = field(default=None, repr=False)
    ready_future: asyncio.Future[None] | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.worker_id,
            "pid": self.pid,
            "ready": self.ready,
            "version": self.version,
            "restarts": self.restarts,
            "applied": self.applied,
            "stall_ms_max": round(self.stall_max * 1000, 3),
            "stall_ms_recent": [round(stall * 1000, 3) for stall in self.stalls],
        }


class Supervisor:
    """Owns the worker processes of one `proxynow run`."""

    def __init__(
        self,
        static: StaticConfig,
        addresses: Mapping[str, ListenAddress],
        snapshot: Snapshot,
        count: int | None = None,
    ) -> None:
        self._static = static
        self._priority = priority.current()  # what workers run at, whatever we lower to
        self._addresses = dict(addresses)
        self._snapshot = snapshot
        self._full: bytes | None = None  # the pickled current snapshot, made when needed
        # Snapshots a worker may serve (deltas are made against them), by version.
        self._history: dict[int, Snapshot] = {snapshot.version: snapshot}
        self._deltas: dict[int, bytes] = {}  # base version → pickled delta to the current
        self._workers = [WorkerInfo(i) for i in range(count or static.workers)]
        self._watchers: list[asyncio.Task[None]] = []
        self._stopping = False
        self._changed = asyncio.Event()
        self._requests = itertools.count(1)
        self._collects: dict[int, tuple[asyncio.Future[None], dict[int, Any]]] = {}
        self._challenges: ChallengeSet | None = None
        self._health: HealthSet | None = None
        # Every worker encrypts session tickets with this key, so that a client resumes on
        # any of them (edge/tls/tickets.py); drawn anew every ROTATE_SECONDS.
        self._ticket_key = os.urandom(tickets.KEY_BYTES)
        self._rotation: asyncio.TimerHandle | None = None

    @property
    def workers(self) -> list[WorkerInfo]:
        return list(self._workers)

    def live_pids(self) -> list[int]:
        """The pids of the worker processes that have not exited (ready or not): metrics
        keep the last counters of any other as final (proxynow/observe/totals.py)."""
        return [
            info.pid
            for info in self._workers
            if info.process is not None and info.process.returncode is None
        ]

    @property
    def version(self) -> int:
        """The version of the latest published snapshot."""
        return self._snapshot.version

    async def start(self) -> None:
        """Start every worker and wait until all are READY; WorkerStartError otherwise."""
        try:
            for info in self._workers:
                await self._spawn(info)
            for info in self._workers:
                assert info.ready_future is not None
                await info.ready_future
        except BaseException:
            await self.stop()
            raise
        loop = asyncio.get_running_loop()
        self._rotation = loop.call_later(tickets.ROTATE_SECONDS, self.rotate_ticket_key)
        self._watchers = [
            loop.create_task(self._watch(info), name=f"watch worker {info.worker_id}")
            for info in self._workers
        ]

    def publish(self, snapshot: Snapshot) -> None:
        """Push `snapshot` to every worker that is not busy with the previous one (never
        blocks; a busy worker gets it when it reports SERVING)."""
        self._snapshot = snapshot
        self._full = None
        self._deltas = {}
        self._history[snapshot.version] = snapshot
        for info in self._workers:
            self._push(info)
        self._forget()

    def _push(self, info: WorkerInfo) -> None:
        """Send `info` the newest version if it is ready, idle and behind."""
        latest = self._snapshot.version
        if info.channel is None or not info.ready or info.awaiting or info.version >= latest:
            return
        info.channel.send((ch.SNAPSHOT, latest, self._payload(info.version)))
        info.awaiting = True

    def _payload(self, base_version: int) -> bytes:
        """The pickled delta from `base_version` to the current snapshot, or the whole
        snapshot when that version is no longer known."""
        blob = self._deltas.get(base_version)
        if blob is not None:
            return blob
        base = self._history.get(base_version)
        if base is None:
            return self._full_blob()
        delta = SnapshotDelta.between(base, self._snapshot)
        blob = self._deltas[base_version] = pickle.dumps(delta, protocol=pickle.HIGHEST_PROTOCOL)
        return blob

    def _full_blob(self) -> bytes:
        if self._full is None:
            self._full = pickle.dumps(self._snapshot, protocol=pickle.HIGHEST_PROTOCOL)
        return self._full

    def _forget(self) -> None:
        """Keep only the snapshots a ready worker serves, and the current one."""
        keep = {info.version for info in self._workers if info.ready}
        keep.add(self._snapshot.version)
        for version in [v for v in self._history if v not in keep]:
            del self._history[version]

    def publish_challenges(self, challenges: ChallengeSet) -> None:
        """Hand the pending ACME challenges to every worker (no graph rebuild); a worker
        started later gets the latest set right after its INIT."""
        self._challenges = challenges
        message = (ch.CHALLENGES, challenges)
        for info in self._workers:
            if info.channel is not None:
                info.channel.send_latest(message)

    def publish_health(self, health: HealthSet) -> None:
        """Hand the servers that active health checks found down to every worker (no graph
        rebuild; only when it changed); a worker started later gets it after its INIT."""
        if health == self._health:
            return
        self._health = health
        message = (ch.HEALTH, health)
        for info in self._workers:
            if info.channel is not None:
                info.channel.send_latest(message)

    def rotate_ticket_key(self) -> None:
        """Draw a new session-ticket key and hand it to every worker (tickets made with
        the old one resume no more: a full handshake each); then again in an hour."""
        self._ticket_key = os.urandom(tickets.KEY_BYTES)
        message = (ch.TICKETS, self._ticket_key)
        for info in self._workers:
            if info.channel is not None:
                info.channel.send_latest(message)
        if not self._stopping:
            loop = asyncio.get_running_loop()
            self._rotation = loop.call_later(tickets.ROTATE_SECONDS, self.rotate_ticket_key)

    async def wait_serving(self, version: int) -> None:
        """Return once every worker is ready and serves `version` or newer."""
        while not all(info.ready and info.version >= version for info in self._workers):
            self._changed.clear()
            await self._changed.wait()

    async def collect(self, timeout: float = 2.0) -> list[dict[str, Any]]:
        """Metrics of every ready worker: [{"worker", "pid", "metrics"}]; a worker that does
        not answer within `timeout` is left out (it may be restarting)."""
        request_id = next(self._requests)
        targets = [info for info in self._workers if info.ready and info.channel is not None]
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        replies: dict[int, Any] = {}
        self._collects[request_id] = (done, replies)
        for info in targets:
            assert info.channel is not None
            info.channel.send((ch.COLLECT, request_id))
        try:
            if targets:
                await asyncio.wait_for(asyncio.shield(done), timeout)
        except TimeoutError:
            log.warning("metrics: %d of %d workers answered", len(replies), len(targets))
        finally:
            del self._collects[request_id]
        by_id = {info.worker_id: info for info in targets}
        return [
            {"worker": worker_id, "pid": by_id[worker_id].pid, "metrics": data}
            for worker_id, data in sorted(replies.items())
        ]

    def signal_workers(self, signum: int) -> None:
        """Send `signum` to every ready worker (SIGUSR1: reopen the log files). One still
        starting may not handle it yet (SIGUSR1 would end it), and opens its files after
        the rotation anyway."""
        for info in self._workers:
            if info.ready:
                _signal(info, signum)

    async def stop(self) -> None:
        """Drain: SIGTERM every worker, wait for their exit (SIGKILL past the deadline)."""
        self._stopping = True
        if self._rotation is not None:
            self._rotation.cancel()
        for task in self._watchers:
            task.cancel()
        for info in self._workers:
            _signal(info, signal.SIGTERM)
        deadline = self._drain_deadline()
        await asyncio.gather(*(self._reap(info, deadline) for info in self._workers))

    # -- one worker

    async def _spawn(self, info: WorkerInfo) -> None:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            info.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "proxynow.edge.runtime.worker",
                "--channel-fd",
                str(theirs.fileno()),
                "--priority",
                str(self._priority),
                pass_fds=(theirs.fileno(),),
            )
        finally:
            theirs.close()
        info.pid = info.process.pid
        info.ready = False
        info.started_at = loop.time()
        info.ready_future = loop.create_future()

        def make_channel() -> ch.Channel:
            channel = ch.Channel(
                lambda message: self._on_message(info, message),
                lambda: self._on_channel_closed(info, channel),
            )
            return channel

        _, info.channel = await loop.create_unix_connection(make_channel, sock=ours)
        info.channel.send(
            (
                ch.INIT,
                ch.PROTOCOL_VERSION,
                info.worker_id,
                self._static,
                self._addresses,
                self._full_blob(),
            )
        )
        info.channel.send((ch.TICKETS, self._ticket_key))
        if self._challenges is not None:
            info.channel.send((ch.CHALLENGES, self._challenges))
        if self._health is not None:
            info.channel.send((ch.HEALTH, self._health))
        info.version = self._snapshot.version - 1  # not serving anything yet
        info.awaiting = False

    async def _watch(self, info: WorkerInfo) -> None:
        """Restart the worker whenever it exits, until the supervisor stops."""
        backoff = _BACKOFF_FIRST
        while True:
            assert info.process is not None
            code = await info.process.wait()
            if self._stopping:
                return
            info.ready = False
            lived = asyncio.get_running_loop().time() - info.started_at
            log.error(
                "worker %d (pid %d) exited with %s; restarting it", info.worker_id, info.pid, code
            )
            if lived < _QUICK_DEATH:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
            else:
                backoff = _BACKOFF_FIRST
            info.restarts += 1
            try:
                await self._spawn(info)
                assert info.ready_future is not None
                await info.ready_future
            except (OSError, WorkerStartError) as exc:
                log.error("worker %d could not restart: %s", info.worker_id, exc)
            self._changed.set()

    async def _reap(self, info: WorkerInfo, deadline: float) -> None:
        process = info.process
        if process is None:
            return
        timeout = max(0.0, deadline - asyncio.get_running_loop().time())
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            log.error(
                "worker %d (pid %d) did not drain in time; killing it", info.worker_id, info.pid
            )
            _signal(info, signal.SIGKILL)
            await process.wait()
        if info.channel is not None:
            info.channel.close()
        info.ready = False

    def _drain_deadline(self) -> float:
        lifecycles = [ep.transport.life_cycle for ep in self._static.entry_points.values()]
        longest = max(
            (life.request_accept_grace_timeout + life.grace_time_out for life in lifecycles),
            default=0.0,
        )
        return asyncio.get_running_loop().time() + longest + _STOP_MARGIN

    # -- channel events

    def _on_message(self, info: WorkerInfo, message: ch.Message) -> None:
        kind = message[0]
        if kind == ch.READY:
            info.ready = True
            info.version = message[3]
            log.info("worker %d ready (pid %d, version %d)", info.worker_id, info.pid, info.version)
            self._push(info)
            _resolve(info.ready_future, None)
        elif kind == ch.SERVING:
            self._on_serving(info, message[1], message[2])
        elif kind == ch.METRICS:
            self._on_metrics(info, message[1], message[2])
        elif kind == ch.FATAL:
            log.error("%s", message[1])
            _resolve(info.ready_future, WorkerStartError(message[1]))
        self._changed.set()

    def _on_serving(self, info: WorkerInfo, version: int, stall: float) -> None:
        failed = version < self._snapshot.version and version <= info.version
        info.version = version
        info.awaiting = False
        info.applied += 1
        info.stalls.append(stall)
        info.stall_max = max(info.stall_max, stall)
        if not failed:  # a version the worker could not build waits for the next publish
            self._push(info)
        self._forget()

    def _on_metrics(self, info: WorkerInfo, request_id: int, data: Any) -> None:
        pending = self._collects.get(request_id)
        if pending is None:
            return
        done, replies = pending
        replies[info.worker_id] = data
        expected = sum(1 for w in self._workers if w.ready and w.channel is not None)
        if len(replies) >= expected and not done.done():
            done.set_result(None)

    def _on_channel_closed(self, info: WorkerInfo, channel: ch.Channel) -> None:
        if info.channel is not channel:
            return  # the channel of a worker that has been replaced already
        info.channel = None
        info.ready = False
        _resolve(info.ready_future, WorkerStartError(f"worker {info.worker_id} exited at start"))
        self._changed.set()


def _resolve(future: asyncio.Future[None] | None, outcome: BaseException | None) -> None:
    if future is None or future.done():
        return
    if outcome is None:
        future.set_result(None)
    else:
        future.set_exception(outcome)


def _signal(info: WorkerInfo, signum: int) -> None:
    if info.process is None or info.process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(info.pid, signum)
