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
request): every inherited step that sets `deadline` is followed by `_clamp`, which lowers it
to `write_by` and keeps the deadline it replaced in `held`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from proxynow.edge.http1.protocol import INF, HttpProxy

if TYPE_CHECKING:
    from proxynow.edge.http.exchange import Exchange
    from proxynow.edge.message.headers import ResponseHead
    from proxynow.edge.upstream.connection import UpstreamConnection

__all__ = ["LimitedHttpProxy"]


class LimitedHttpProxy(HttpProxy):
    """An `HttpProxy` on an entrypoint with writeTimeout or keep-alive limits."""

    __slots__ = ("born", "held", "served", "write_by")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.born = self.loop.time()
        self.served = 0
        self.write_by = INF  # when the current response must have been written
        self.held = INF  # the deadline `_clamp` lowered to `write_by`
        super().connection_made(transport)

    def on_deadline(self, now: float) -> None:
        if now >= self.write_by:
            self.write_by = INF
            if self.active is not None or self.transport.get_write_buffer_size():
                self.deadline = INF
                # abort, not close: close would wait for a client that does not read.
                self.transport.abort()
                return
            self.deadline = self.held  # the last response left in time
            if self.held > now:
                return
        super().on_deadline(now)
        self._clamp()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._clamp()

    def _start(self, ex: Exchange) -> None:
        now = self.loop.time()
        ep = self.ep
        self.served += 1
        limit = ep.keep_alive_max_requests
        if (limit and self.served >= limit) or (
            ep.keep_alive_max_time and now - self.born > ep.keep_alive_max_time
        ):
            ex.keep_alive = False  # `Connection: close` on its response, then close
        if ep.write_timeout:
            own = now + ep.write_timeout
            if not self.transport.get_write_buffer_size():
                if self.deadline == self.write_by != INF:
                    self.deadline = self.held  # the earlier responses are out: unclamp
                self.write_by = own
            else:  # an earlier response still unwritten keeps its own, earlier deadline
                self.write_by = min(self.write_by, own)
        super()._start(ex)
        self._clamp()

    def _await_response(self, ex: Exchange) -> None:
        super()._await_response(ex)
        self._clamp()

    def upstream_head(self, conn: UpstreamConnection, status: int, head: ResponseHead) -> None:
        super().upstream_head(conn, status, head)
        self._clamp()

    def upstream_upgraded(self, conn: UpstreamConnection, leftover: bytes) -> None:
        self.write_by = INF
        super().upstream_upgraded(conn, leftover)

    def _finish(self, ex: Exchange, now: float) -> None:
        if not self.transport.get_write_buffer_size():
            self.write_by = INF  # written: the next request gets its own deadline
        super()._finish(ex, now)
        self._clamp()

    def _clamp(self) -> None:
        if self.write_by < self.deadline:
            self.held = self.deadline
            self.deadline = self.write_by
