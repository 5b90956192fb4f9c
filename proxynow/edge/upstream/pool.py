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
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from proxynow.config.dynamic import RESPONSE_HEADER_BYTES, RESPONSE_HEADER_COUNT, ServersTransport
from proxynow.config.static import StaticConfig
from proxynow.edge.core.errors import BadGateway, GatewayTimeout, ProxyError
from proxynow.edge.upstream.connection import UpstreamConnection
from proxynow.edge.upstream.tls import client_context

__all__ = ["PoolKey", "PoolRegistry", "TransportOptions", "UpstreamPool", "resolve_transport"]

log = logging.getLogger(__name__)

_GO_DEFAULT_MAX_IDLE = 2  # Go's DefaultMaxIdleConnsPerHost, for a serversTransport's 0


@dataclass(frozen=True, slots=True)
class TransportOptions:
    """A resolved `serversTransport` (Traefik defaults)."""

    name: str = "default@internal"
    dial_timeout: float = 30.0
    response_header_timeout: float = 0.0
    idle_conn_timeout: float = 90.0
    max_idle_conns_per_host: int = 200
    insecure_skip_verify: bool = False
    root_cas: tuple[str, ...] = ()
    server_name: str = ""
    certificates: tuple[tuple[str, str], ...] = ()  # (certFile, keyFile): path or PEM
    min_version: str = ""
    max_version: str = ""
    cipher_suites: tuple[str, ...] = ()
    max_response_header_bytes: int = RESPONSE_HEADER_BYTES
    max_response_header_count: int = RESPONSE_HEADER_COUNT


def resolve_transport(
    static: StaticConfig, transports: Mapping[str, ServersTransport], name: str
) -> TransportOptions:
    """The options of serversTransport `name` (a dynamic one), or of the static
    `serversTransport` (`default@internal`) when `name` is empty or not dynamic."""
    spec = transports.get(name) if name else None
    if spec is None:
        default = static.servers_transport
        timeouts = default.forwarding_timeouts
        return TransportOptions(
            dial_timeout=timeouts.dial_timeout,
            response_header_timeout=timeouts.response_header_timeout,
            idle_conn_timeout=timeouts.idle_conn_timeout,
            max_idle_conns_per_host=max(default.max_idle_conns_per_host, 0),
            insecure_skip_verify=default.insecure_skip_verify,
            root_cas=tuple(default.root_cas),
            max_response_header_bytes=default.max_response_header_bytes,
            max_response_header_count=default.max_response_header_count,
        )
    timeouts = spec.forwarding_timeouts
    max_idle = spec.max_idle_conns_per_host or _GO_DEFAULT_MAX_IDLE
    return TransportOptions(
        name=name,
        dial_timeout=timeouts.dial_timeout,
        response_header_timeout=timeouts.response_header_timeout,
        idle_conn_timeout=timeouts.idle_conn_timeout,
        max_idle_conns_per_host=max(max_idle, 0),
        insecure_skip_verify=spec.insecure_skip_verify,
        root_cas=tuple(spec.root_cas),
        server_name=spec.server_name,
        certificates=tuple((c.cert_file, c.key_file) for c in spec.certificates),
        min_version=spec.min_version,
        max_version=spec.max_version,
        cipher_suites=tuple(spec.cipher_suites),
        max_response_header_bytes=spec.max_response_header_bytes,
        max_response_header_count=spec.max_response_header_count,
    )


@dataclass(frozen=True, slots=True)
class PoolKey:
    scheme: str
    host: str
    port: int
    transport: TransportOptions


Ready = Callable[[UpstreamConnection | ProxyError], None]


class UpstreamPool:
    """Idle connections to one backend address with one transport configuration."""

    __slots__ = ("idle", "key", "max_idle", "registry", "server_hostname", "ssl", "ssl_error")

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
