"""edge/proxy/dispatch.py driven by a second front end: no HTTP/1 client side at all.

`MessageDownstream` is a minimal `Downstream` the way an HTTP/2 stream will be one: it is
handed a request as values (method, target, headers), never as HTTP/1 bytes, and gets the
response as values; several of them share one connection's context and are in flight at
once. Dispatch routes them with the worker's graph and forwards them to a real backend on
127.0.0.1, whose connections come from the worker's pools.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from proxynow.config.dynamic import DynamicConfig
from proxynow.config.static import AccessLog as AccessLogConfig
from proxynow.config.static import StaticConfig
from proxynow.edge.core.metrics import EntryPointStats, TargetStats
from proxynow.edge.graph.state import WorkerState
from proxynow.edge.http.access import AccessLog
from proxynow.edge.http.exchange import EntryPointRuntime, Exchange, validate
from proxynow.edge.http.peers import Peer, PeerCache
from proxynow.edge.message.headers import RequestHead, ResponseHead
from proxynow.edge.proxy import dispatch
from proxynow.edge.proxy.downstream import Downstream
from proxynow.edge.upstream.connection import UpstreamConnection
from proxynow.snapshot import Snapshot
from tests.integration.support_http import (
    LoopThread,
    RawBackend,
    RawConnection,
    ok_response,
    wait_for,
)


class Connection:
    """What the streams of one client connection share (an HTTP/2 connection's part)."""

    def __init__(self, state: WorkerState, entrypoint: EntryPointRuntime) -> None:
        self.state = state
        self.entrypoint = entrypoint
        self.stats: EntryPointStats = state.metrics.entrypoint(entrypoint.name)
        self.peers = PeerCache(entrypoint)
        self.peer: Peer = self.peers.get("127.0.0.1")
        self.loop = asyncio.get_running_loop()


class MessageDownstream:
    """One exchange of a client that speaks in values, not bytes."""

    def __init__(self, connection: Connection, method: bytes, target: bytes, host: bytes) -> None:
        self.connection = connection
        self.state = connection.state
        self.entrypoint = connection.entrypoint
        self.entrypoint_stats = connection.stats
        self.unrouted: TargetStats = connection.stats.unrouted
        self.loop = connection.loop
        self.peer = connection.peer
        self.peers = connection.peers
        self.peer_hosts = connection.peer.hosts
        self.forward_context = connection.peer.ctx
        self.client_cert = b""
        self.access_peer = None  # the access log's per-connection memo (edge/http/access_lines.py)
        self.access_log = connection.state.access_log
        self.transport = _StreamTransport()  # no socket: only the access log reads it
        self.graph: Any = None
        self.table: Any = None
        self.raw_path = b""
        self.path = "/"
        head = RequestHead(self.forward_context.trusted)
        head.add(b"Host", host)
        head.add(b"X-Stream", target)
        self.exchange = Exchange(head, self.loop.time(), self.peer.ip)
        self.exchange.method_b = method
        self.exchange.target = target
        validate(self.exchange)
        self.status = 0
        self.lines: list[bytes] = []
        self.body = b""
        self.ended_at = 0.0
        self.events: list[str] = []

    # -- Downstream

    def error(self, exchange: Exchange, status: int) -> None:
        exchange.status = self.status = status
        self.events.append(f"error {status}")
        dispatch.finish(self, exchange, self.loop.time())

    def reply(self, exchange: Exchange, reply: bytes) -> None:
        exchange.status = self.status = int(reply[9:12])
        dispatch.finish(self, exchange, self.loop.time())

    def answer(self, exchange: Exchange, status: int, body: bytes) -> None:
        exchange.status = self.status = status
        self.body = body
        dispatch.finish(self, exchange, self.loop.time())

    def attached(self, exchange: Exchange, conn: UpstreamConnection) -> None:
        self.events.append("attached")

    def ended(self, exchange: Exchange, now: float) -> None:
        self.ended_at = now
        self.events.append("ended")

    def wants(self, exchange: Exchange) -> bool:
        return not self.ended_at

    def failed(self, exc: BaseException) -> None:
        self.events.append(f"failed {exc!r}")

    # -- Owner (what the upstream connection reports)

    def upstream_head(self, conn: UpstreamConnection, status: int, head: ResponseHead) -> None:
        if status >= 200:
            self.exchange.status = self.status = status
            self.lines = list(head.kept_lines())

    def upstream_body(self, data: bytes) -> None:
        self.exchange.bytes_out += len(data)
        self.body += data

    def upstream_done(self, conn: UpstreamConnection, reusable: bool) -> None:
        dispatch.complete(self, self.exchange, conn, reusable)

    def upstream_lost(self, conn: UpstreamConnection) -> None:
        if self.exchange.upstream is conn and self.exchange.status == 0:
            dispatch.lost(self, self.exchange, conn)

    def upstream_upgraded(self, conn: UpstreamConnection, leftover: bytes) -> None:
        dispatch.upgraded(self, self.exchange, conn)

    def upstream_failed(self, conn: UpstreamConnection, exc: BaseException) -> None:
        self.events.append(f"upstream failed {exc!r}")

    def upstream_pause(self) -> None: ...
    def upstream_resume(self) -> None: ...


class _StreamTransport:
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 5555) if name == "peername" else default


def _conforms(downstream: MessageDownstream) -> Downstream:
    return downstream  # mypy checks the structural match here


def _echo_stream(conn: RawConnection, head: bytes) -> bytes:
    """Answer with the request's X-Stream value, so each stream can tell its answer."""
    stream = next(
        line.split(b":", 1)[1].strip()
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"x-stream:")
    )
    return ok_response(b"for " + stream)


@pytest.fixture
def backend(lt: LoopThread) -> Iterator[RawBackend]:
    server = RawBackend(lt, _echo_stream)
    yield server
    server.close()


def _state(lt: LoopThread, backend: RawBackend) -> WorkerState:
    config = {
        "http": {
            "routers": {"r@test": {"rule": "Host(`app.test`)", "service": "s@test"}},
            "services": {"s@test": {"loadBalancer": {"servers": [{"url": backend.url}]}}},
        }
    }
    snapshot = Snapshot(version=1, config=DynamicConfig.model_validate(config))
    static = StaticConfig.model_validate({"entryPoints": {"web": {"address": ":80"}}})

    def build() -> WorkerState:
        state = WorkerState(tick_interval=0.05)
        state.load(snapshot, static)
        return state

    return lt.call(build)


def test_two_exchanges_in_flight_on_one_connection_each_get_their_response(
    lt: LoopThread, backend: RawBackend
) -> None:
    state = _state(lt, backend)
    try:

        def start() -> list[MessageDownstream]:
            connection = Connection(state, EntryPointRuntime("web"))
            streams = [
                _conforms(MessageDownstream(connection, b"GET", b"/" + name, b"app.test"))
                for name in (b"one", b"two")
            ]
            for stream in streams:
                assert isinstance(stream, MessageDownstream)
                dispatch.route(stream, stream.exchange)
            # Both were sent before either was answered: their state is their own.
            assert all(s.exchange.server is not None and s.status == 0 for s in streams)
            return streams  # type: ignore[return-value]

        streams = lt.call(start)
        wait_for(lambda: lt.call(lambda: all(s.ended_at for s in streams)), "both answers")
        assert [(s.status, s.body) for s in streams] == [(200, b"for /one"), (200, b"for /two")]
        assert all(s.events == ["attached", "ended"] for s in streams)
        assert all(s.exchange.upstream is None and s.exchange.load is None for s in streams)
        heads = sorted(backend.heads)
        assert heads[0].startswith(b"GET /one HTTP/1.1\r\n")
        assert heads[1].startswith(b"GET /two HTTP/1.1\r\n")
        assert all(b"\r\nX-Forwarded-For: 127.0.0.1" in head for head in heads)
        assert all(b"\r\nHost: app.test" in head for head in heads)

        # Counted in the router's row, one each; the connections went back to the pool.
        def counted() -> tuple[float, int]:
            stats = streams[0].exchange.stats
            assert stats is not None
            pool = streams[0].exchange
            assert pool.server is not None
            return sum(row[0] for row in stats.rows.values()), len(pool.server.pool.idle)

        assert lt.call(counted) == (2.0, 2)
    finally:
        lt.call(state.stop)


def test_a_request_no_router_matches_is_answered_by_the_downstream(
    lt: LoopThread, backend: RawBackend
) -> None:
    state = _state(lt, backend)
    try:

        def start() -> MessageDownstream:
            connection = Connection(state, EntryPointRuntime("web"))
            stream = MessageDownstream(connection, b"GET", b"/", b"other.test")
            dispatch.route(stream, stream.exchange)
            return stream

        stream = lt.call(start)
        assert (stream.status, stream.events) == (404, ["error 404", "ended"])
        assert stream.exchange.upstream is None and not backend.heads
        assert lt.call(lambda: sum(row[0] for row in stream.unrouted.rows.values())) == 1.0
    finally:
        lt.call(state.stop)


def test_a_request_on_a_reused_connection_the_backend_dropped_is_sent_again(
    lt: LoopThread, backend: RawBackend
) -> None:
    state = _state(lt, backend)
    try:

        def first() -> MessageDownstream:
            connection = Connection(state, EntryPointRuntime("web"))
            stream = MessageDownstream(connection, b"GET", b"/first", b"app.test")
            dispatch.route(stream, stream.exchange)
            return stream

        stream = lt.call(first)
        wait_for(lambda: lt.call(lambda: stream.ended_at), "the first answer")

        # The backend closes the idle connection; the next request gets it from the pool
        # before the proxy has heard, so it is lost before any byte came back.
        def drop_then_send() -> MessageDownstream:
            for conn in backend.connections:
                assert conn.transport is not None
                conn.transport.abort()
            again = MessageDownstream(stream.connection, b"GET", b"/again", b"app.test")
            dispatch.route(again, again.exchange)
            return again

        again = lt.call(drop_then_send)
        wait_for(lambda: lt.call(lambda: again.ended_at), "the retried answer")
        assert (again.status, again.body) == (200, b"for /again")
        assert again.exchange.retried and again.events == ["attached", "attached", "ended"]
        assert again.exchange.stats is not None and again.exchange.stats.retries == 1
    finally:
        lt.call(state.stop)


class _Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.dropped = 0
        self.error = ""

    def submit(self, lines: list[str], size: int) -> None:
        self.lines += lines

    def reopen(self) -> None: ...
    def close(self) -> None: ...


def test_every_exchange_is_logged_once_where_it_ends(lt: LoopThread, backend: RawBackend) -> None:
    """The access-log hook is in dispatch, so a front end other than HTTP/1 gets it too:
    two streams in flight and an unrouted request, one line each."""
    state = _state(lt, backend)
    sink = _Lines()
    config = AccessLogConfig(format="genericCLF")
    state.access_log = AccessLog(config, sink, state.metrics)
    try:

        def start() -> list[MessageDownstream]:
            connection = Connection(state, EntryPointRuntime("web"))
            streams = [
                MessageDownstream(connection, b"GET", target, host)
                for target, host in ((b"/one", b"app.test"), (b"/two", b"app.test"))
            ]
            streams.append(MessageDownstream(connection, b"GET", b"/x", b"other.test"))
            for stream in streams:
                dispatch.route(stream, stream.exchange)
            return streams

        streams = lt.call(start)
        wait_for(lambda: lt.call(lambda: all(s.ended_at for s in streams)), "every answer")
        lines = sorted(
            line.split('"')[1] + " " + line.split('"')[2].split()[0] for line in sink.lines
        )
        assert lines == ["GET /one HTTP/1.1 200", "GET /two HTTP/1.1 200", "GET /x HTTP/1.1 404"]
    finally:
        lt.call(state.stop)
