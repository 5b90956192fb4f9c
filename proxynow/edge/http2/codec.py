"""The HTTP/2 codec behind a narrow interface: frames and HPACK in, calls on a handler out.

The front end (edge/http2/protocol.py) never touches the library: it feeds bytes to
`Codec.receive`, hears of requests, body data, resets and window updates through an
`Events` handler, and queues what it answers with `headers` (and `informational` for a
1xx), `data`, `reset`, `goaway`,
taking the bytes to write with `output` (one write per read batch). So another codec can
be put here without changing the front end (bench/h2_codec_count.py measures the
candidates; see docs/benchmarks.md, "HTTP/2 codec"). This module's `Codec` is on `h2`
(hyper-h2, pure Python), the fallback; edge/http2/ngcodec.py implements `ServerCodec` on
libnghttp2, the default where the library opens (edge/http2/choice.py picks).

What the library checks stays its job (RFC 9113 framing, stream states, flow-control
windows, HPACK with a bound on the decoded header list, CONTINUATION floods, the request
header rules of §8.2-8.3: lowercase names, no connection-specific fields, pseudo-headers;
cookie crumbs are joined, §8.2.3). Two choices are ours: the front end, not the library,
enforces maxConcurrentStreams, so that an extra stream gets RST_STREAM(REFUSED_STREAM) as
Go's server answers it rather than a connection error, and a stream the client reset still
counts until its upstream work ends (Rapid Reset, CVE-2023-44487); and responses are
not validated again on the way out (the front end builds them lowercase, without
connection-specific fields).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Protocol

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import hpack.exceptions
from hyperframe.exceptions import InvalidDataError
from hyperframe.frame import GoAwayFrame

__all__ = [
    "CANCEL",
    "ENHANCE_YOUR_CALM",
    "INTERNAL_ERROR",
    "NO_ERROR",
    "PROTOCOL_ERROR",
    "REFUSED_STREAM",
    "Codec",
    "CodecError",
    "Events",
    "Headers",
    "ServerCodec",
    "Settings",
]

Headers = list[tuple[bytes, bytes]]

# RFC 9113 §7 error codes, as the front end names them.
NO_ERROR = int(h2.errors.ErrorCodes.NO_ERROR)
PROTOCOL_ERROR = int(h2.errors.ErrorCodes.PROTOCOL_ERROR)
INTERNAL_ERROR = int(h2.errors.ErrorCodes.INTERNAL_ERROR)
REFUSED_STREAM = int(h2.errors.ErrorCodes.REFUSED_STREAM)
CANCEL = int(h2.errors.ErrorCodes.CANCEL)
ENHANCE_YOUR_CALM = int(h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
FRAME_SIZE_ERROR = int(h2.errors.ErrorCodes.FRAME_SIZE_ERROR)
COMPRESSION_ERROR = int(h2.errors.ErrorCodes.COMPRESSION_ERROR)
_GOAWAY = 0x7  # the frame type
# Control-frame floods (SETTINGS, PING, PRIORITY, empty DATA, WINDOW_UPDATE, unknown frames;
# CVE-2019-9512/9515/9518): such frames cost the proxy work and move nothing. A client may
# send this many in a row, counted since the last request, DATA payload or response DATA it
# let out (and afresh each second while streams are in flight); one more and the connection
# gets GOAWAY(ENHANCE_YOUR_CALM). Real clients send a few per request (a PING now and then,
# a WINDOW_UPDATE per 32 KiB read).
_CHAFF_ALLOWED = 1000
_CHAFF = (
    h2.events.PingReceived,
    h2.events.PingAckReceived,
    h2.events.RemoteSettingsChanged,
    h2.events.SettingsAcknowledged,
    h2.events.PriorityUpdated,
    h2.events.UnknownFrameReceived,
)

# The connection's receive window, as Go's server opens it (1 MiB): what the client may
# have sent that the proxy holds at once, over all of its streams; each stream is still
# bounded by its own window (RFC 9113 §6.9), so a few streams held by a slow backend do
# not stall the others.
_STREAM_WINDOW = 65535
_CONNECTION_WINDOW = 1 << 20


@dataclass(frozen=True, slots=True)
class Settings:
    """What a connection announces in its SETTINGS (Traefik's defaults)."""

    max_concurrent_streams: int = 250
    max_header_list_size: int = 1 << 20  # entryPoints.<n>.http.maxHeaderBytes
    header_table_size: int = 4096
    initial_window_size: int = _STREAM_WINDOW
    max_frame_size: int = 16384


class CodecError(Exception):
    """The client broke the protocol: the connection ends with GOAWAY(`code`) (already
    queued in `output`)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class Events(Protocol):
    """What the front end hears from `Codec.receive` (stream ids are the client's)."""

    def on_request(self, stream_id: int, headers: Headers, ended: bool) -> None: ...
    def on_data(self, stream_id: int, data: bytes, flow: int, ended: bool) -> None: ...
    def on_trailers(self, stream_id: int, headers: Headers) -> None: ...
    def on_reset(self, stream_id: int) -> None: ...
    def on_window(self, stream_id: int) -> None: ...  # 0: the connection's window
    def on_goaway(self) -> None: ...


class ServerCodec(Protocol):
    """What the front end calls on a codec: `Codec` below (on `h2`), or `NgCodec`
    (edge/http2/ngcodec.py, on libnghttp2); edge/http2/choice.py picks one."""

    chaff: int
    sent: int

    def __init__(self, settings: Settings) -> None: ...
    def start(self) -> None: ...
    def receive(self, data: bytes, handler: Events) -> None: ...
    def tick(self) -> None: ...
    def headers(self, stream_id: int, headers: Headers, end: bool) -> None: ...
    def informational(self, stream_id: int, headers: Headers) -> None: ...
    def data(self, stream_id: int, data: bytes, end: bool) -> None: ...
    def window(self, stream_id: int) -> int: ...
    def ack(self, stream_id: int, size: int) -> None: ...
    def reset(self, stream_id: int, code: int) -> None: ...
    def goaway(self, code: int) -> None: ...
    def drain(self) -> int: ...
    def output(self) -> bytes: ...


class _Connection(h2.connection.H2Connection):
    """h2's connection with its own stream limit lifted (see the module docstring)."""

    @property
    def open_inbound_streams(self) -> int:
        # The property's side effect stays: it drops closed streams from `streams`.
        h2.connection.H2Connection.open_inbound_streams.fget(self)  # type: ignore[attr-defined]
        return 0


_CONFIG = h2.config.H2Configuration(
    client_side=False,
    header_encoding=None,  # bytes in and out, as the rest of the data plane
    validate_inbound_headers=True,
    normalize_inbound_headers=True,
    validate_outbound_headers=False,
    normalize_outbound_headers=False,
)


class Codec:
    """One HTTP/2 server connection's framing, HPACK and flow-control state."""

    __slots__ = ("_conn", "_dispatch", "_held", "chaff", "sent", "settings")

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._held = b""
        # Frames that make no progress (see `_CHAFF_ALLOWED`) since the last that did.
        self.chaff = 0
        self.sent = 0  # DATA sends: the front end's write deadline sees whether it grows
        conn = self._conn = _Connection(_CONFIG)
        codes = h2.settings.SettingCodes
        conn.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                codes.MAX_CONCURRENT_STREAMS: settings.max_concurrent_streams,
                codes.MAX_HEADER_LIST_SIZE: settings.max_header_list_size,
                codes.HEADER_TABLE_SIZE: settings.header_table_size,
                codes.INITIAL_WINDOW_SIZE: settings.initial_window_size,
                codes.MAX_FRAME_SIZE: settings.max_frame_size,
            },
        )
        # Bounded from the first request on (h2 applies the setting only once acknowledged).
        conn.decoder.max_header_list_size = settings.max_header_list_size
        self._dispatch: dict[type, str] = {
            h2.events.RequestReceived: "request",
            h2.events.DataReceived: "data",
            h2.events.TrailersReceived: "trailers",
            h2.events.StreamReset: "reset",
            h2.events.WindowUpdated: "window",
            h2.events.ConnectionTerminated: "goaway",
        }
        for kind in _CHAFF:
            self._dispatch[kind] = "chaff"

    def start(self) -> None:
        """The server's preface: SETTINGS, and the connection window opened wide."""
        conn = self._conn
        conn.initiate_connection()
        conn.increment_flow_control_window(_CONNECTION_WINDOW - 65535)

    def receive(self, data: bytes, handler: Events) -> None:
        """Feed what the client sent; the handler hears of each event in order."""
        try:
            events = self._conn.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            code = self._recode(exc)
            raise CodecError(code, str(exc)) from exc
        dispatch = self._dispatch
        for event in events:
            kind = dispatch.get(type(event))
            if kind is None:
                continue  # StreamEnded, carried by the events it ends
            if kind == "request":
                self.chaff = 0
                request: h2.events.RequestReceived = event  # type: ignore[assignment]
                ended = request.stream_ended is not None
                handler.on_request(request.stream_id, request.headers, ended)
            elif kind == "data":
                data_event: h2.events.DataReceived = event  # type: ignore[assignment]
                if data_event.flow_controlled_length:
                    self.chaff = 0
                elif data_event.stream_ended is None:
                    self._chaff()  # empty DATA that does not even end its stream
                handler.on_data(
                    data_event.stream_id,
                    data_event.data,
                    data_event.flow_controlled_length,
                    data_event.stream_ended is not None,
                )
            elif kind == "trailers":
                trailers: h2.events.TrailersReceived = event  # type: ignore[assignment]
                handler.on_trailers(trailers.stream_id, trailers.headers)
            elif kind == "reset":
                handler.on_reset(event.stream_id)  # type: ignore[attr-defined]
            elif kind == "window":
                self._chaff()  # progress only once it lets a response out: `data` clears
                handler.on_window(event.stream_id)  # type: ignore[attr-defined]
            elif kind == "chaff":
                self._chaff()
            else:
                handler.on_goaway()

    def _chaff(self) -> None:
        self.chaff += 1
        if self.chaff > _CHAFF_ALLOWED:
            self.goaway(ENHANCE_YOUR_CALM)
            raise CodecError(ENHANCE_YOUR_CALM, "too many frames without progress")

    def tick(self) -> None:
        """Once a second (while streams are in flight): the budget is per second."""
        self.chaff = 0

    def _recode(self, exc: h2.exceptions.ProtocolError) -> int:
        """The code RFC 9113 requires where h2 says PROTOCOL_ERROR for all (its GOAWAY,
        the last frame queued, gets that code): a header block HPACK cannot decode is
        COMPRESSION_ERROR (§4.3), a SETTINGS ACK with a payload FRAME_SIZE_ERROR (§6.5).
        Only on the way out of a connection, so nothing on the normal path."""
        code = int(exc.error_code)
        cause = exc.__cause__
        if isinstance(cause, hpack.exceptions.HPACKError) and not isinstance(
            cause, hpack.exceptions.OversizedHeaderListError
        ):
            wanted = COMPRESSION_ERROR
        elif isinstance(cause, InvalidDataError) and str(cause).startswith("SETTINGS ack"):
            wanted = FRAME_SIZE_ERROR
        else:
            return code
        out = self._conn.data_to_send()
        if len(out) >= 17 and out[-14] == _GOAWAY:  # h2's GOAWAY: 9 + 8 bytes, no debug data
            out = out[:-4] + wanted.to_bytes(4, "big")
        self._held += out
        return wanted

    # -- what the front end sends (queued until `output`)

    def headers(self, stream_id: int, headers: Headers, end: bool) -> None:
        self._conn.send_headers(stream_id, headers, end_stream=end)

    def informational(self, stream_id: int, headers: Headers) -> None:
        """An interim (1xx) response head: a HEADERS frame that does not end the stream,
        before the final head (RFC 9113 §8.1)."""
        self._conn.send_headers(stream_id, headers, end_stream=False)

    def data(self, stream_id: int, data: bytes, end: bool) -> None:
        """Body bytes within `window(stream_id)` (split into frames by the library)."""
        conn = self._conn
        self.chaff = 0  # the client's WINDOW_UPDATEs let this out
        self.sent += 1
        frame = conn.max_outbound_frame_size
        if len(data) <= frame:
            conn.send_data(stream_id, data, end_stream=end)
            return
        view = memoryview(data)
        for at in range(0, len(data), frame):
            part = view[at : at + frame]
            conn.send_data(stream_id, part, end_stream=end and at + frame >= len(data))

    def window(self, stream_id: int) -> int:
        """How many body bytes the client lets the stream send now."""
        try:
            return self._conn.local_flow_control_window(stream_id)
        except h2.exceptions.StreamClosedError:
            return 0

    def ack(self, stream_id: int, size: int) -> None:
        """`size` received body bytes are forwarded: give the client its window back."""
        if size:
            self._conn.acknowledge_received_data(size, stream_id)

    def reset(self, stream_id: int, code: int) -> None:
        with contextlib.suppress(h2.exceptions.StreamClosedError):  # closed meanwhile
            self._conn.reset_stream(stream_id, code)

    def goaway(self, code: int) -> None:
        """GOAWAY for an error: the connection is over (nothing more is sent on it)."""
        conn = self._conn
        conn.close_connection(code, last_stream_id=conn.highest_inbound_stream_id)

    def drain(self) -> int:
        """A graceful GOAWAY(NO_ERROR) naming the last stream read, which leaves the
        connection open so that the streams up to it are still answered (h2's
        `close_connection` would end them too, so the frame is built here); returns that
        stream id: the front end refuses any stream above it."""
        conn = self._conn
        last = conn.highest_inbound_stream_id
        frame = GoAwayFrame(0, error_code=NO_ERROR, last_stream_id=last)
        self._held = conn.data_to_send() + frame.serialize()
        return last

    def output(self) -> bytes:
        """The bytes queued since the last call."""
        if self._held:
            held, self._held = self._held, b""
            return held + self._conn.data_to_send()
        return self._conn.data_to_send()
