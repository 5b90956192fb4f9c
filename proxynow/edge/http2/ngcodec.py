"""The HTTP/2 codec of codec.py's interface on libnghttp2 (through cffi, edge/http2/nglib.py).

The same calls and events as the `h2` codec (proxynow/edge/http2/codec.py, whose docstring
lists the behaviour both keep), for a fraction of its cost: framing, HPACK, stream states,
flow-control windows and the request header rules of RFC 9113 §8.2-8.3 (lowercase names,
no connection-specific fields, pseudo-headers, content-length against DATA) are
libnghttp2's, a C library that h2spec-conforming servers (nghttpd, Apache's mod_http2,
curl, Node) are built on. What stays here, in Python:

- the front end's own stream limit: libnghttp2 is told no limit (it would answer a stream
  past the announced one with a connection error), and the SETTINGS frame it sends is
  patched on the way out to announce the configured maxConcurrentStreams;
- the control-frame flood budget (1000 frames without progress, codec.py's rule, counted
  from the frames libnghttp2 reports; unknown frame types are taken as extensions so that
  they are counted too);
- the bound on the decoded header list (libnghttp2 leaves SETTINGS_MAX_HEADER_LIST_SIZE to
  the application): past it, GOAWAY(ENHANCE_YOUR_CALM) as for an HPACK bomb;
- a header field libnghttp2 is built to ignore rather than refuse (its
  `on_invalid_header` hook) refuses the request (in 1.52 every case tried is a stream error
  already: CR, LF, NUL or DEL in a value, uppercase or a non-token character in a name), and
  cookie crumbs are joined (§8.2.3);
- request body windows are given back only when the front end says so (`ack`): the
  library's automatic WINDOW_UPDATE is off.

A CONTINUATION flood is cut by libnghttp2 (at most 64 CONTINUATION frames per header block,
as `h2` bounds it: `nghttp2_option_set_max_continuations`, 1.61's fix, which Debian's 1.52
carries); a client resetting streams faster than 33/s after a burst of 1000 by the library
too (1.57's fix, carried as well), besides the front end's own Rapid Reset bound.

Callbacks are module-level `ffi.callback`s shared by every session (libnghttp2 copies the
callback table into each), kept alive by the module; each session's `user_data` is a cffi
handle of its codec (a cycle, which the cyclic GC collects with the session). An exception
in a callback (a bug in the front end) is kept and raised
again from `receive` once libnghttp2 returns.
"""

from __future__ import annotations

import struct
import sys
from typing import Any

from proxynow.edge.http2.codec import (
    ENHANCE_YOUR_CALM,
    INTERNAL_ERROR,
    NO_ERROR,
    PROTOCOL_ERROR,
    CodecError,
    Events,
    Headers,
    Settings,
)
from proxynow.edge.http2.nglib import ffi

__all__ = ["NgCodec", "available", "version"]

_lib: Any = None

# nghttp2.h's constants.
_ERR_DEFERRED = -508
_ERR_TEMPORAL_CALLBACK_FAILURE = -521
_ERR_CALLBACK_FAILURE = -902
_ERR_BAD_CLIENT_MAGIC = -903
_ERR_FLOODED = -904
_ERR_CANCEL = -535
_DATA_FLAG_EOF = 0x01
_DATA_FLAG_NO_END_STREAM = 0x02
_FLAG_END_STREAM = 0x01
_FLAG_ACK = 0x01
_DATA, _HEADERS, _PRIORITY, _RST_STREAM, _SETTINGS = 0x0, 0x1, 0x2, 0x3, 0x4
_PING, _GOAWAY, _WINDOW_UPDATE = 0x6, 0x7, 0x8
_HCAT_REQUEST = 0
_SETTINGS_HEADER_TABLE_SIZE = 0x1
_SETTINGS_MAX_CONCURRENT_STREAMS = 0x3
_SETTINGS_INITIAL_WINDOW_SIZE = 0x4
_SETTINGS_MAX_FRAME_SIZE = 0x5
_SETTINGS_MAX_HEADER_LIST_SIZE = 0x6
_NO_LIMIT = 2**31 - 1

# codec.py's rules, the same figures.
_CHAFF_ALLOWED = 1000
_STREAM_WINDOW = 65535
_CONNECTION_WINDOW = 1 << 20
# RFC 7541 §4.1: a field's size in the header list is its name and value plus 32.
_FIELD_OVERHEAD = 32
_MAX_CONTINUATIONS = 64
# Queued body bytes past which `window` serializes first (a frame's worth): below it a
# response's head and body wait for `output` together; above it, libnghttp2 reading a big
# buffer 16 KiB at a time cost more than the serializing saved.
_SERIALIZE_AT = 16384


class _Outbound:
    """A response body in flight: what the front end queued and libnghttp2 has not sent.

    The pieces as handed over (not joined into one buffer: that was two copies of every
    body, the join and the bytearray's shrinking as frames left), `at` bytes of the first
    already sent; each frame's payload is copied once, into libnghttp2's frame buffer."""

    __slots__ = ("at", "deferred", "end", "pieces", "size", "trailers")

    def __init__(self) -> None:
        self.pieces: list[bytes] = []
        self.at = 0
        self.size = 0  # bytes queued, not sent
        self.end = False
        self.deferred = False
        self.trailers: Headers | None = None


# Header fields handed to a submit function are packed, nv array then bytes, into one
# scratch buffer with one copy (`_fields`): building the array field by field through cffi
# costs ~30k instructions for a 3-field response, this ~4k. The library copies the fields
# when the frame is submitted, so one buffer serves every session (one thread per worker).
_NV = struct.Struct("=QQQQQ")  # nghttp2_nv on LP64: two pointers, two size_t, flags (+pad)
_SCRATCH_SIZE = 1 << 16
_scratch: Any = None
_scratch_at = 0
_scratch_nv: Any = None


def _fields(headers: Headers) -> tuple[Any, int, Any]:
    """Header fields as an `nghttp2_nv` array for the submit call that follows at once
    (with what keeps its bytes alive until then)."""
    count = len(headers)
    if _scratch is not None:
        base = _scratch_at
        at = base + 40 * count
        values: list[int] = []
        strings: list[bytes] = []
        for name, value in headers:
            size_name = len(name)
            size_value = len(value)
            values += (at, at + size_name, size_name, size_value, 0)
            strings.append(name)
            strings.append(value)
            at += size_name + size_value
        if at - base <= _SCRATCH_SIZE:
            # The array in one `pack_into` and the bytes in one copy (a `pack` per field
            # and a join of them cost twice as much).
            _nv_array(count).pack_into(_MEMORY, base, *values)
            _MEMORY[base + 40 * count : at] = b"".join(strings)
            return _scratch_nv, count, None
    return _nva(headers)


_NV_ARRAYS: dict[int, struct.Struct] = {}
_NV_ARRAYS_CACHED = 64  # field counts whose layout is kept (a response has a few)


def _nv_array(count: int) -> struct.Struct:
    """The layout of `nghttp2_nv[count]` (`_NV` repeated)."""
    layout = _NV_ARRAYS.get(count)
    if layout is None:
        layout = struct.Struct("=" + "QQQQQ" * count)
        if count <= _NV_ARRAYS_CACHED:
            _NV_ARRAYS[count] = layout
    return layout


def _nva(headers: Headers) -> tuple[Any, int, list[Any]]:
    """Header fields as an `nghttp2_nv` array of their own (a block past the scratch
    buffer, or a platform whose layout `_NV` does not describe)."""
    count = len(headers)
    nva = ffi.new("nghttp2_nv[]", count)
    keep = []
    from_buffer = ffi.from_buffer
    for index in range(count):
        name, value = headers[index]
        nv = nva[index]
        nv.name = cname = from_buffer(name)
        nv.value = cvalue = from_buffer(value)
        nv.namelen = len(name)
        nv.valuelen = len(value)
        keep.append(cname)
        keep.append(cvalue)
    return nva, count, keep


class NgCodec:
    """One HTTP/2 server connection on a libnghttp2 session (codec.py's `Codec` interface)."""

    __slots__ = (
        "_block",
        "_block_size",
        "_chunk",
        "_chunk_sid",
        "_cookies",
        "_exc",
        "_failure",
        "_goaway_out",
        "_handle",
        "_handler",
        "_held",
        "_out",
        "_own_goaway",
        "_pending",
        "_queued",
        "_room",
        "_session",
        "chaff",
        "sent",
        "settings",
    )

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.chaff = 0
        self.sent = 0
        self._held: list[bytes] = []
        self._pending = False  # something submitted that `_pump` has not serialized yet
        self._out: dict[int, _Outbound] = {}
        # Body bytes in `_out` that libnghttp2 has not read yet (they take their windows
        # when serialized), and the connection's send window as last asked (-1: ask again,
        # after a read of the client or a serialization): `window` needs no `_pump` first.
        self._queued = 0
        self._room = -1
        self._block: Headers = []  # the header block being decoded (one at a time)
        self._block_size = 0
        self._cookies: list[bytes] | None = None
        # DATA payload read of the frame being received: one `on_data` per frame (with its
        # END_STREAM), or at the end of `receive` for a frame that is not whole yet.
        self._chunk = b""
        self._chunk_sid = 0
        self._handler: Events | None = None
        self._exc: BaseException | None = None
        self._failure = 0  # the GOAWAY code of a callback's refusal (a flood, a bomb)
        self._goaway_out = b""  # the last GOAWAY serialized
        self._own_goaway = False
        self._handle = ffi.new_handle(self)
        pointer = ffi.new("nghttp2_session **")
        if _lib.nghttp2_session_server_new2(pointer, _CALLBACKS, self._handle, _OPTION) != 0:
            raise MemoryError("nghttp2_session_server_new2")
        self._session = ffi.gc(pointer[0], _lib.nghttp2_session_del)

    def start(self) -> None:
        """The server's preface: SETTINGS, and the connection window opened wide."""
        settings = self.settings
        entries = [
            (_SETTINGS_MAX_CONCURRENT_STREAMS, _NO_LIMIT),  # patched below, see the docstring
            (_SETTINGS_MAX_HEADER_LIST_SIZE, settings.max_header_list_size),
            (_SETTINGS_HEADER_TABLE_SIZE, settings.header_table_size),
            (_SETTINGS_INITIAL_WINDOW_SIZE, settings.initial_window_size),
            (_SETTINGS_MAX_FRAME_SIZE, settings.max_frame_size),
        ]
        iv = ffi.new("nghttp2_settings_entry[]", entries)
        session = self._session
        _lib.nghttp2_submit_settings(session, 0, iv, len(entries))
        _lib.nghttp2_submit_window_update(session, 0, 0, _CONNECTION_WINDOW - _STREAM_WINDOW)
        self._pending = True
        self._pump()
        first = self._held[0]
        # SETTINGS as libnghttp2 serializes them: a 9-byte frame header, then the entries in
        # the order given, 6 bytes each (the stream limit first).
        assert first[3] == _SETTINGS and first[9:11] == b"\x00\x03"
        limit = min(settings.max_concurrent_streams, _NO_LIMIT).to_bytes(4, "big")
        self._held[0] = first[:11] + limit + first[15:]

    # -- what the client sent

    def receive(self, data: bytes, handler: Events) -> None:
        """Feed what the client sent; the handler hears of each event in order."""
        self._handler = handler
        try:
            done = _lib.nghttp2_session_mem_recv(self._session, data, len(data))
            if self._exc is not None:
                exc, self._exc = self._exc, None
                raise exc
            if done < 0:
                self._fail(done)
            if self._chunk:
                self._flush_chunk(False)
            # Serialized now, so that a GOAWAY libnghttp2 queued for a connection error
            # is seen below.
            self._pump()
        finally:
            self._handler = None
        if self._goaway_out and not self._own_goaway:
            code = int.from_bytes(self._goaway_out[13:17], "big")
            if code != NO_ERROR:
                raise CodecError(code, "the client broke the protocol (GOAWAY sent)")

    def _fail(self, code: int) -> None:
        """libnghttp2 stopped reading: a callback refused (a flood, a bomb), or it found an
        error it does not answer itself."""
        if code == _ERR_CALLBACK_FAILURE and self._failure:
            wanted = self._failure
            reason = "too many frames without progress, or a header list past the bound"
        elif code == _ERR_FLOODED:
            wanted, reason = ENHANCE_YOUR_CALM, "the client does not read what it asks for"
        elif code == _ERR_BAD_CLIENT_MAGIC:
            wanted, reason = PROTOCOL_ERROR, "not the HTTP/2 connection preface"
        else:
            wanted = PROTOCOL_ERROR if code > -900 else INTERNAL_ERROR
            reason = ffi.string(_lib.nghttp2_strerror(code)).decode("ascii", "replace")
        self.goaway(wanted)
        self._pump()
        raise CodecError(wanted, reason)

    def _chaff(self) -> bool:
        """One more frame without progress; False (the callback refuses) past the budget."""
        self.chaff += 1
        if self.chaff > _CHAFF_ALLOWED:
            self._failure = ENHANCE_YOUR_CALM
            return False
        return True

    def tick(self) -> None:
        """Once a second (while streams are in flight): the budget is per second."""
        self.chaff = 0

    def _frame(self, frame: Any) -> int:
        hd = frame.hd
        kind = hd.type
        handler = self._handler
        assert handler is not None
        if kind == _HEADERS:
            block = self._block
            if self._cookies is not None:
                block.append((b"cookie", b"; ".join(self._cookies)))
            self._new_block()
            ended = bool(hd.flags & _FLAG_END_STREAM)
            if frame.headers.cat == _HCAT_REQUEST:
                self.chaff = 0
                handler.on_request(hd.stream_id, block, ended)
            else:
                handler.on_trailers(hd.stream_id, block)
        elif kind == _DATA:
            ended = bool(hd.flags & _FLAG_END_STREAM)
            if self._chunk:
                self._flush_chunk(ended)
            elif ended:
                handler.on_data(hd.stream_id, b"", 0, True)
            elif hd.length == frame.data.padlen and not self._chaff():
                return _ERR_CALLBACK_FAILURE  # empty DATA that does not even end its stream
        elif kind == _WINDOW_UPDATE:
            if not self._chaff():  # progress only once it lets a response out: `data`
                return _ERR_CALLBACK_FAILURE
            self._room = -1  # the connection's window may have grown
            handler.on_window(hd.stream_id)
        elif kind == _RST_STREAM:
            self._forget(hd.stream_id)
            handler.on_reset(hd.stream_id)
        elif kind == _GOAWAY:
            handler.on_goaway()
        elif not self._chaff():  # SETTINGS, PING, PRIORITY (and their ACKs)
            return _ERR_CALLBACK_FAILURE
        return 0

    def _new_block(self) -> None:
        """The next header block starts empty (after a whole one, or one refused midway)."""
        self._block = []
        self._block_size = 0
        self._cookies = None

    def _data_chunk(self, stream_id: int, chunk: bytes) -> None:
        self.chaff = 0
        if self._chunk:  # a frame read in pieces within one `receive`
            self._chunk += chunk
        else:
            self._chunk = chunk
            self._chunk_sid = stream_id

    def _flush_chunk(self, ended: bool) -> None:
        chunk, self._chunk = self._chunk, b""
        handler = self._handler
        assert handler is not None
        handler.on_data(self._chunk_sid, chunk, len(chunk), ended)

    def _refused(self, frame: Any) -> None:
        """libnghttp2 answered a frame with a stream error (RST_STREAM) or ends the
        connection: a header block it stopped passing on leaves nothing to the next one,
        and a stream the front end knows is a reset one to it (content-length against
        DATA, a stream window overflowed)."""
        hd = frame.hd
        if hd.type == _HEADERS:
            self._new_block()
        stream_id = hd.stream_id
        if stream_id:
            self._forget(stream_id)
            handler = self._handler
            if handler is not None:
                handler.on_reset(stream_id)

    def _forget(self, stream_id: int) -> None:
        """A response body that will not be sent (its stream reset)."""
        out = self._out.pop(stream_id, None)
        if out is not None:
            self._queued -= out.size

    def _read(self, stream_id: int, buf: Any, length: int, flags: Any) -> int:
        """libnghttp2 asks for up to `length` bytes of a response body."""
        out = self._out.get(stream_id)
        if out is None:
            flags[0] = _DATA_FLAG_EOF
            return 0
        size = out.size
        if size > length:
            size = length
        if size:
            _fill(out, buf, size)
        self._queued -= size
        if not out.size:
            if out.end:
                del self._out[stream_id]  # the last of it: libnghttp2 ends the stream
                trailers = out.trailers
                if trailers is None:
                    flags[0] = _DATA_FLAG_EOF
                else:
                    flags[0] = _DATA_FLAG_EOF | _DATA_FLAG_NO_END_STREAM
                    nva, count, _keep = _fields(trailers)
                    _lib.nghttp2_submit_trailer(self._session, stream_id, nva, count)
            elif not size:
                out.deferred = True
                return _ERR_DEFERRED
        return size

    # -- what the front end sends (queued until `output`)

    def headers(self, stream_id: int, headers: Headers, end: bool) -> None:
        out = self._out.get(stream_id)
        session = self._session
        if out is not None:  # trailers: after the body still queued
            out.trailers = headers
            out.end = True
            self._resume(stream_id, out)
            return
        nva, count, _keep = _fields(headers)
        if end:
            _lib.nghttp2_submit_response(session, stream_id, nva, count, ffi.NULL)
        else:
            self._out[stream_id] = _Outbound()
            _lib.nghttp2_submit_response(session, stream_id, nva, count, _PROVIDER)
        self._pending = True

    def informational(self, stream_id: int, headers: Headers) -> None:
        """An interim (1xx) response head: HEADERS without END_STREAM before the final one
        (libnghttp2 takes a non-final response through `nghttp2_submit_headers`)."""
        nva, count, _keep = _fields(headers)
        _lib.nghttp2_submit_headers(self._session, 0, stream_id, ffi.NULL, nva, count, ffi.NULL)
        self._pending = True

    def _resume(self, stream_id: int, out: _Outbound) -> None:
        if out.deferred:
            out.deferred = False
            _lib.nghttp2_session_resume_data(self._session, stream_id)
        self._pending = True

    def data(self, stream_id: int, data: bytes, end: bool) -> None:
        """Body bytes within `window(stream_id)` (split into frames by the library)."""
        self.chaff = 0  # the client's WINDOW_UPDATEs let this out
        self.sent += 1
        out = self._out.get(stream_id)
        if out is None:
            return  # the stream is over (reset meanwhile)
        if data:
            out.pieces.append(data)
            out.size += len(data)
            self._queued += len(data)
        if end:
            out.end = True
        self._resume(stream_id, out)

    def window(self, stream_id: int) -> int:
        """How many body bytes the client lets the stream send now: the windows less
        what is queued and not serialized yet (which takes its share when it is), so that
        a response's head and body are serialized together, once, by `output`."""
        if self._queued >= _SERIALIZE_AT:
            self._pump()  # a big body queued: serialized now, its buffer kept small
        session = self._session
        stream = _lib.nghttp2_session_get_stream_remote_window_size(session, stream_id)
        out = self._out.get(stream_id)
        if out is not None:
            stream -= out.size
        if stream <= 0:
            return 0
        room = self._room
        if room < 0:
            room = self._room = _lib.nghttp2_session_get_remote_window_size(session)
        connection = room - self._queued
        return stream if stream < connection else max(connection, 0)

    def ack(self, stream_id: int, size: int) -> None:
        """`size` received body bytes are forwarded: give the client its window back."""
        if size:
            _lib.nghttp2_session_consume(self._session, stream_id, size)
            self._pending = True

    def reset(self, stream_id: int, code: int) -> None:
        self._forget(stream_id)
        _lib.nghttp2_submit_rst_stream(self._session, 0, stream_id, code)
        self._pending = True

    def goaway(self, code: int) -> None:
        """GOAWAY for an error: the connection is over (nothing more is sent on it)."""
        self._own_goaway = True
        _lib.nghttp2_session_terminate_session(self._session, code)
        self._pending = True

    def drain(self) -> int:
        """A graceful GOAWAY(NO_ERROR) naming the last stream read; the streams up to it are
        still answered, newer ones are ignored by libnghttp2 (RFC 9113 §6.8). Returns it."""
        session = self._session
        last = _lib.nghttp2_session_get_last_proc_stream_id(session)
        _lib.nghttp2_submit_goaway(session, 0, last, NO_ERROR, ffi.NULL, 0)
        self._pending = True
        return int(last)

    def _pump(self) -> None:
        """Serialize what libnghttp2 has queued into `_held`."""
        self._pending = False
        self._room = -1  # DATA serialized takes the connection's window
        session = self._session
        pointer = _SEND_POINTER
        held = self._held
        memory = _MEMORY
        while True:
            size = _lib.nghttp2_session_mem_send(session, pointer)
            if size <= 0:
                break
            at = pointer[0]
            chunk = memory[at : at + size]
            if chunk[3] == _GOAWAY:
                self._goaway_out = chunk
            held.append(chunk)
        if self._exc is not None:
            exc, self._exc = self._exc, None
            raise exc

    def output(self) -> bytes:
        """The bytes queued since the last call."""
        if self._pending:
            self._pump()
        held = self._held
        if not held:
            return b""
        self._held = []
        return held[0] if len(held) == 1 else b"".join(held)


def _fill(out: _Outbound, buf: int, size: int) -> None:
    """Copy `size` queued bytes (no more than `out` holds) to `buf`, a frame's payload."""
    pieces = out.pieces
    at = out.at
    out.size -= size
    while size:
        piece = pieces[0]
        take = len(piece) - at
        if take > size:
            take = size
        if take == len(piece):
            _MEMORY[buf : buf + take] = piece
            del pieces[0]
        else:
            _MEMORY[buf : buf + take] = memoryview(piece)[at : at + take]
            at += take
            if at == len(piece):
                del pieces[0]
                at = 0
        buf += take
        size -= take
    out.at = at


# -- the callbacks (module-level, shared by every session)


# The backend's function (`_cffi_backend`'s), not a Python method around it: every
# callback starts with it (8 a request). The pre-parsed `ffi` (nglib_ffi.py) is the
# backend's own object; the one parsed at import (nglib.py's fallback) wraps it.
_from_handle = getattr(ffi, "_backend", ffi).from_handle
# The process's memory as one buffer, indexed by the addresses libnghttp2 passes as
# `uintptr_t` (nglib.py): a field's bytes are `_MEMORY[name:name + namelen]`, one slice,
# where a `char *` would cost a cdata object and an `ffi.unpack` (~1,900 instructions a
# field). Only addresses libnghttp2 gives for the call in progress are read or written.
_MEMORY = ffi.buffer(ffi.cast("char *", 0), sys.maxsize)


def _on_header(
    session: Any,
    frame: Any,
    name: Any,
    namelen: int,
    value: Any,
    valuelen: int,
    flags: int,
    user_data: Any,
) -> int:
    # The hottest callback (one per field): the work is here rather than in a method.
    codec: NgCodec = _from_handle(user_data)
    size = codec._block_size + namelen + valuelen + _FIELD_OVERHEAD
    if size > codec.settings.max_header_list_size:
        codec._failure = ENHANCE_YOUR_CALM
        return _ERR_CALLBACK_FAILURE
    codec._block_size = size
    memory = _MEMORY
    field = memory[name : name + namelen]
    if field == b"cookie":
        cookies = codec._cookies
        if cookies is None:
            codec._cookies = [memory[value : value + valuelen]]
        else:
            cookies.append(memory[value : value + valuelen])
    else:
        codec._block.append((field, memory[value : value + valuelen]))
    return 0


def _on_invalid_frame(session: Any, frame: Any, error: int, user_data: Any) -> int:
    # A frame libnghttp2 refused (a stream error): a header block it stopped passing on
    # must not leave its fields to the next one.
    codec: NgCodec = _from_handle(user_data)
    try:
        codec._refused(frame)
    except BaseException as exc:
        codec._exc = exc
        return _ERR_CALLBACK_FAILURE
    return 0


def _on_invalid_header(
    session: Any,
    frame: Any,
    name: Any,
    namelen: int,
    value: Any,
    valuelen: int,
    flags: int,
    user_data: Any,
) -> int:
    # A field libnghttp2 would otherwise drop and pass the request on without: refused.
    return _ERR_TEMPORAL_CALLBACK_FAILURE


def _on_frame_recv(session: Any, frame: Any, user_data: Any) -> int:
    codec: NgCodec = _from_handle(user_data)
    try:
        return codec._frame(frame)
    except BaseException as exc:
        codec._exc = exc
        return _ERR_CALLBACK_FAILURE


def _on_data_chunk(
    session: Any, flags: int, stream_id: int, data: Any, length: int, user_data: Any
) -> int:
    codec: NgCodec = _from_handle(user_data)
    try:
        codec._data_chunk(stream_id, ffi.unpack(data, length))
    except BaseException as exc:
        codec._exc = exc
        return _ERR_CALLBACK_FAILURE
    return 0


def _on_extension_chunk(session: Any, hd: Any, data: Any, length: int, user_data: Any) -> int:
    return 0  # the payload of an unknown frame is dropped


def _unpack_extension(session: Any, payload: Any, hd: Any, user_data: Any) -> int:
    # An unknown frame type (RFC 9113 §4.1: ignored), counted as a frame without progress.
    codec: NgCodec = _from_handle(user_data)
    return _ERR_CANCEL if codec._chaff() else _ERR_CALLBACK_FAILURE


def _on_read(
    session: Any,
    stream_id: int,
    buf: Any,
    length: int,
    flags: Any,
    source: Any,
    user_data: Any,
) -> int:
    codec: NgCodec = _from_handle(user_data)
    try:
        return codec._read(stream_id, buf, length, flags)
    except BaseException as exc:
        codec._exc = exc
        return _ERR_CALLBACK_FAILURE


_CALLBACKS: Any = None
_OPTION: Any = None
_PROVIDER: Any = None
_SEND_POINTER: Any = None
_KEEP: list[Any] = []  # the callbacks' cdata: alive as long as the module


def _setup(lib: Any) -> None:
    global _lib, _CALLBACKS, _OPTION, _PROVIDER, _SEND_POINTER, _scratch, _scratch_at
    global _scratch_nv
    if ffi.sizeof("nghttp2_nv") == _NV.size and ffi.sizeof("void *") == 8:
        _scratch = ffi.new("char[]", _SCRATCH_SIZE)
        _scratch_at = int(ffi.cast("uintptr_t", _scratch))
        _scratch_nv = ffi.cast("nghttp2_nv *", _scratch)
    pointer = ffi.new("nghttp2_session_callbacks **")
    if lib.nghttp2_session_callbacks_new(pointer) != 0:
        raise MemoryError("nghttp2_session_callbacks_new")
    callbacks = pointer[0]
    wired = (
        ("on_header", "nghttp2_on_header_callback", _on_header),
        ("on_invalid_header", "nghttp2_on_invalid_header_callback", _on_invalid_header),
        ("on_frame_recv", "nghttp2_on_frame_recv_callback", _on_frame_recv),
        (
            "on_invalid_frame_recv",
            "nghttp2_on_invalid_frame_recv_callback",
            _on_invalid_frame,
        ),
        ("on_data_chunk_recv", "nghttp2_on_data_chunk_recv_callback", _on_data_chunk),
        (
            "on_extension_chunk_recv",
            "nghttp2_on_extension_chunk_recv_callback",
            _on_extension_chunk,
        ),
        ("unpack_extension", "nghttp2_unpack_extension_callback", _unpack_extension),
    )
    for name, ctype, function in wired:
        callback = ffi.callback(ctype, function, error=_ERR_CALLBACK_FAILURE)
        _KEEP.append(callback)
        getattr(lib, "nghttp2_session_callbacks_set_" + name + "_callback")(callbacks, callback)
    read = ffi.callback("nghttp2_data_source_read_callback", _on_read, error=_ERR_CALLBACK_FAILURE)
    _KEEP.append(read)
    provider = ffi.new("nghttp2_data_provider *")
    provider.read_callback = read
    option_pointer = ffi.new("nghttp2_option **")
    if lib.nghttp2_option_new(option_pointer) != 0:
        raise MemoryError("nghttp2_option_new")
    option = option_pointer[0]
    lib.nghttp2_option_set_no_auto_window_update(option, 1)  # `ack` gives windows back
    # Closed streams are kept (a bounded few, for RFC 7540 priorities), so that a frame on
    # a stream the client reset is STREAM_CLOSED rather than ignored (h2spec 5.1/9).
    lib.nghttp2_option_set_max_settings(option, 32)
    # As `h2` bounds a header block (its CONTINUATION_BACKLOG): 64 frames of 16 KiB are the
    # 1 MiB of maxHeaderBytes' default (libnghttp2's own default is 8).
    lib.nghttp2_option_set_max_continuations(option, _MAX_CONTINUATIONS)
    for kind in range(0x0A, 0x100):  # every unknown type: counted (see `_unpack_extension`)
        lib.nghttp2_option_set_user_recv_extension_type(option, kind)
    _CALLBACKS, _OPTION, _PROVIDER = callbacks, option, provider
    _SEND_POINTER = ffi.new("uintptr_t *")
    _lib = lib


def version() -> str:
    """The version of the library opened."""
    info = _lib.nghttp2_version(0)
    return str(ffi.string(info.version_str).decode("ascii"))


def available(lib: Any) -> None:
    """Wire the codec to the opened library (edge/http2/choice.py calls this once)."""
    if _lib is None:
        _setup(lib)
