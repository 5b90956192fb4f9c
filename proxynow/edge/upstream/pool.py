"""Per-worker keep-alive pools of upstream HTTP/1.1 connections.

One `UpstreamPool` per (scheme, host, port, servers transport): everything that makes two
connections not interchangeable is in the key (aiohttp's ConnectionKey habit). Idle
connections are reused last-in first-out (the warmest socket first, and the oldest ones age
out), validated lazily on checkout; the worker's tick closes those idle longer than
`idleConnTimeout`. A worker is one thread, so there are no locks and nothing is shared
between workers.

Dialing is the only place a coroutine runs per connection (`loop.create_connection` is
one); it is a named task kept in `PoolRegistry.dialing` until done, and the requester is
called back with the connection or a `ProxyError` (refused → 502, timeout → 504).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable

from mypy_extensions import mypyc_attr

from proxynow.edge.core.errors import BadGateway, GatewayTimeout, ProxyError
from proxynow.edge.upstream.connection import UpstreamConnection
from proxynow.edge.upstream.tls import client_context
from proxynow.edge.upstream.transport import PoolKey

__all__ = ["ATTRIBUTES", "PoolRegistry", "Ready", "UpstreamPool"]

log = logging.getLogger(__name__)

Ready = Callable[[UpstreamConnection | ProxyError], None]

# A pool's attributes, all shared by a `WatchedPool` (health.py). Named here: a class
# compiled by mypyc has no `__slots__` to read them from.
ATTRIBUTES = ("idle", "key", "max_idle", "registry", "server_hostname", "ssl", "ssl_error")


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
        if key.scheme == "https":
            self.server_hostname = key.transport.server_name or key.host
            try:
                self.ssl = client_context(key.transport)
            except (OSError, ssl.SSLError, ValueError) as exc:
                # A graph build never fails on a transport: its requests get 502s.
                self.ssl_error = f"serversTransport {key.transport.name}: {exc}"
                log.error("%s", self.ssl_error)

    def acquire(self) -> UpstreamConnection | None:
        """The most recently released live connection, or None (then `connect`)."""
        idle = self.idle
        while idle:
            conn = idle.pop()
            if not conn.closed:
                conn.reused = True
                return conn
        return None

    def release(self, conn: UpstreamConnection, now: float) -> None:
        """Take a connection back after a complete exchange, or close it."""
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
        timeout = self.key.transport.idle_conn_timeout
        if timeout <= 0:
            return
        idle = self.idle
        while idle and idle[0].idle_since + timeout <= now:
            idle.pop(0).close()

    def connect(self, ready: Ready) -> None:
        """Dial a new connection; `ready` gets it or the error."""
        self.registry.dial(self, ready)

    async def open(self) -> UpstreamConnection:
        if self.ssl_error:
            raise ValueError(self.ssl_error)
        loop = asyncio.get_running_loop()
        key = self.key
        _, conn = await loop.create_connection(
            lambda: UpstreamConnection(self),
            key.host,
            key.port,
            ssl=self.ssl,
            server_hostname=self.server_hostname,
        )
        return conn

    def close(self) -> None:
        while self.idle:
            self.idle.pop().close()


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
            if pool.idle:
                pool.sweep(now)

    def dial(self, pool: UpstreamPool, ready: Ready) -> None:
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
    try:
        async with asyncio.timeout(timeout if timeout > 0 else None):
            conn = await pool.open()
    except TimeoutError:
        ready(GatewayTimeout("dial timeout"))
    except (OSError, ssl.SSLError, ValueError) as exc:
        ready(BadGateway(str(exc)))
    else:
        ready(conn)
