"""A callback-driven HTTP/1.1 subrequest on the upstream pools (forwardAuth, error pages).

A middleware that must ask another server before it can answer (forwardAuth's auth server,
an errors page) sends one request with `fetch` and is called back once with a `Fetched`
response or a `FetchError`. It runs on the same machinery as a proxied request and costs no
task per request (../shared/DESIGN.md, the hot path): an idle keep-alive connection from the
pool is reused, or the pool dials one (the dial is the pool's named task, as for any
backend); the `Subrequest` is the connection's `Owner` while the request is in flight and
hears the response from its parser callbacks.

Bounded whatever the other server does: one loop timer ends the whole exchange after
`timeout` seconds (dial included; the connection is dropped); the body is held up to
`limit` bytes, beyond which the connection is dropped and the caller hears `TOO_LARGE`;
the head is bounded by the connection itself (the transport's maxResponseHeaderBytes and
maxResponseHeaderCount: a larger one ends it, and the caller hears `LOST`). A connection
idle in the pool that turns out closed when reused is retried once on a new one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from proxynow.edge.core.errors import ProxyError
from proxynow.edge.message.headers import ResponseHead
from proxynow.edge.upstream.connection import UpstreamConnection
from proxynow.edge.upstream.drain import Drain
from proxynow.edge.upstream.pool import UpstreamPool

__all__ = [
    "LOST",
    "REFUSED",
    "TIMEOUT",
    "TOO_LARGE",
    "FetchError",
    "Fetched",
    "Subrequest",
    "fetch",
]


@dataclass(frozen=True, slots=True)
class Fetched:
    """A complete response: status, every header (framing ones included), the body."""

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes


@dataclass(frozen=True, slots=True)
class FetchError:
    """Why no response came: one of the constants below, and a detail for logs."""

    kind: str
    detail: str = ""


TIMEOUT = "timeout"
REFUSED = "refused"  # the dial failed
LOST = "lost"  # the connection ended, or the response was refused, before its end
TOO_LARGE = "too large"

Done = Callable[[Fetched | FetchError], None]
_DISCARD = Drain(reusable=False)  # the owner of a connection given up mid-response


def fetch(
    pool: UpstreamPool,
    data: bytes,
    head_only: bool,
    limit: int,
    timeout: float,
    done: Done,
) -> Subrequest:
    """Send `data` (a whole HTTP/1.1 request) to `pool`'s server; `done` is called once,
    from a later callback, with the response or the error."""
    subrequest = Subrequest(pool, data, head_only, limit, done)
    subrequest.start(asyncio.get_running_loop(), timeout)
    return subrequest


class Subrequest:
    """One subrequest in flight: the `Owner` of its connection (edge/upstream/connection.py)."""

    __slots__ = (
        "body",
        "conn",
        "data",
        "done",
        "finished",
        "head_only",
        "headers",
        "limit",
        "loop",
        "pool",
        "retried",
        "size",
        "status",
        "timer",
    )

    def __init__(self, pool: UpstreamPool, data: bytes, head_only: bool, limit: int, done: Done):
        self.pool = pool
        self.data = data
        self.head_only = head_only
        self.limit = limit
        self.done = done
        self.conn: UpstreamConnection | None = None
        self.status = 0
        self.headers: tuple[tuple[bytes, bytes], ...] = ()
        self.body: list[bytes] = []
        self.size = 0
        self.finished = False
        self.retried = False
        self.timer: asyncio.TimerHandle | None = None

    def start(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self.loop = loop
        if timeout > 0:
            self.timer = loop.call_later(timeout, self._expired)
        conn = self.pool.acquire()
        if conn is not None:
            self._send(conn)
        else:
            self.pool.connect(self._ready)

    def cancel(self) -> None:
        """The caller no longer wants the answer (its client left): drop the connection."""
        self._end(None)

    # -- the exchange

    def _ready(self, result: UpstreamConnection | ProxyError) -> None:
        if isinstance(result, ProxyError):
            self._end(FetchError(REFUSED, str(result)))
        elif self.finished:
            self.pool.release(result, self.loop.time())  # timed out meanwhile: keep it
        else:
            self._send(result)

    def _send(self, conn: UpstreamConnection) -> None:
        self.conn = conn
        conn.send(self, self.data, self.head_only)

    def _expired(self) -> None:
        self.timer = None
        self._end(FetchError(TIMEOUT, "no complete response in time"))

    def _end(self, result: Fetched | FetchError | None, reusable: bool = False) -> None:
        """Once: the connection back to the pool (a clean end) or dropped, then `done`."""
        if self.finished:
            return
        self.finished = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        conn, self.conn = self.conn, None
        if conn is not None:
            # Not None: the parser may still report this response's end (connection.py).
            conn.owner = _DISCARD
            if reusable:
                self.pool.release(conn, self.loop.time())
            else:
                conn.abort()
        if result is not None:
            self.done(result)

    # -- Owner: what the connection reports

    def upstream_head(self, conn: UpstreamConnection, status: int, head: ResponseHead) -> None:
        if status >= 200:  # interim responses are skipped; the head object is reused
            self.status = status
            self.headers = tuple(head.items())

    def upstream_body(self, data: bytes) -> None:
        if self.finished:
            return
        self.size += len(data)
        if self.size > self.limit:
            self._end(FetchError(TOO_LARGE, f"response body over {self.limit} bytes"))
            return
        self.body.append(data)

    def upstream_done(self, conn: UpstreamConnection, reusable: bool) -> None:
        if conn is self.conn:
            self._end(Fetched(self.status, self.headers, b"".join(self.body)), reusable)

    def upstream_lost(self, conn: UpstreamConnection) -> None:
        if conn is not self.conn or self.finished:
            return
        if self.status and not (conn.head.content_length or conn.head.te or self.head_only):
            self.upstream_done(conn, False)  # a close-delimited body: EOF is its end
        elif not self.status and not conn.got_bytes and conn.reused and not self.retried:
            self.retried = True  # a kept-alive connection the server had closed
            self.conn = None
            self.pool.connect(self._ready)
        else:
            self._end(FetchError(LOST, "the connection ended before the response did"))

    def upstream_upgraded(self, conn: UpstreamConnection, leftover: bytes) -> None:
        self._end(FetchError(LOST, "the server switched protocols"))

    def upstream_failed(self, conn: UpstreamConnection, exc: BaseException) -> None:
        self._end(FetchError(LOST, repr(exc)))

    def upstream_pause(self) -> None:
        """The request is small: nothing to hold back."""

    def upstream_resume(self) -> None:
        """See `upstream_pause`."""
