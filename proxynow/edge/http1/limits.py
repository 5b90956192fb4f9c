"""Entrypoint connection limits: `respondingTimeouts.writeTimeout`, `keepAliveMaxRequests`,
`keepAliveMaxTime`.

`LimitedHttpProxy` is the `HttpProxy` an entrypoint gets when any of the three is set; the
factory chooses the class once per entrypoint, so with the defaults (all 0) a request pays
nothing for them, not even a flag test.

Traefik v3.7 semantics:

- keep-alive limits (Traefik's `newKeepAliveMiddleware`): when a request is dispatched, it
  is counted and the connection's age is read; the request that reaches
  `keepAliveMaxRequests`, or the first one dispatched once the connection is older than
  `keepAliveMaxTime`, is answered with `Connection: close` and the connection closes after
  that response (pipelined requests behind it are dropped, as Go's server does).
- writeTimeout (Go's `http.Server.WriteTimeout`): the response must be written within
  `writeTimeout` of the request head being read, else the connection is cut. Go only
  notices at its next failing write; proxynow cuts at the deadline (the worker's tick), even
  when no response byte was sent yet, so a slow backend or a client that stops reading holds
  nothing past it. Bytes still in the transport's buffer when the response is complete are
  not written yet: the deadline stays armed until they leave. After an Upgrade the tunnel has
  no write deadline (Go clears a hijacked connection's deadlines).

The deadline lives in the connection's `deadline` (the worker's tick enforces it, no timer per
request), armed by `HttpProxy._enter` on every phase change; the override of `_enter` is the
only place these limits act on a request: entering BODY or AWAITING from IDLE or HEAD is a
request dispatched (counted, its write deadline set), entering TUNNEL clears the write
deadline, entering a phase with nothing in flight clears it once the response has left, and
after every change the deadline is lowered to `write_by` (the one it replaced kept in
`held_deadline`). `on_deadline` says what the write deadline means when it passes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proxynow.edge.http1.protocol import AWAITING, BODY, CLOSING, HEAD, IDLE, INF, TUNNEL, HttpProxy

if TYPE_CHECKING:
    from proxynow.edge.core.metrics import EntryPointStats
    from proxynow.edge.graph.state import WorkerState
    from proxynow.edge.http.exchange import EntryPointRuntime
    from proxynow.edge.http.peers import PeerCache

__all__ = ["LimitedHttpProxy"]


class LimitedHttpProxy(HttpProxy):
    """An `HttpProxy` on an entrypoint with writeTimeout or keep-alive limits."""

    __slots__ = ("born", "held_deadline", "served", "write_by")

    def __init__(
        self,
        state: WorkerState,
        entrypoint: EntryPointRuntime,
        stats: EntryPointStats,
        peers: PeerCache,
    ) -> None:
        super().__init__(state, entrypoint, stats, peers)
        self.born = self.loop.time()
        self.served = 0
        self.write_by = INF  # when the current response must have been written
        self.held_deadline = INF  # the deadline `_enter` lowered to `write_by`

    def _enter(self, phase: int, now: float) -> None:
        if self.phase <= HEAD and phase in (BODY, AWAITING):
            self._dispatched()
        elif phase == TUNNEL:
            self.write_by = INF  # Go clears a hijacked connection's deadlines
        elif phase in (IDLE, HEAD, CLOSING) and not self.transport.get_write_buffer_size():
            self.write_by = INF  # written: the next request gets its own deadline
        super()._enter(phase, now)
        if self.write_by < self.deadline:
            self.held_deadline = self.deadline
            self.deadline = self.write_by

    def _dispatched(self) -> None:
        """A request is dispatched: the keep-alive limits, then its write deadline."""
        ex = self.active
        assert ex is not None
        now = self.loop.time()
        entrypoint = self.entrypoint
        self.served += 1
        limit = entrypoint.keep_alive_max_requests
        if (limit and self.served >= limit) or (
            entrypoint.keep_alive_max_time and now - self.born > entrypoint.keep_alive_max_time
        ):
            ex.keep_alive = False  # `Connection: close` on its response, then close
        if entrypoint.write_timeout:
            own = now + entrypoint.write_timeout
            if not self.transport.get_write_buffer_size():
                if self.deadline == self.write_by != INF:
                    self.deadline = self.held_deadline  # the earlier responses are out
                self.write_by = own
            else:  # an earlier response still unwritten keeps its own, earlier deadline
                self.write_by = min(self.write_by, own)

    def on_deadline(self, now: float) -> None:
        if now >= self.write_by:
            self.write_by = INF
            if self.active is not None or self.transport.get_write_buffer_size():
                self.deadline = INF
                # abort, not close: close would wait for a client that does not read.
                self.transport.abort()
                return
            self.deadline = self.held_deadline  # the last response left in time
            if self.held_deadline > now:
                return
        super().on_deadline(now)
