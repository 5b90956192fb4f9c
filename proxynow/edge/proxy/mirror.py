"""Copies of a request for the mirrors of a `mirroring` service, as Traefik sends them.

When a request goes to a server behind a mirroring service (`Server.mirroring`), `keep`
asks the service which mirrors get this one (Traefik's counting: a mirror at `percent`
gets a copy while it has had fewer than `percent`% of the requests) and, when some do,
keeps a copy of the body as it is sent to the main server. When the main exchange has been
relayed to its end, `send` gives each chosen mirror its copy, built for the mirror's own
server exactly as the main request was (dispatch's `attach`), and throws the answer away.
A request the client abandoned is not mirrored, as in Traefik.

Bounds: a body larger than `maxBodySize` is not copied (Traefik's rule; with -1, Traefik's
"no limit", the copy stops at `MAX_BODY` of edge/http/mirror_copy.py), and all the copies
a worker holds at once at `MAX_HELD` there (a copy that does not fit is skipped; the main
request goes on); a mirror with
`MIRROR_IN_FLIGHT` copies not answered yet gets no more until one ends; an unanswered copy
is cut after `TIMEOUT` seconds. What is skipped is counted in `Mirroring.skipped`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from proxynow.edge.core.errors import ProxyError
from proxynow.edge.http.exchange import Exchange
from proxynow.edge.http.mirror_copy import MirrorCopy
from proxynow.edge.upstream.connection import UpstreamConnection
from proxynow.edge.upstream.server import MIRROR_IN_FLIGHT, Mirror, Mirroring, Server

if TYPE_CHECKING:
    from proxynow.edge.message.headers import ForwardContext, RequestHead, ResponseHead
    from proxynow.edge.proxy.downstream import Sender

__all__ = ["TIMEOUT", "keep", "send"]

TIMEOUT = 30.0

Attach = Callable[["Sender", Exchange, Server, UpstreamConnection], None]


def keep(exchange: Exchange, mirroring: Mirroring) -> None:
    """The request goes to a mirrored server: keep a copy if some mirror gets this one."""
    if exchange.upgrade:
        return  # a tunnel is not mirrored
    chosen = mirroring.chosen()
    if chosen:
        exchange.mirror = MirrorCopy(mirroring, chosen, exchange.pending)


def send(downstream: Sender, exchange: Exchange, attach: Attach) -> None:
    """The main exchange was relayed to its end: send the chosen mirrors their copies."""
    kept = exchange.mirror
    assert kept is not None
    exchange.mirror = None
    mirroring = kept.mirroring
    if kept.body is None:
        mirroring.skipped += len(kept.chosen)
        return
    kept.release()  # the clones below take the body over: it is on its way out
    loop = asyncio.get_running_loop()
    for mirror in kept.chosen:
        server = mirror.pick()
        if server is None:
            continue
        if mirror.in_flight >= MIRROR_IN_FLIGHT:
            mirroring.skipped += 1
            continue
        mirror.in_flight += 1
        sink = _Sink(mirror, downstream.forward_context, loop)
        clone = _clone(exchange, kept)
        conn = server.pool.acquire()
        if conn is not None:
            attach(sink, clone, server, conn)
        else:
            server.pool.connect(sink.ready(clone, server, attach))


def _clone(exchange: Exchange, kept: MirrorCopy) -> Exchange:
    """The request as a mirror gets it: the same head (without its body's framing when
    `mirrorBody` is false) and the body kept."""
    with_body = kept.mirroring.mirror_body
    head = exchange.head if with_body else _bodiless(exchange.head)
    clone = Exchange(head, exchange.start, exchange.client_ip)
    clone.method_b = exchange.method_b
    clone.target = exchange.target
    clone.host = exchange.host
    clone.forwarded = exchange.forwarded
    clone.complete = True
    if with_body:
        clone.chunked = exchange.chunked
        if kept.body:
            clone.pending = [b"".join(kept.body)]
    return clone


def _bodiless(head: RequestHead) -> RequestHead:
    bare = head.copy()
    bare.lengths = 0
    bare.content_length = b""
    return bare


class _Sink:
    """The client side of one mirror's copy: the answer is read and dropped, the
    connection goes back to its pool, and the mirror's count of copies in flight down."""

    __slots__ = ("conn", "forward_context", "loop", "mirror", "timer")

    def __init__(
        self, mirror: Mirror, context: ForwardContext, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.mirror: Mirror | None = mirror
        self.forward_context = context
        self.loop = loop
        self.conn: UpstreamConnection | None = None
        self.timer: asyncio.TimerHandle | None = None

    def ready(
        self, clone: Exchange, server: Server, attach: Attach
    ) -> Callable[[UpstreamConnection | ProxyError], None]:
        def dialled(result: UpstreamConnection | ProxyError) -> None:
            if isinstance(result, ProxyError):
                self._end()
            else:
                attach(self, clone, server, result)

        return dialled

    def attached(self, exchange: Exchange, conn: UpstreamConnection) -> None:
        self.conn = conn
        self.timer = self.loop.call_later(TIMEOUT, self._expire)

    def upstream_head(self, conn: UpstreamConnection, status: int, head: ResponseHead) -> None:
        pass

    def upstream_body(self, data: bytes) -> None:
        pass

    def upstream_done(self, conn: UpstreamConnection, reusable: bool) -> None:
        self._end()
        if reusable:
            conn.pool.release(conn, self.loop.time())
        else:
            conn.close()

    def upstream_lost(self, conn: UpstreamConnection) -> None:
        self._end()

    def upstream_upgraded(self, conn: UpstreamConnection, leftover: bytes) -> None:
        self._end()
        conn.close()

    def upstream_failed(self, conn: UpstreamConnection, exc: BaseException) -> None:
        self._end()
        conn.abort()

    def upstream_pause(self) -> None:
        pass

    def upstream_resume(self) -> None:
        pass

    def _expire(self) -> None:
        self.timer = None
        conn, self.conn = self.conn, None
        self._end()
        if conn is not None:
            conn.abort()

    def _end(self) -> None:
        mirror, self.mirror = self.mirror, None
        if mirror is not None:
            mirror.in_flight -= 1
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
