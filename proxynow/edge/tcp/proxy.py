"""TCP proxying: choosing a TCP route for a connection and moving its bytes.

The routes are compiled by edge/tcp/routing.py. Here is the I/O: `entrypoint_factory`
decides per accepted connection between a TCP route and the entrypoint's HTTP protocol,
and `TcpProxy` moves bytes both ways with backpressure and half-close.

Traefik semantics kept here: TCP routers are evaluated before HTTP routers on a shared
entrypoint; when one direction reaches EOF the other side gets `write_eof()` and has
`terminationDelay` (default 100ms, negative = forever) to finish before both sockets
are closed (traefik pkg/tcp/proxy.go); a PROXY protocol header, when configured, is the
first thing the backend receives.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from proxynow.edge.core.metrics import EntryPointStats
from proxynow.edge.tcp import proxyproto
from proxynow.edge.tcp.middlewares import Guard
from proxynow.edge.tcp.routing import TcpRoute, TcpRouting, TcpTarget
from proxynow.rules import RouteTable
from proxynow.rules.request import IPAddress

__all__ = ["TcpProxy", "client_view", "entrypoint_factory"]

log = logging.getLogger(__name__)

# ---------------------------------------------------------------- the I/O shell


@dataclass(frozen=True, slots=True)
class _ConnectionView:
    """What a TCP rule reads (rules.TCPView): SNI and ALPN stay empty until the TLS peek."""

    client_ip: IPAddress | None
    sni: str = ""
    alpn: tuple[str, ...] = ()


def entrypoint_factory(
    entrypoint: str,
    routing: Callable[[], TcpRouting],
    http_factory: Callable[[], asyncio.Protocol],
    connections: set[Any],
    stats: EntryPointStats | None = None,
) -> Callable[[], asyncio.Protocol]:
    """The protocol factory of one entrypoint's listeners.

    `routing()` returns the current graph's TCP part, read once per connection. An
    entrypoint without TCP routers hands the connection straight to HTTP (no extra
    object on the HTTP path); otherwise a `_Dispatch` decides once the peer is known.
    """

    def factory() -> asyncio.Protocol:
        table = routing().tables.get(entrypoint)
        if table is None:
            return http_factory()
        return _Dispatch(table, http_factory, connections, stats)

    return factory


class _Dispatch(asyncio.Protocol):
    """Chooses between the TCP routers and HTTP for one new connection, then steps aside."""

    __slots__ = ("_connections", "_http_factory", "_stats", "_table")

    def __init__(
        self,
        table: RouteTable[TcpRoute],
        http_factory: Callable[[], asyncio.Protocol],
        connections: set[Any],
        stats: EntryPointStats | None,
    ) -> None:
        self._table = table
        self._http_factory = http_factory
        self._connections = connections
        self._stats = stats

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The TLS issue reads the ClientHello here first (pause nothing, buffer the bytes,
        # parse SNI/ALPN, then match): with only non-TLS `HostSNI(`*`)` routers the peer
        # address is all a rule can read, so the decision is immediate.
        view = _ConnectionView(client_ip=_client_ip(transport.get_extra_info("peername")))
        route = self._table.match(view)
        protocol: asyncio.Protocol
        if route is None:
            protocol = self._http_factory()
        else:
            protocol = TcpProxy(route, self._connections, self._stats)
        # Hand the transport over: later callbacks go to `protocol`, this object is dropped.
        transport.set_protocol(protocol)
        protocol.connection_made(transport)

    def data_received(self, data: bytes) -> None:  # pragma: no cover - replaced before data
        raise RuntimeError("data before the connection was dispatched")


def client_view(transport: asyncio.BaseTransport, sni: str, alpn: tuple[str, ...]) -> Any:
    """What a TCP rule reads for a connection whose ClientHello was peeked."""
    return _ConnectionView(_client_ip(transport.get_extra_info("peername")), sni, alpn)


def _client_ip(peer: Any) -> IPAddress | None:
    """The peer's address; IPv4 clients of a dual-stack listener as plain IPv4."""
    if not isinstance(peer, tuple):
        return None
    ip = ipaddress.ip_address(str(peer[0]).split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class TcpProxy(asyncio.Protocol):
    """The client side of one proxied TCP connection; owns the backend connection too."""

    def __init__(
        self, route: TcpRoute, connections: set[Any], entrypoint: EntryPointStats | None = None
    ) -> None:
        self._route = route
        self._stats = route.stats
        self._entrypoint = entrypoint
        self._counted = False
        self._connections = connections
        self._loop = asyncio.get_running_loop()
        self._client: asyncio.Transport | None = None
        self._backend: asyncio.Transport | None = None
        self._connect: asyncio.Task[None] | None = None
        self._target: TcpTarget | None = None
        self._early = bytearray()  # client bytes that arrived before the backend connected
        self._timer: asyncio.TimerHandle | None = None
        self._delay = -1.0
        self._client_eof = False
        self._backend_eof = False
        self._closed = False
        # The route's guards (its TCP middlewares) that admitted the client, released at close.
        self._admitted: tuple[Guard, ...] = ()
        self._ip: IPAddress | None = None

    # -- client side

    def connection_made(self, base: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing asyncio's.
        transport = cast(asyncio.Transport, base)
        self._client = transport
        self._connections.add(self)
        self._count_open(1)
        self._stats.connections += 1
        guards = self._route.guards
        if guards and not self._admit(transport, guards):
            log.debug("TCP router %s: connection refused by a middleware", self._route.router)
            self.close()
            return
        picked = self._route.pick()
        if picked is None:
            log.debug("TCP router %s: no server", self._route.router)
            self._stats.failed += 1
            self.close()
            return
        target, server = picked
        self._target = target
        self._delay = target.termination_delay
        # Until the backend is connected. (uvloop starts reading right after
        # connection_made whatever it did, hence the re-pause in data_received.)
        transport.pause_reading()
        self._connect = self._loop.create_task(
            self._open(target, server), name=f"tcp-connect {target.name}"
        )
        self._connect.add_done_callback(self._connected)

    def data_received(self, data: bytes) -> None:
        self._stats.bytes_in += len(data)
        if self._backend is not None:
            self._backend.write(data)
        elif self._client is not None:
            self._early += data
            self._client.pause_reading()

    def eof_received(self) -> bool:
        self._client_eof = True
        if self._backend is not None:
            self._half_closed(self._backend)
        return True  # keep the transport open: the backend may still answer

    def connection_lost(self, exc: Exception | None) -> None:
        self._client = None
        self.close()

    def pause_writing(self) -> None:
        if self._backend is not None:
            self._backend.pause_reading()

    def resume_writing(self) -> None:
        if self._backend is not None and not self._backend.is_closing():
            self._backend.resume_reading()

    def shutdown(self) -> None:
        """Draining: a TCP stream has no request boundary; it ends by itself or at the
        entrypoint's graceTimeOut, when the worker calls `close()`."""

    # -- backend side (called by _Upstream)

    def backend_data(self, data: bytes) -> None:
        self._stats.bytes_out += len(data)
        if self._client is not None:
            self._client.write(data)

    def backend_eof(self) -> None:
        self._backend_eof = True
        self._half_closed(self._client)

    def backend_lost(self) -> None:
        self._backend = None
        self.close()

    def backend_pause(self) -> None:
        if self._client is not None:
            self._client.pause_reading()

    def backend_resume(self) -> None:
        if self._client is not None and not self._client.is_closing():
            self._client.resume_reading()

    # -- both

    def close(self) -> None:
        """Close both sides (buffered bytes are still flushed) and forget the connection."""
        if self._closed:
            return
        self._closed = True
        for guard in self._admitted:
            guard.release(self._ip)
        self._admitted = ()
        self._connections.discard(self)
        self._count_open(-1)
        if self._timer is not None:
            self._timer.cancel()
        if self._connect is not None and not self._connect.done():
            self._connect.cancel()
        for transport in (self._client, self._backend):
            if transport is not None:
                transport.close()

    def abort(self) -> None:
        """Drop both sides now (the drain deadline has passed)."""
        for transport in (self._client, self._backend):
            if transport is not None:
                transport.abort()
        self.close()

    def _admit(self, transport: asyncio.Transport, guards: tuple[Guard, ...]) -> bool:
        """Ask the router's middlewares in order; the ones that admitted are kept."""
        ip = self._ip = _client_ip(transport.get_extra_info("peername"))
        admitted: list[Guard] = []
        for guard in guards:
            if not guard.admit(ip):
                for held in admitted:
                    held.release(ip)
                return False
            admitted.append(guard)
        self._admitted = tuple(admitted)
        return True

    def _count_open(self, step: int) -> None:
        """The open-connection gauges: +1 once when made, -1 once when closed."""
        if (step > 0) == self._counted:
            return
        self._counted = step > 0
        self._stats.open += step
        if self._entrypoint is not None:
            self._entrypoint.tcp_open_connections += step

    async def _open(self, target: TcpTarget, server: tuple[str, int]) -> None:
        host, port = server
        await asyncio.wait_for(
            self._loop.create_connection(lambda: _Upstream(self), host, port),
            target.dial_timeout if target.dial_timeout > 0 else None,
        )

    def _connected(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.debug("TCP router %s: backend connection failed: %r", self._route.router, exc)
            self._stats.failed += 1
            self.close()
        elif self._client is not None and not self._client.is_closing():
            self._client.resume_reading()

    def _upstream_made(self, transport: asyncio.Transport) -> None:
        client = self._client
        if self._closed or client is None:
            transport.close()
            return
        self._backend = transport
        target = self._target
        assert target is not None
        if target.proxy_protocol:
            # The header is the first thing the backend reads.
            peer, local = client.get_extra_info("peername"), client.get_extra_info("sockname")
            transport.write(proxyproto.header(target.proxy_protocol, peer, local))
        if self._early:
            transport.write(bytes(self._early))
            self._early.clear()
        if self._client_eof:
            self._half_closed(transport)

    def _half_closed(self, other: asyncio.Transport | None) -> None:
        """One direction ended: pass the EOF on, and give the other `terminationDelay`."""
        if self._client_eof and self._backend_eof:
            self.close()
            return
        if other is not None and other.can_write_eof() and not other.is_closing():
            other.write_eof()
        if self._delay >= 0 and self._timer is None:
            self._timer = self._loop.call_later(self._delay, self.close)


class _Upstream(asyncio.Protocol):
    """The backend side: forwards everything to its TcpProxy."""

    __slots__ = ("_proxy",)

    def __init__(self, proxy: TcpProxy) -> None:
        self._proxy = proxy

    def connection_made(self, base: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing asyncio's.
        transport = cast(asyncio.Transport, base)
        self._proxy._upstream_made(transport)

    def data_received(self, data: bytes) -> None:
        self._proxy.backend_data(data)

    def eof_received(self) -> bool:
        self._proxy.backend_eof()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._proxy.backend_lost()

    def pause_writing(self) -> None:
        self._proxy.backend_pause()

    def resume_writing(self) -> None:
        self._proxy.backend_resume()
