"""The message channel between the control plane and one worker (a unix socket pair).

Frames are a 4-byte big-endian length followed by a pickled tuple whose first item is
the message kind. Both ends trust each other (same program, same user), so pickle is
fine. The control plane must never be blocked by a worker that reads slowly: `send`
never waits, and `send_latest` keeps at most one pending message per kind while the
socket's write buffer is above its high-water mark, so a stuck worker costs one
snapshot of memory, not a queue of them. The worker always ends up with the newest.

Messages, control plane → worker:
    (INIT, PROTOCOL_VERSION, worker_id, static_config, snapshot_blob | None)
    (SNAPSHOT, version, blob)            blob = a pickled Snapshot or, once the worker
                                         serves a version, a SnapshotDelta against it;
                                         one in flight per worker, the next on SERVING
    (COLLECT, request_id)
    (CHALLENGES, challenge_set)          the pending ACME challenges (ipc/challenges.py)
    (HEALTH, health_set)                 the servers active health checks found down
                                         (edge/upstream/health.py); only sent when it changes
    (TICKETS, key)                       the session-ticket key all workers share
                                         (edge/tls/tickets.py); at start and when drawn anew
Messages, worker → control plane:
    (READY, worker_id, pid, version)     listeners bound, graph built
    (SERVING, version, stall_seconds)    a new graph is in place, built in stall_seconds
    (METRICS, request_id, data)
    (FATAL, message)                     the worker cannot start (e.g. address in use)
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import struct
from collections.abc import Callable
from typing import Any, cast

__all__ = [
    "CHALLENGES",
    "COLLECT",
    "FATAL",
    "HEALTH",
    "INIT",
    "METRICS",
    "PROTOCOL_VERSION",
    "READY",
    "SERVING",
    "SNAPSHOT",
    "TICKETS",
    "Channel",
    "Message",
]

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 1

INIT = "init"
SNAPSHOT = "snapshot"
COLLECT = "collect"
CHALLENGES = "challenges"
HEALTH = "health"
TICKETS = "tickets"
READY = "ready"
SERVING = "serving"
METRICS = "metrics"
FATAL = "fatal"

Message = tuple[Any, ...]

_LENGTH = struct.Struct("!I")
# Above this many buffered bytes the peer is "slow": replaceable messages wait, newest wins.
_HIGH_WATER = 256 * 1024


class Channel(asyncio.Protocol):
    """One end of the channel: decodes frames into `on_message`, encodes `send` calls."""

    def __init__(
        self,
        on_message: Callable[[Message], None],
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._on_message = on_message
        self._on_close = on_close
        self._transport: asyncio.WriteTransport | None = None
        self._buffer = bytearray()
        self._writable = True
        self._pending: dict[str, Message] = {}
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, base: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing asyncio's.
        transport = cast(asyncio.WriteTransport, base)
        self._transport = transport
        transport.set_write_buffer_limits(high=_HIGH_WATER)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._pending.clear()
        if not self.closed.done():
            self.closed.set_result(None)
        if self._on_close is not None:
            self._on_close()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(self._buffer)
            end = _LENGTH.size + length
            if len(self._buffer) < end:
                return
            frame = bytes(self._buffer[_LENGTH.size : end])
            del self._buffer[:end]
            self._on_message(pickle.loads(frame))

    def pause_writing(self) -> None:
        self._writable = False

    def resume_writing(self) -> None:
        self._writable = True
        pending, self._pending = self._pending, {}
        for message in pending.values():
            self._write(message)

    def send(self, message: Message) -> None:
        """Queue `message` for the peer (never blocks; dropped if the channel is closed)."""
        self._write(message)

    def send_latest(self, message: Message) -> None:
        """Like `send`, but while the peer is slow only the newest message of its kind waits."""
        if self._writable:
            self._write(message)
        else:
            self._pending[message[0]] = message

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _write(self, message: Message) -> None:
        if self._transport is None or self._transport.is_closing():
            return
        payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        self._transport.writelines((_LENGTH.pack(len(payload)), payload))
