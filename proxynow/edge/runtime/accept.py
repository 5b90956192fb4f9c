"""TLS connections: the ClientHello peek and a MemoryBIO TLS layer of our own.

`TlsPeek` is the protocol of a new connection on an entrypoint that serves TLS. It
buffers what the client sends until the ClientHello is complete, then decides once:

- not TLS → the entrypoint's plain protocol (TCP dispatch or HTTP) gets the bytes;
- TCP router with `HostSNI` matching and `tls.passthrough` → raw bytes to its backend;
- otherwise a context: the TLS-ALPN-01 challenge certificate (client offers
  `acme-tls/1` for a pending domain), else the SNI table's; `TlsLayer` terminates TLS
  and feeds the plaintext to a TCP route with TLS termination or the HTTPS protocol.

Why a layer of our own instead of `loop.start_tls`: the peeked bytes must reach the TLS
engine, and start_tls cannot be given bytes already read (nor be used without a task per
connection). `TlsLayer` is the raw transport's protocol and the application protocol's
transport at once: ssl.SSLObject over two MemoryBIOs, one `write` to the socket per
application write, no coroutine.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from proxynow.edge.core.metrics import EntryPointStats
from proxynow.edge.http1.factory import http_protocol_factory
from proxynow.edge.http1.protocol import entrypoint_runtime
from proxynow.edge.http2.factory import http2_protocol_factory
from proxynow.edge.tcp.proxy import TcpProxy, client_view, entrypoint_factory
from proxynow.edge.tls.contexts import ContextCache, OptionSpec, cert_pair
from proxynow.edge.tls.hello import MAX_HELLO_BYTES, NOT_TLS, Hello, parse_hello
from proxynow.ipc.challenges import ACME_TLS_ALPN, ChallengeSet

if TYPE_CHECKING:
    from proxynow.config.static import EntryPoint
    from proxynow.edge.graph.state import WorkerState

__all__ = ["TlsEntry", "TlsLayer", "TlsPeek", "connection_factory"]

log = logging.getLogger(__name__)

_READ_SIZE = 256 * 1024
_CHALLENGE_SPEC = OptionSpec(alpn=(ACME_TLS_ALPN,))


class TlsEntry:
    """What the connections of one TLS-capable entrypoint share."""

    __slots__ = (
        "challenges",
        "clocked",
        "connections",
        "contexts",
        "graph",
        "h2_factory",
        "handshake_timeout",
        "https_factory",
        "name",
        "plain_factory",
        "stats",
    )

    def __init__(
        self,
        name: str,
        graph: Callable[[], Any],
        plain_factory: Callable[[], asyncio.Protocol],
        https_factory: Callable[[], asyncio.Protocol],
        challenges: Callable[[], ChallengeSet],
        contexts: ContextCache,
        connections: set[Any],
        clocked: set[Any] | None = None,
        handshake_timeout: float = 60.0,
        stats: EntryPointStats | None = None,
        h2_factory: Callable[[], asyncio.Protocol] | None = None,
    ) -> None:
        self.name = name
        # The HTTP/2 front end, for a handshake that chose ALPN h2 (None: never offered).
        self.h2_factory = h2_factory
        self.stats = stats  # the entrypoint's gauges, for connections TCP routers take
        self.connections = connections
        # Connections still before their first byte of application data are "clocked":
        # the worker's tick closes them at `handshake_timeout` (a silent client holds
        # nothing for long), and a drain closes them at once.
        self.clocked = clocked if clocked is not None else set()
        self.handshake_timeout = handshake_timeout
        self.graph = graph
        self.plain_factory = plain_factory
        self.https_factory = https_factory
        self.challenges = challenges
        self.contexts = contexts

    def challenge_context(self, hello: Hello) -> ssl.SSLContext | None:
        """The TLS-ALPN-01 context for this hello, or None (the usual case)."""
        if ACME_TLS_ALPN not in hello.alpn:
            return None
        pair = self.challenges().tlsalpn01.get(hello.sni)
        if pair is None:
            return None
        return self.contexts.get(cert_pair(*pair), _CHALLENGE_SPEC)


class TlsPeek(asyncio.Protocol):
    """Reads the ClientHello, then hands the connection to the protocol it calls for."""

    __slots__ = ("_buffer", "_entry", "_transport", "deadline")

    def __init__(self, entry: TlsEntry) -> None:
        self._entry = entry
        self._buffer = b""
        self._transport: asyncio.Transport | None = None
        self.deadline = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        entry = self._entry
        self.deadline = asyncio.get_running_loop().time() + entry.handshake_timeout
        entry.connections.add(self)
        entry.clocked.add(self)

    def release(self) -> None:
        """The connection is past its handshake (or gone): no longer ours to clock."""
        self._entry.connections.discard(self)
        self._entry.clocked.discard(self)

    def on_deadline(self, now: float) -> None:
        self.abort()

    def shutdown(self) -> None:
        self._close()

    def abort(self) -> None:
        self.release()
        if self._transport is not None:
            self._transport.abort()

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer = self._buffer + data if self._buffer else data
        hello = parse_hello(buffer)
        if hello is None:
            if len(buffer) > MAX_HELLO_BYTES:
                self._close()
            return
        transport = self._transport
        assert transport is not None
        self._buffer = b""
        if hello is NOT_TLS:
            self.release()
            _hand_over(transport, self._entry.plain_factory(), buffer)
            return
        entry = self._entry
        graph = entry.graph()
        route = None
        table = graph.tcp.tls_tables.get(entry.name)
        if table is not None:  # (the view parses the peer address: only when needed)
            route = table.match(client_view(transport, hello.sni, hello.alpn))
        if route is not None and route.passthrough:
            self.release()
            _hand_over(transport, TcpProxy(route, entry.connections, entry.stats), buffer)
            return
        context = entry.challenge_context(hello)
        if context is None:
            table_sni = graph.sni.get(entry.name)
            context = table_sni.lookup(hello.sni) if table_sni is not None else None
        if context is None:
            self._close()  # sniStrict and an unknown name: no certificate to offer
            return
        app_factory = entry.https_factory
        h2_factory = entry.h2_factory
        if route is not None:
            app_factory = partial(TcpProxy, route, entry.connections, entry.stats)
            h2_factory = None  # a TCP route's bytes are its own, whatever ALPN chose
        layer = TlsLayer(context, app_factory, self, h2_factory)
        transport.set_protocol(layer)
        layer.connection_made(transport)
        layer.data_received(buffer)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self.release()

    def _close(self) -> None:
        self.release()
        if self._transport is not None:
            self._transport.close()


def _hand_over(transport: asyncio.Transport, protocol: asyncio.Protocol, data: bytes) -> None:
    transport.set_protocol(protocol)
    protocol.connection_made(transport)
    # A dispatching protocol may have handed the transport on again.
    final = cast(asyncio.Protocol, transport.get_protocol())
    if not transport.is_closing():
        final.data_received(data)


class TlsLayer(asyncio.Protocol):
    """Terminates TLS on a raw transport; is the transport of the application protocol."""

    __slots__ = (
        "_app",
        "_app_factory",
        "_closing",
        "_engine",
        "_guard",
        "_h2_factory",
        "_handshaking",
        "_holding",
        "_in",
        "_out",
        "_paused",
        "_raw",
        "_ssl",
    )

    def __init__(
        self,
        context: ssl.SSLContext,
        app_factory: Callable[[], asyncio.Protocol],
        guard: TlsPeek | None = None,
        h2_factory: Callable[[], asyncio.Protocol] | None = None,
    ) -> None:
        self._h2_factory = h2_factory  # when the handshake chose ALPN h2
        self._guard = guard  # clocks the handshake; released once the app takes over
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._ssl = context.wrap_bio(self._in, self._out, server_side=True)
        # The C object under the SSLObject (CPython's `_sslobj`): reads, writes and handshake
        # steps called on it skip a Python frame each; `_ssl` stays the public one.
        self._engine: Any = getattr(self._ssl, "_sslobj", self._ssl)
        # TLS 1.3 output held after the handshake (the session ticket) until the first
        # application write or the close, so that it leaves in the same send.
        self._holding = False
        self._app_factory = app_factory
        self._app: asyncio.Protocol | None = None
        self._raw: asyncio.Transport | None = None
        self._handshaking = True
        self._paused = False
        self._closing = False

    # -- raw side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._raw = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._in.write(data)
        if self._handshaking and not self._handshake():
            return
        self._read()

    def eof_received(self) -> bool:
        if self._app is not None:
            self._app.eof_received()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        if self._guard is not None:
            self._guard.release()
            self._guard = None
        app, self._app = self._app, None
        if app is not None:
            app.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._app is not None:
            self._app.pause_writing()

    def resume_writing(self) -> None:
        if self._app is not None:
            self._app.resume_writing()

    def _handshake(self) -> bool:
        try:
            self._engine.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return False
        except (ssl.SSLError, OSError) as exc:
            if log.isEnabledFor(logging.DEBUG):
                log.debug("TLS handshake failed: %s", exc)
            self._flush()
            self.abort()
            return False
        self._handshaking = False
        if self._guard is not None:
            self._guard.release()
            self._guard = None
        # No flush here: a TLS 1.3 session ticket leaves with the first response (one
        # send, not two). TLS 1.2's last flight (Finished) is awaited by the client: `_read`
        # sends it.
        ssl_object = self._ssl
        self._holding = self._out.pending > 0 and ssl_object.version() == "TLSv1.3"
        factory = self._app_factory
        if self._h2_factory is not None and ssl_object.selected_alpn_protocol() == "h2":
            factory = self._h2_factory
        app = self._app = factory()
        app.connection_made(cast(asyncio.BaseTransport, self))  # duck-typed transport
        return True

    def _read(self) -> None:
        if not self._paused and self._app is not None:
            self._deliver()
        if self._out.pending and not self._holding:
            self._flush()  # TLS 1.2's Finished, key updates, alerts

    def _deliver(self) -> None:
        """Every record read from the socket so far, decrypted, to the application in one
        `data_received`, as a plain transport hands over one read: a client that sends
        several records at once (h2load, a browser multiplexing HTTP/2 streams) costs one
        pass of the application, and one answer, instead of one per record."""
        ssl_object = self._engine
        incoming = self._in
        chunks = []
        ended = failed = False
        while True:
            try:
                chunk = ssl_object.read(_READ_SIZE)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                ended = True
                break
            except ssl.SSLError:
                failed = True
                break
            if not chunk:
                break
            chunks.append(chunk)
            # Nothing left to decrypt: stop here rather than pay for the SSLWantReadError
            # the next read would raise (the usual case: one record).
            if not incoming.pending and not ssl_object.pending():
                break
        app = self._app
        if chunks and app is not None:
            app.data_received(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        if failed:
            self.abort()
        elif ended and self._app is not None:
            self._app.eof_received()
            self.close()

    def _flush(self) -> None:
        self._holding = False
        raw = self._raw
        if raw is not None and self._out.pending:
            raw.write(self._out.read())

    # -- the application's transport

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing:
            return
        try:
            # A memory BIO takes everything at once; the loop is for the rare short write.
            written = self._engine.write(data)
            if written < len(data):
                view = memoryview(data)[written:]
                while view:
                    view = view[self._engine.write(view) :]
        except ssl.SSLError:
            # The peer already closed its side (close_notify) or the session broke.
            self.abort()
            return
        self._flush()

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def can_write_eof(self) -> bool:
        return False

    def write_eof(self) -> None:
        raise NotImplementedError("TLS connections cannot half-close")

    def pause_reading(self) -> None:
        self._paused = True
        if self._raw is not None:
            self._raw.pause_reading()

    def resume_reading(self) -> None:
        if not self._paused:
            return
        self._paused = False
        raw = self._raw
        if raw is not None and not raw.is_closing():
            raw.resume_reading()
            # Plaintext already decrypted but not delivered while paused.
            asyncio.get_running_loop().call_soon(self._read)

    def is_reading(self) -> bool:
        return not self._paused

    def is_closing(self) -> bool:
        return self._closing or self._raw is None or self._raw.is_closing()

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        # close_notify; the peer's is not awaited (SSLWantReadError). try/except, not
        # contextlib.suppress: no context manager per connection.
        try:  # noqa: SIM105
            self._ssl.unwrap()
        except (ssl.SSLError, OSError, ValueError):
            pass
        self._flush()
        if self._raw is not None:
            self._raw.close()

    def abort(self) -> None:
        self._closing = True
        if self._raw is not None:
            self._raw.abort()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "ssl_object":
            return self._ssl
        if name == "peercert":
            return self._ssl.getpeercert()
        if name == "cipher":
            return self._ssl.cipher()
        if self._raw is None:
            return default
        return self._raw.get_extra_info(name, default)

    def get_write_buffer_size(self) -> int:
        return self._raw.get_write_buffer_size() if self._raw is not None else 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if self._raw is not None:
            self._raw.set_write_buffer_limits(high, low)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._app = cast(asyncio.Protocol, protocol)

    def get_protocol(self) -> asyncio.BaseProtocol | None:
        return self._app


def connection_factory(
    state: WorkerState, name: str, entrypoint: EntryPoint
) -> Callable[[], asyncio.Protocol]:
    """The protocol factory of one entrypoint's listeners (plain HTTP, TCP and TLS).

    The current graph says per new connection whether the entrypoint serves TLS; when it
    does not, the connection goes straight to the plain factory (one set lookup).
    """
    plain_runtime = entrypoint_runtime(name, entrypoint)
    # Prior-knowledge h2c: the HTTP/1 front end hands a connection that starts with the
    # HTTP/2 preface over to this factory.
    h2c = http2_protocol_factory(state, plain_runtime)
    http_factory = http_protocol_factory(state, plain_runtime, h2c)
    ep_stats = state.metrics.entrypoint(name)
    plain = entrypoint_factory(
        name, lambda: state.graph.tcp, http_factory, state.connections, ep_stats
    )
    tls_runtime = entrypoint_runtime(name, entrypoint, tls=True)
    https = http_protocol_factory(state, tls_runtime)
    entry = TlsEntry(
        name,
        lambda: state.graph,
        plain,
        https,
        lambda: state.challenges,
        state.resources.contexts,
        state.connections,
        state.clocked,
        entrypoint.transport.responding_timeouts.read_timeout or 60.0,
        ep_stats,
        http2_protocol_factory(state, tls_runtime),
    )

    def factory() -> asyncio.Protocol:
        graph = state.graph
        # A pending TLS-ALPN-01 challenge needs the peek even before any TLS router exists.
        if name in graph.tls_entrypoints or state.challenges.tlsalpn01:
            return TlsPeek(entry)
        if name not in graph.tcp.tables:
            return http_factory()  # no TCP router here: HTTP at once, two calls less
        return plain()

    return factory
