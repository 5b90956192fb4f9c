"""HTTP/2 to backends: multiplexed connections whose streams stand in for HTTP/1.1 ones.

Used for `h2c://` servers (prior knowledge, RFC 9113 §3.3) and for `https://` servers
whose TLS handshake picks `h2` by ALPN (not offered with `serversTransport.disableHTTP2`),
as Traefik's transport does (pkg/server/service/smart_roundtripper.go). An `H2Upstream`
is one connection (an `asyncio.Protocol` over the `h2` library, client side); each request
on it is an `H2Stream`, which subclasses `UpstreamConnection` so that everything above the
upstream layer (dispatch, both front ends, drains, mirrors, subrequests) drives it as it
drives an HTTP/1.1 connection: `send` with the request head as the HTTP/1.1 bytes dispatch
builds (parsed back here into HTTP/2 fields: they are the proxy's own bytes), `write` for
body bytes, `pause_reading`/`resume_reading`, `close`/`abort`, and the pool's `release`
(the stream's `pool` is its connection, a `Home` that retires the stream). The owner hears
of the response through the same `Owner` calls; the response trailers (gRPC's
`grpc-status`, `grpc-message`) are on `trailers` when `upstream_done` is called.

`Multiplexed` is a pool's set of HTTP/2 connections: a request takes a stream on the
connection with room (streams per connection bounded by the server's
SETTINGS_MAX_CONCURRENT_STREAMS, 100 until its SETTINGS arrive, as Go's transport assumes),
waits for a dial in progress that will have room for it, or dials another connection.

Flow control is tied to backpressure both ways. Request body: what the backend's window
does not take waits on its stream and pauses the owner (`upstream_pause`: the client is
not read or not given window) until a WINDOW_UPDATE; a connection whose socket buffer is
full pauses every stream's owner. Response body: received DATA is given back to the
backend's window only once handed to the owner while the owner reads (`pause_reading`
holds what arrives, at most one stream window, and gives no window back), so a slow client
slows its stream of the backend and nothing else.

A backend is not trusted: the decoded response header list is bounded by
`maxResponseHeaderBytes` and its field count by `maxResponseHeaderCount` (over them the
stream is reset and its client gets a 502), and so is the number of interim (1xx) heads;
a protocol error ends the connection and each of its streams is lost (a 502 for those not
answered yet, a cut for the others).

A stream the backend did not process (RST_STREAM(REFUSED_STREAM), or above the
last-stream-id of a GOAWAY; RFC 9113 §8.7) is lost as `unprocessed`, which dispatch resends
once on another connection whatever the method. With `readIdleTimeout` set, a connection
that reads nothing for that long is sent a PING and aborted if still nothing comes within
`pingTimeout` (`H2Upstream.check`, run by the worker's tick), so that a backend gone without
a FIN does not hold requests for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from proxynow.edge.core.errors import BadGateway, ProxyError
from proxynow.edge.message.headers import ResponseHead
from proxynow.edge.upstream.connection import Owner, UpstreamConnection

if TYPE_CHECKING:
    from proxynow.edge.upstream.transport import PoolKey

__all__ = ["INITIAL_STREAMS", "H2Stream", "H2Upstream", "Multiplexed", "Trailers"]

log = logging.getLogger(__name__)

Trailers = tuple[tuple[bytes, bytes], ...]
Ready = Callable[[UpstreamConnection | ProxyError], None]  # the pool's `Ready`

# Streams a connection takes before the server's SETTINGS say how many (Go's transport).
INITIAL_STREAMS = 100
# What the backend may send on one stream before the proxy has relayed it (the bound on
# what a paused stream holds), and on the connection over all its streams.
_STREAM_WINDOW = 256 << 10
_CONNECTION_WINDOW = 32 << 20
_CANCEL = int(h2.errors.ErrorCodes.CANCEL)
_CLOSED = h2.connection.ConnectionState.CLOSED
_REFUSED = int(h2.errors.ErrorCodes.REFUSED_STREAM)
# Interim (1xx) heads a response may have before its final one; one more and the client
# gets a 502. Go's HTTP/1 transport allows 5 (max1xxResponses); a backend sending them
# without end would otherwise hold a stream and make the proxy relay them forever.
_INTERIM_ALLOWED = 5
# Request fields HTTP/2 forbids (RFC 9113 §8.2.2), and Host, which becomes :authority.
_DROPPED = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade")
) | {b"te", b"host"}

_CONFIG = h2.config.H2Configuration(
    client_side=True,
    header_encoding=None,
    validate_inbound_headers=True,
    normalize_inbound_headers=True,
    validate_outbound_headers=False,  # the proxy's own fields, built valid
    normalize_outbound_headers=False,
)

# Body framing of a request as dispatch built it.
_NONE = 0  # no body: END_STREAM with the head
_LENGTH = 1  # Content-Length: the end is the last byte counted
_CHUNKED = 2  # the front end's chunked framing, whole chunks per write: unwrapped here


class H2Stream(UpstreamConnection):
    """One request on an `H2Upstream`, driven by its owner like an HTTP/1.1 connection."""

    __slots__ = (
        "blocked",
        "body",
        "connection",
        "ended",
        "ending",
        "framing",
        "head_ended",
        "held",
        "held_flow",
        "interim",
        "left",
        "outgoing",
        "paused_owner",
        "request_done",
        "stream_id",
    )

    def __init__(self, connection: H2Upstream, stream_id: int, reused: bool) -> None:
        # Not UpstreamConnection.__init__: no parser, no transport of its own. Only what the
        # owners read of a connection is set.
        self.pool = connection  # the `Home` of a stream: `release` retires it
        self.connection = connection
        self.stream_id = stream_id
        self.transport = None
        self.tunnel = None
        self.owner: Owner | None = None
        self.head = ResponseHead()
        self.status = 0
        self.closed = False
        self.reused = reused
        self.got_bytes = False
        self.head_only = False
        self.reading_paused = False
        self.keep_alive = True
        self.body_left = 0  # the parser's bypass (UpstreamConnection): never here
        self.idle_since = 0.0
        self.trailers = ()
        self.unprocessed = False
        self.framing = _NONE
        self.left = 0  # request body bytes still to come (_LENGTH)
        self.request_done = False  # END_STREAM sent
        self.outgoing: list[bytes] = []  # request body bytes the backend's window holds back
        self.blocked = False  # `outgoing` is not empty
        self.paused_owner = False  # the owner was told upstream_pause
        self.held: list[bytes] = []  # response body held while the owner does not read
        self.held_flow = 0  # their flow-controlled size, given back on resume
        self.ended = False  # the backend ended the stream (reported once `held` is out)
        self.ending = False  # its END_STREAM came with (or before) the DATA being delivered
        self.body = False  # DATA seen (a head without a length is framed by the stream)
        self.interim = 0  # 1xx heads received (bounded: `_INTERIM_ALLOWED`)
        self.head_ended = False  # the final head ended the stream (no body, no trailers)

    # -- used by the owner (the calls of UpstreamConnection)

    def send(self, owner: Owner, data: bytes, head_only: bool) -> None:
        self.owner = owner
        self.head_only = head_only
        cut = data.find(b"\r\n\r\n")
        fields, self.framing, self.left = _request_fields(data[:cut], self.connection.scheme, owner)
        connection = self.connection
        try:
            connection.h2.send_headers(self.stream_id, fields, end_stream=self.framing == _NONE)
        except h2.exceptions.ProtocolError as exc:  # the connection went away meanwhile
            # Reported once `attach` has returned: until then the owner is not the one
            # that hears of the stream (the HTTP/2 front end hands it over in `attached`).
            self.closed = True
            asyncio.get_running_loop().call_soon(connection.lose, self, exc)
            return
        self.request_done = self.framing == _NONE
        rest = data[cut + 4 :]
        if rest:
            self.write(rest)
        else:
            connection.flush()

    def write(self, data: bytes) -> None:
        if self.request_done or self.closed:
            return
        end = False
        if self.framing == _CHUNKED:
            parts, end = _unchunk(data)
        else:
            parts = [data]
            self.left -= len(data)
            end = self.left <= 0
        outgoing = self.outgoing
        outgoing += [p for p in parts if p]
        if end:
            outgoing.append(b"")  # the end marker
        self.push()
        self.connection.flush()

    def push(self) -> None:
        """Send what the backend's window takes; END_STREAM (with trailers) after the last."""
        conn = self.connection.h2
        outgoing = self.outgoing
        stream_id = self.stream_id
        try:
            while outgoing:
                data = outgoing[0]
                if not data:
                    outgoing.pop(0)
                    self._end_request(conn)
                    break
                room = min(conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size)
                if room <= 0:
                    break
                if len(data) <= room:
                    outgoing.pop(0)
                    conn.send_data(stream_id, data)
                else:
                    conn.send_data(stream_id, data[:room])
                    outgoing[0] = data[room:]
        except h2.exceptions.ProtocolError:
            outgoing.clear()  # the stream closed meanwhile (reset): nothing more to send
        self.blocked = bool(outgoing)
        self.flow()

    def _end_request(self, conn: h2.connection.H2Connection) -> None:
        self.request_done = True
        trailers = getattr(self.owner, "request_trailers", None)  # an HTTP/2 client's
        if trailers:
            conn.send_headers(self.stream_id, trailers, end_stream=True)
        else:
            conn.end_stream(self.stream_id)

    def flow(self) -> None:
        """Tell the owner to pause or resume what it sends, on a change only."""
        pause = self.blocked or self.connection.writing_paused
        owner = self.owner
        if pause != self.paused_owner and owner is not None:
            self.paused_owner = pause
            if pause:
                owner.upstream_pause()
            else:
                owner.upstream_resume()

    def pause_reading(self) -> None:
        self.reading_paused = True

    def resume_reading(self) -> None:
        if not self.reading_paused:
            return
        self.reading_paused = False
        held, self.held = self.held, []
        flow, self.held_flow = self.held_flow, 0
        for data in held:
            if self.owner is None:
                return
            self._deliver(data)
        connection = self.connection
        if flow and not self.closed:
            connection.ack(self.stream_id, flow)
        if self.ended and not self.held:
            self._done()
        connection.flush()

    def close(self) -> None:
        """The owner is done with the stream before its natural end: reset it."""
        self.connection.cancel(self)

    def abort(self) -> None:
        self.connection.cancel(self)

    # -- asyncio.Protocol: a stream has no socket of its own

    def data_received(self, data: bytes) -> None:
        raise AssertionError("an HTTP/2 stream is fed by its connection")

    def connection_lost(self, exc: Exception | None) -> None:
        raise AssertionError("an HTTP/2 stream is ended by its connection")

    def pause_writing(self) -> None:
        raise AssertionError("an HTTP/2 stream is paused by its connection")

    def resume_writing(self) -> None:
        raise AssertionError("an HTTP/2 stream is resumed by its connection")

    # -- what the connection reports

    def on_head(
        self, headers: list[tuple[bytes, bytes]], limits: tuple[int, int], ended: bool
    ) -> bool:
        """The response head (or an interim one; `ended`: it ends the stream, as a gRPC
        trailers-only answer does); False: refused (over the limits)."""
        owner = self.owner
        if owner is None:
            return True
        head = self.head
        head.reset()
        status = 0
        count = 0
        for name, value in headers:
            if name == b":status":
                status = int(value)
            else:
                count += 1
                head.add(name, value)
        self.got_bytes = True  # never retried: the backend did answer
        if count > limits[1] or status < 100:
            return False
        if status >= 200:
            self.status = status
            self.head_ended = ended
            if ended and not head.content_length:
                # No body: said with a length, so that each front end ends the response
                # with its head (a gRPC client reads the status from a HEADERS frame
                # with END_STREAM only), as Go's server adds it for an empty body.
                head.content_length = b"0"
            elif not head.content_length:
                head.te = b"chunked"  # framed by the stream: the end of a socket is no end
        owner.upstream_head(self, status, head)
        return True

    def on_data(self, data: bytes, flow: int) -> None:
        self.body = True
        if self.reading_paused:
            self.held.append(data)
            self.held_flow += flow
            return
        self._deliver(data)
        if flow and self.owner is not None:
            self.connection.ack(self.stream_id, flow)

    def _deliver(self, data: bytes) -> None:
        owner = self.owner
        if owner is None:
            return
        if self.head_only:
            return  # HEAD: no body, whatever the backend sends
        try:
            owner.upstream_body(data)
        except Exception as exc:
            self._fail(owner, exc)

    def on_end(self) -> None:
        self.ended = True
        if not self.held:
            self._done()

    def _done(self) -> None:
        owner = self.owner
        if owner is None or self.status == 0:
            return
        self.owner = None
        self.ended = False
        whole = self.request_done
        if not whole:
            # The backend answered before the request's end (a gRPC error, an early 413):
            # the rest of the request is not wanted.
            self.connection.cancel(self, keep_owner=True)
        try:
            owner.upstream_done(self, whole)
        except Exception as exc:
            self._fail(owner, exc)

    def _fail(self, owner: Owner, exc: BaseException) -> None:
        self.owner = None
        self.connection.cancel(self)
        owner.upstream_failed(self, exc)

    def refused(self) -> None:
        """The backend did not process the request (RST_STREAM(REFUSED_STREAM), or a
        GOAWAY below it): dispatch sends it once more on another connection whatever its
        method, when its body can be sent again (edge/http/exchange.py `retryable`)."""
        self.reused = True
        self.got_bytes = False
        self.unprocessed = True

    def on_lost(self) -> None:
        """Reset by the backend, refused by its GOAWAY, or its connection ended."""
        self.closed = True
        owner, self.owner = self.owner, None
        if owner is not None:
            try:
                owner.upstream_lost(self)
            except Exception as exc:
                owner.upstream_failed(self, exc)


class H2Upstream(asyncio.Protocol):
    """One HTTP/2 connection to a backend; the `Home` of its streams."""

    __slots__ = (
        "closed",
        "h2",
        "heard",
        "idle_since",
        "key",
        "limits",
        "max_streams",
        "mux",
        "pinged",
        "reading",
        "reads",
        "reads_seen",
        "scheme",
        "served",
        "settings_seen",
        "settled",
        "streams",
        "transport",
        "usable",
        "writing_paused",
    )

    def __init__(self, key: PoolKey, mux: Multiplexed) -> None:
        self.key = key
        self.mux = mux
        self.scheme = b"https" if key.scheme == "https" else b"http"
        self.h2 = h2.connection.H2Connection(_CONFIG)
        options = key.transport
        self.limits = (options.max_response_header_bytes, options.max_response_header_count)
        self.h2.decoder.max_header_list_size = options.max_response_header_bytes
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, H2Stream] = {}
        self.max_streams = INITIAL_STREAMS
        self.served = 0  # streams opened: a later one counts as a reused connection
        self.usable = True  # no GOAWAY seen, not closed
        self.closed = False
        self.writing_paused = False
        self.reading = False
        self.idle_since = 0.0
        # Health pings (`check`): reads counted (no clock read per read), the count and
        # time the last check saw them change, when a PING went out (0: none waits).
        self.reads = 0
        self.reads_seen = 0
        self.heard = 0.0
        self.pinged = 0.0
        # Called once the server's first SETTINGS are in (with the connection), or with
        # the error if it ends before: streams are handed out only then, so that none is
        # sent past the server's limit and refused (set by the pool's dial).
        self.settled: Callable[[H2Upstream | ProxyError], None] | None = None
        self.settings_seen = False  # they may come before the dial's task resumes

    # -- the pool's side

    def has_room(self) -> bool:
        return self.usable and len(self.streams) < self.max_streams

    def open_stream(self) -> H2Stream:
        stream_id = self.h2.get_next_available_stream_id()
        stream = self.streams[stream_id] = H2Stream(self, stream_id, self.served > 0)
        self.served += 1
        return stream

    def release(self, conn: UpstreamConnection, now: float) -> None:
        """The owner is done with a stream that ended whole (the `Home` call)."""
        stream = cast(H2Stream, conn)
        stream.owner = None
        self._retire(stream, now)

    def forget(self, conn: UpstreamConnection) -> None:
        self._retire(cast(H2Stream, conn), 0.0)

    def _retire(self, stream: H2Stream, now: float) -> None:
        stream.closed = True
        if self.streams.pop(stream.stream_id, None) is not None and not self.streams:
            self.idle_since = now or asyncio.get_running_loop().time()
            if not self.usable:
                self.close()

    def cancel(self, stream: H2Stream, keep_owner: bool = False) -> None:
        """Reset a stream the proxy no longer wants (its client left, or was answered)."""
        if not keep_owner:
            stream.owner = None
            self._retire(stream, 0.0)
        stream.outgoing.clear()
        stream.request_done = True
        with contextlib.suppress(h2.exceptions.ProtocolError, KeyError):
            self.h2.reset_stream(stream.stream_id, _CANCEL)
        self.flush()

    def ack(self, stream_id: int, flow: int) -> None:
        with contextlib.suppress(h2.exceptions.ProtocolError, KeyError):
            self.h2.acknowledge_received_data(flow, stream_id)

    def lose(self, stream: H2Stream, exc: BaseException | None) -> None:
        if exc is not None and log.isEnabledFor(logging.DEBUG):
            log.debug("HTTP/2 stream to %s lost: %s", self.key.host, exc)
        self.streams.pop(stream.stream_id, None)
        stream.on_lost()

    def flush(self) -> None:
        """Write what the library queued (a read writes once, at its end)."""
        if self.reading or self.transport is None:
            return
        data = self.h2.data_to_send()
        if data and not self.closed:
            self.transport.write(data)

    def close(self) -> None:
        self.usable = False
        if self.transport is not None and not self.closed:
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self.h2.close_connection()
            self.reading = False
            self.flush()
            self.transport.close()
        self.closed = True

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        conn = self.h2
        codes = h2.settings.SettingCodes
        conn.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                codes.ENABLE_PUSH: 0,
                codes.INITIAL_WINDOW_SIZE: _STREAM_WINDOW,
                codes.MAX_HEADER_LIST_SIZE: self.limits[0],
            },
        )
        conn.initiate_connection()
        conn.increment_flow_control_window(_CONNECTION_WINDOW - 65535)
        self.flush()

    def data_received(self, data: bytes) -> None:
        self.reads += 1
        self.reading = True
        try:
            try:
                events = self.h2.receive_data(data)
            except h2.exceptions.ProtocolError as exc:
                self._broken(exc)
                return
            if self.h2.state_machine.state is _CLOSED:
                # A GOAWAY among these frames: h2 takes no new stream from now on, even
                # while the events before it (its SETTINGS, say) are handled.
                self.usable = False
            for event in events:
                self._event(event)
        finally:
            self.reading = False
        self.flush()

    def _event(self, event: h2.events.Event) -> None:
        kind = type(event)
        stream_id = getattr(event, "stream_id", 0)
        stream = self.streams.get(stream_id) if stream_id else None
        if kind is h2.events.DataReceived:
            data_event = cast(h2.events.DataReceived, event)
            if stream is not None and stream.owner is not None:
                if data_event.stream_ended is not None:
                    stream.ending = True  # no trailers: the last DATA may end the response
                stream.on_data(data_event.data or b"", data_event.flow_controlled_length or 0)
            else:  # a stream no longer wanted: the window is given back
                self.ack(stream_id, data_event.flow_controlled_length or 0)
        elif kind is h2.events.ResponseReceived:
            if stream is not None:
                response = cast(h2.events.ResponseReceived, event)
                ended = response.stream_ended is not None
                if not stream.on_head(response.headers or [], self.limits, ended):
                    self._refuse(stream)
        elif kind is h2.events.InformationalResponseReceived:
            # A 1xx (103 Early Hints, 100 Continue): relayed by the owner; it has no
            # `stream_ended` (RFC 9113 §8.1: an interim head never ends a stream).
            if stream is not None:
                interim = cast(h2.events.InformationalResponseReceived, event)
                stream.interim += 1
                limits = self.limits
                if stream.interim > _INTERIM_ALLOWED or not stream.on_head(
                    interim.headers or [], limits, False
                ):
                    self._refuse(stream)
        elif kind is h2.events.TrailersReceived:
            if stream is not None:
                trailers = cast(h2.events.TrailersReceived, event).headers or []
                stream.trailers = tuple(trailers)
        elif kind is h2.events.StreamEnded:
            if stream is not None:
                stream.on_end()
        elif kind is h2.events.StreamReset:
            if stream is not None:
                code = cast(h2.events.StreamReset, event).error_code
                if code == _REFUSED and not stream.got_bytes:
                    stream.refused()  # RFC 9113 §8.7: not processed, safe to send again
                else:
                    stream.got_bytes = True  # it may have been processed: never resent
                self.lose(stream, None)
        elif kind is h2.events.WindowUpdated:
            self._window(stream)
        elif kind is h2.events.RemoteSettingsChanged:
            self.max_streams = min(self.h2.remote_settings.max_concurrent_streams, 1 << 16)
            self._window(None)  # the initial window may have grown
            self.settings_seen = True
            settled, self.settled = self.settled, None
            if settled is not None:
                settled(self)
        elif kind is h2.events.ConnectionTerminated:
            self._goaway(cast(h2.events.ConnectionTerminated, event).last_stream_id or 0)

    def check(self, now: float, read_idle: float, ping_timeout: float) -> None:
        """A health check (the worker's tick, Go's ReadIdleTimeout and PingTimeout): a
        connection that has read nothing for `read_idle` is sent a PING; one that still
        reads nothing `ping_timeout` after it is dead (a peer gone without a FIN), so it
        is aborted and its streams are lost rather than left waiting forever."""
        if self.closed:
            return
        if self.reads != self.reads_seen or not self.heard:
            self.reads_seen = self.reads
            self.heard = now
            self.pinged = 0.0
        elif self.pinged:
            if now - self.pinged >= ping_timeout:
                self._broken(TimeoutError("no frame within pingTimeout of a PING"))
        elif now - self.heard >= read_idle:
            self.pinged = now
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self.h2.ping(b"proxynow")
            self.flush()

    def _refuse(self, stream: H2Stream) -> None:
        """A response not to relay (over the limits): the stream is reset, its owner
        hears of a lost backend (a 502)."""
        self.cancel(stream, keep_owner=True)
        self.lose(stream, None)

    def _window(self, stream: H2Stream | None) -> None:
        if stream is not None:
            if stream.blocked:
                stream.push()
            return
        for waiting in [s for s in self.streams.values() if s.blocked]:
            waiting.push()

    def _goaway(self, last_stream_id: int) -> None:
        """The backend takes no new streams; those above `last_stream_id` were never
        processed (RFC 9113 §6.8), so they may be sent again elsewhere."""
        self.usable = False
        for stream_id, stream in list(self.streams.items()):
            if stream_id > last_stream_id:
                stream.refused()  # never processed: safe to send again (RFC 9113 §8.7)
                self.lose(stream, None)
        if not self.streams:
            self.close()

    def _broken(self, exc: BaseException) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("HTTP/2 connection to %s broken: %s", self.key.host, exc)
        self.usable = False
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.usable = False
        self.mux.forget(self)
        settled, self.settled = self.settled, None
        if settled is not None:
            settled(BadGateway("the HTTP/2 backend closed before its SETTINGS"))
        for stream in list(self.streams.values()):
            self.lose(stream, exc)

    def pause_writing(self) -> None:
        self.writing_paused = True
        for stream in list(self.streams.values()):
            stream.flow()

    def resume_writing(self) -> None:
        self.writing_paused = False
        for stream in list(self.streams.values()):
            stream.flow()


class Multiplexed:
    """A pool's HTTP/2 connections, and the requests waiting for one being dialed."""

    __slots__ = ("connections", "dialing", "h2", "waiting")

    def __init__(self, known: bool) -> None:
        self.connections: list[H2Upstream] = []
        self.dialing = 0
        self.waiting: list[Ready] = []
        # True: the server speaks HTTP/2 (h2c, or ALPN chose h2); False: ALPN chose
        # http/1.1 (the pool's HTTP/1.1 connections serve it); None: not known yet.
        self.h2: bool | None = True if known else None

    def acquire(self) -> H2Stream | None:
        """A new stream on the most recent connection with room, or None."""
        for conn in reversed(self.connections):
            if conn.has_room():
                return conn.open_stream()
        return None

    def wait(self, ready: Ready) -> bool:
        """Whether `ready` waits for a dial in progress (True), or dials (False)."""
        if self.h2 is False:
            return False
        if self.dialing and len(self.waiting) < self.dialing * INITIAL_STREAMS - self.dialing:
            self.waiting.append(ready)
            return True
        self.dialing += 1
        return False

    def dialed(
        self, result: UpstreamConnection | H2Upstream | ProxyError, ready: Ready
    ) -> list[Ready]:
        """A dial of this pool ended (an HTTP/2 one once the server's SETTINGS are in):
        hand streams out to its requester and the waiters; returns the requesters that
        need a dial of their own."""
        if self.h2 is not False:
            self.dialing = max(self.dialing - 1, 0)
        waiting, self.waiting = self.waiting, []
        if isinstance(result, H2Upstream):
            self.h2 = True
            if not result.has_room() and not result.streams:
                # SETTINGS_MAX_CONCURRENT_STREAMS 0 (or a GOAWAY already): it will never
                # take a stream, and dialing again would loop against it.
                result.close()
                result = BadGateway("the HTTP/2 backend takes no streams")
                for requester in (ready, *waiting):
                    requester(result)
                return []
            self.connections.append(result)
            more: list[Ready] = []
            for requester in (ready, *waiting):
                stream = self.acquire()
                if stream is None:  # the new connection is full: another one
                    more.append(requester)
                else:
                    requester(stream)
            return more
        if isinstance(result, UpstreamConnection):  # ALPN chose http/1.1
            self.h2 = False
            ready(result)
            return waiting  # each gets an HTTP/1.1 connection of its own
        ready(result)
        for requester in waiting:
            requester(result)
        return []

    def forget(self, conn: H2Upstream) -> None:
        if conn in self.connections:
            self.connections.remove(conn)

    def sweep(self, now: float, timeout: float, read_idle: float, ping_timeout: float) -> None:
        """Close the connections without streams for `timeout` (idleConnTimeout, 0:
        never), and check the health of the others when `read_idle` is set."""
        for conn in list(self.connections):
            if timeout > 0 and not conn.streams and conn.idle_since + timeout <= now:
                self.forget(conn)
                conn.close()
            elif read_idle > 0:
                conn.check(now, read_idle, ping_timeout)

    def close(self) -> None:
        for conn in self.connections:
            conn.close()
        self.connections = []


def _request_fields(
    head: bytes, scheme: bytes, owner: object
) -> tuple[list[tuple[bytes, bytes]], int, int]:
    """HTTP/2 fields of the HTTP/1.1 head dispatch built, its body framing, and length."""
    lines = head.split(b"\r\n")
    method, target, _ = lines[0].split(b" ", 2)
    fields: list[tuple[bytes, bytes]] = [(b":method", method), (b":scheme", scheme)]
    rest: list[tuple[bytes, bytes]] = []
    framing, length, grpc = _NONE, 0, False
    authority = b""
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.lower()
        value = value.strip()
        if name in _DROPPED:
            if name == b"host":
                authority = value
            elif name == b"transfer-encoding":
                framing = _CHUNKED
            continue
        if name == b"content-length":
            length = int(value)
            framing = _LENGTH if length else _NONE
        elif name == b"content-type":
            grpc = value.startswith(b"application/grpc")
        rest.append((name, value))
    fields += ((b":authority", authority), (b":path", target))
    if grpc:
        # gRPC servers require it (and gRPC clients always send it): the proxy dropped it
        # as hop-by-hop on the way in.
        rest.append((b"te", b"trailers"))
    return fields + rest, framing, length


def _unchunk(data: bytes) -> tuple[list[bytes], bool]:
    """The chunks' contents of the front end's own framing (whole chunks per write), and
    whether the last chunk is among them."""
    parts: list[bytes] = []
    at, size = 0, len(data)
    while at < size:
        eol = data.index(b"\r\n", at)
        length = int(data[at:eol], 16)
        if length == 0:
            return parts, True
        start = eol + 2
        parts.append(data[start : start + length])
        at = start + length + 2
    return parts, False
