"""The live stream: `GET <basePath>/api/stream`, Server-Sent Events for the dashboard.

Beyond Traefik's API (docs/dashboard.md gives the format). Two events:

- `status`: `{"overview", "changed": [{"kind", "name", "item"}], "removed": [{"kind",
  "name"}], "resync"}`, sent to a client when it connects (overview only) and to every
  client when a new snapshot or health set changes the status or errors of a router,
  service or middleware (`kind` is `http/routers`...). Past `MAX_CHANGED` changes only
  `resync: true` is sent: the client fetches the lists again;
- `rates`: once per second, what the rate source (proxynow/observe/rates.py, wired by
  the control plane) measured: per router, service and entrypoint, requests, rps, error
  shares and latency.

Cost: the loop that samples the workers runs only while at least one client is
connected; with none, a new snapshot costs one `Event.set`. Bounds: at most
`max_clients` clients (the next one gets 503), and each has a queue of `QUEUE_FRAMES`
frames; a client that does not read fast enough to keep its queue from filling is
dropped (its connection aborted) instead of being buffered for.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from aiohttp import web

from proxynow.api.shapes import KINDS, View

__all__ = [
    "MAX_CHANGED",
    "QUEUE_FRAMES",
    "RateSource",
    "StreamHub",
    "digest",
    "sse",
    "status_frame",
]

log = logging.getLogger(__name__)

QUEUE_FRAMES = 8
MAX_CHANGED = 100
DEFAULT_MAX_CLIENTS = 32
# Tells the browser how long to wait before reconnecting after a drop (milliseconds).
_RETRY = b"retry: 2000\n\n"
_CLOSE = b""

Digest = dict[tuple[str, str], tuple[str, tuple[str, ...]]]  # (kind, name) -> (status, errors)


class RateSource(Protocol):
    """What the stream needs from the rates (proxynow/observe/rates.py::RateSampler)."""

    def reset(self) -> None: ...
    async def sample(self) -> dict[str, Any] | None: ...


def sse(event: str, data: Any) -> bytes:
    """One event in the text/event-stream format: JSON on one `data:` line."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"event: {event}\ndata: {text}\n\n".encode()


def digest(view: View) -> Digest:
    """What a status event compares: each object's status and errors."""
    found: Digest = {}
    for protocol, section in KINDS:
        kind = f"{protocol}/{section}"
        for name, item in view.items[protocol, section].items():
            found[kind, name] = (item["status"], tuple(item.get("error", ())))
    return found


def status_frame(before: Digest, view: View) -> tuple[Digest, dict[str, Any] | None]:
    """The new digest, and the `status` event's data if anything changed."""
    after = digest(view)
    changed = [key for key, value in after.items() if before.get(key) != value]
    removed = [key for key in before if key not in after]
    if not changed and not removed:
        return after, None
    frame: dict[str, Any] = {"overview": view.overview, "changed": [], "removed": []}
    if len(changed) + len(removed) > MAX_CHANGED:
        frame["resync"] = True
        return after, frame
    for kind, name in changed:
        protocol, section = kind.split("/")
        item = view.items[protocol, section][name]
        frame["changed"].append({"kind": kind, "name": name, "item": item})
    frame["removed"] = [{"kind": kind, "name": name} for kind, name in removed]
    return after, frame


class _Client:
    __slots__ = ("dropped", "queue", "transport")

    def __init__(self, transport: asyncio.BaseTransport | None) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(QUEUE_FRAMES)
        self.transport = transport
        self.dropped = False

    def abort(self) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but all have abort().
        abort = getattr(self.transport, "abort", None)
        if abort is not None:
            abort()


class StreamHub:
    """The stream's clients and the loop that feeds them while there are some."""

    def __init__(
        self,
        view: Callable[[], Awaitable[View]],
        max_clients: int = DEFAULT_MAX_CLIENTS,
        interval: float = 1.0,
    ) -> None:
        self._view = view
        self.max_clients = max_clients
        self._interval = interval
        self.rates: RateSource | None = None
        self._clients: set[_Client] = set()
        self._dirty = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0  # slow clients dropped since start (tests and logs read it)

    @property
    def clients(self) -> int:
        return len(self._clients)

    @property
    def running(self) -> bool:
        """Whether the sampling loop exists (never while no client is connected)."""
        return self._task is not None and not self._task.done()

    def changed(self) -> None:
        """A new snapshot or health set: one flag and a wake-up, nothing computed here."""
        self._dirty = True
        if self._clients:
            self._wake.set()

    async def serve(self, request: web.Request) -> web.StreamResponse:
        if len(self._clients) >= self.max_clients:
            body = json.dumps({"message": "too many stream clients"}).encode() + b"\n"
            return web.Response(status=503, body=body, content_type="application/json")
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",  # tells proxies in front not to buffer it
                "Server": "proxynow",
            }
        )
        await response.prepare(request)
        client = _Client(request.transport)
        view = await self._view()
        client.queue.put_nowait(_RETRY + sse("status", {"overview": view.overview}))
        self._clients.add(client)
        self._start()
        try:
            await self._pump(client, response)
        finally:
            self._clients.discard(client)
            self._wake.set()  # the loop ends at once when this was the last client
        return response

    async def _pump(self, client: _Client, response: web.StreamResponse) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            while (frame := await client.queue.get()) != _CLOSE:
                await response.write(frame)  # waits while the client's socket is full

    async def close(self) -> None:
        """Let every client's response end, and stop the loop."""
        for client in list(self._clients):
            with contextlib.suppress(asyncio.QueueFull):
                client.queue.put_nowait(_CLOSE)
            if client.queue.full():
                client.abort()
        self._clients.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _start(self) -> None:
        if self.running:
            return  # a loop suspended in an await checks the clients again before ending
        self._task = asyncio.get_running_loop().create_task(self._run(), name="api stream")
        self._task.add_done_callback(_log_failure)

    def _broadcast(self, frame: bytes) -> None:
        for client in list(self._clients):
            try:
                client.queue.put_nowait(frame)
            except asyncio.QueueFull:
                self._drop(client)

    def _drop(self, client: _Client) -> None:
        """A client too slow for its queue: abort its connection, its handler ends."""
        self._clients.discard(client)
        self.dropped += 1
        client.dropped = True
        log.info("api stream: dropped a client that did not keep up")
        client.abort()
        with contextlib.suppress(asyncio.QueueFull):
            client.queue.put_nowait(_CLOSE)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        self._dirty = False
        known = digest(await self._view())
        if self.rates is not None:
            self.rates.reset()
            await self.rates.sample()  # the baseline the first frame is measured from
        next_tick = loop.time() + self._interval
        while self._clients:
            self._wake.clear()
            wait = next_tick - loop.time()
            if wait > 0 and not self._dirty:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
            if not self._clients:
                break
            if self._dirty:
                self._dirty = False
                known, frame = status_frame(known, await self._view())
                if frame is not None:
                    self._broadcast(sse("status", frame))
            if loop.time() >= next_tick and self._clients:
                next_tick = max(next_tick + self._interval, loop.time())  # skip missed ticks
                await self._send_rates()

    async def _send_rates(self) -> None:
        if self.rates is None:
            return
        frame = await self.rates.sample()
        if frame is not None and self._clients:
            self._broadcast(sse("rates", frame))


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("api stream stopped", exc_info=task.exception())


def parse_events(text: str) -> list[tuple[str, Mapping[str, Any]]]:
    """The (event, data) pairs of an event-stream text (for tests and tools)."""
    events: list[tuple[str, Mapping[str, Any]]] = []
    for block in text.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.split("\n") if ": " in line and line[0] != ":"
        )
        if "event" in fields and "data" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events
