"""Per-worker keep-alive pools of upstream connections (HTTP/1.1, and HTTP/2 ones).

One `UpstreamPool` per (scheme, host, port, servers transport): everything that makes two
connections not interchangeable is in the key (aiohttp's ConnectionKey habit). Idle
connections are reused last-in first-out (the warmest socket first, and the oldest ones age
out), validated lazily on checkout; the worker's tick closes those idle longer than
`idleConnTimeout`. A worker is one thread, so there are no locks and nothing is shared
between workers.

Dialing is the only place a coroutine runs per connection (`loop.create_connection` is
one); it is a named task kept in `PoolRegistry.dialing` until done, and the requester is
called back with the connection or a `ProxyError` (refused → 502, timeout → 504).

A pool whose key says `http2` also keeps its HTTP/2 connections (`mux`, edge/upstream/h2.py):
a request takes a stream on one with room before anything else, waits for a dial in
progress, or dials; over TLS the handshake's ALPN decides which kind a dial yields (and
once a server chose http/1.1, its pool dials HTTP/1.1 only). A pool without it pays one
test per request for this.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import cast

from mypy_extensions import mypyc_attr

from proxynow.edge.core.errors import BadGateway, GatewayTimeout, ProxyError
from proxynow.edge.upstream.connection import UpstreamConnection
from proxynow.edge.upstream.h2 import H2Stream, H2Upstream, Multiplexed
from proxynow.edge.upstream.tls import client_context
from proxynow.edge.upstream.transport import PoolKey

__all__ = ["ATTRIBUTES", "PoolRegistry", "Ready", "UpstreamPool"]

log = logging.getLogger(__name__)

Ready = Callable[[UpstreamConnection | ProxyError], None]

# A pool's attributes, all shared by a `WatchedPool` (health.py). Named here: a class
# compiled by mypyc has no `__slots__` to read them from.
ATTRIBUTES = ("idle", "key", "max_idle", "mux", "registry", "server_hostname", "ssl", "ssl_error")


@mypyc_attr(allow_interpreted_subclasses=True)  # health.WatchedPool subclasses it
class UpstreamPool:
    """Idle connections to one backend address with one transport configuration."""

    __slots__ = ATTRIBUTES

    def __init__(self, key: PoolKey, registry: PoolRegistry) -> None:
        self.key = key
        self.registry = registry
        self.idle: list[UpstreamConnection] = []
        self.max_idle = key.transport.max_idle_conns_per_host
        self.ssl: ssl.SSLContext | None = None
        self.server_hostname: str | None = None
        self.ssl_error = ""
        # HTTP/2 connections: h2c (known), or https with h2 offered (known at the handshake).
        self.mux: Multiplexed | None = None
        if key.http2:
            self.mux = Multiplexed(known=key.scheme != "https")
        if key.scheme == "https":
            self.server_hostname = key.transport.server_name or key.host
            try:
                self.ssl = client_context(key.transport, key.http2)
            except (OSError, ssl.SSLError, ValueError) as exc:
                # A graph build never fails on a transport: its requests get 502s.
                self.ssl_error = f"serversTransport {key.transport.name}: {exc}"
                log.error("%s", self.ssl_error)

    def acquire(self) -> UpstreamConnection | None:
        """A stream on an HTTP/2 connection with room, else the most recently released
        live connection, or None (then `connect`)."""
        mux = self.mux
        if mux is not None and mux.connections:
            stream = mux.acquire()
            if stream is not None:
                return stream
        idle = self.idle
        while idle:
            conn = idle.pop()
            if not conn.closed:
                conn.reused = True
                return conn
        return None

    def release(self, conn: UpstreamConnection, now: float) -> None:
        """Take a connection back after a complete exchange, or close it."""
        if conn.pool is not self and isinstance(conn, H2Stream):
            conn.pool.release(conn, now)  # an HTTP/2 stream: its connection retires it
            return
        conn.owner = None
        if conn.closed or len(self.idle) >= self.max_idle:
            conn.close()
            return
        conn.idle_since = now
        self.idle.append(conn)

    def forget(self, conn: UpstreamConnection) -> None:
        """An idle connection was closed by the backend."""
        if conn in self.idle:
            self.idle.remove(conn)

    def sweep(self, now: float) -> None:
        """Close connections idle for longer than idleConnTimeout (oldest are first)."""
        transport = self.key.transport
        timeout = transport.idle_conn_timeout
        if self.mux is not None:
            self.mux.sweep(now, timeout, transport.read_idle_timeout, transport.ping_timeout)
        if timeout <= 0:
            return
        idle = self.idle
        while idle and idle[0].idle_since + timeout <= now:
            idle.pop(0).close()

    def connect(self, ready: Ready) -> None:
        """Dial a new connection; `ready` gets it or the error."""
        self.registry.dial(self, ready)

    async def open(self) -> UpstreamConnection | H2Upstream:
        if self.ssl_error:
            raise ValueError(self.ssl_error)
        loop = asyncio.get_running_loop()
        key = self.key
        mux = self.mux
        factory: Callable[[], asyncio.Protocol]
        if mux is None:
            factory = lambda: UpstreamConnection(self)  # noqa: E731
        elif key.scheme != "https":
            factory = lambda: H2Upstream(key, mux)  # noqa: E731
        else:
            factory = lambda: _Negotiated(self, mux)  # noqa: E731
        _, protocol = await loop.create_connection(
            factory, key.host, key.port, ssl=self.ssl, server_hostname=self.server_hostname
        )
        if isinstance(protocol, _Negotiated):
            return protocol.chosen
        return cast(UpstreamConnection | H2Upstream, protocol)

    def close(self) -> None:
        while self.idle:
            self.idle.pop().close()
        if self.mux is not None:
            self.mux.close()


class _Negotiated(asyncio.Protocol):
    """A TLS connection whose handshake's ALPN says what it carries: HTTP/2 (`h2`) or
    HTTP/1.1; the protocol it becomes takes the transport before any byte is read."""

    __slots__ = ("chosen", "mux", "pool")

    def __init__(self, pool: UpstreamPool, mux: Multiplexed) -> None:
        self.pool = pool
        self.mux = mux
        self.chosen: UpstreamConnection | H2Upstream = UpstreamConnection(pool)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        ssl_object = transport.get_extra_info("ssl_object")
        alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        if alpn == "h2":
            self.chosen = H2Upstream(self.pool.key, self.mux)
        transport.set_protocol(self.chosen)
        self.chosen.connection_made(transport)


class PoolRegistry:
    """The worker's pools by key, and the dials in progress."""

    __slots__ = ("dialing", "pools")

    def __init__(self) -> None:
        self.pools: dict[PoolKey, UpstreamPool] = {}
        self.dialing: set[asyncio.Task[None]] = set()

    def get(self, key: PoolKey) -> UpstreamPool:
        pool = self.pools.get(key)
        if pool is None:
            pool = self.pools[key] = UpstreamPool(key, self)
        return pool

    def sweep(self, now: float) -> None:
        for pool in self.pools.values():
            if pool.idle or pool.mux is not None:
                pool.sweep(now)

    def dial(self, pool: UpstreamPool, ready: Ready) -> None:
        mux = pool.mux
        if mux is not None and mux.wait(ready):
            return  # a connection being dialed will have a stream for it
        key = pool.key
        task = asyncio.get_running_loop().create_task(
            _dial(pool, ready), name=f"dial {key.scheme}://{key.host}:{key.port}"
        )
        self.dialing.add(task)
        task.add_done_callback(self.dialing.discard)

    def close(self) -> None:
        for pool in self.pools.values():
            pool.close()
        for task in self.dialing:
            task.cancel()


async def _dial(pool: UpstreamPool, ready: Ready) -> None:
    timeout = pool.key.transport.dial_timeout
    result: UpstreamConnection | H2Upstream | ProxyError
    try:
        async with asyncio.timeout(timeout if timeout > 0 else None):
            result = await pool.open()
    except TimeoutError:
        result = GatewayTimeout("dial timeout")
    except (OSError, ssl.SSLError, ValueError) as exc:
        result = BadGateway(str(exc))
    mux = pool.mux
    if mux is None:
        assert not isinstance(result, H2Upstream)
        ready(result)
        return
    if isinstance(result, H2Upstream) and not result.settings_seen:
        if result.closed:  # lost meanwhile: connection_lost found no callback
            _handed_out(pool, mux, BadGateway("the HTTP/2 backend closed"), ready)
        else:
            result.settled = lambda settled: _handed_out(pool, mux, settled, ready)
        return
    _handed_out(pool, mux, result, ready)


def _handed_out(
    pool: UpstreamPool,
    mux: Multiplexed,
    result: UpstreamConnection | H2Upstream | ProxyError,
    ready: Ready,
) -> None:
    for requester in mux.dialed(result, ready):
        pool.registry.dial(pool, requester)
