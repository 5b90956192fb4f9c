"""The codec interface (proxynow/edge/http2/codec.py) alone, on both codecs (`h2`'s and
libnghttp2's, edge/http2/ngcodec.py): bytes from an `h2` client in, handler calls out; what
it queues read back by that client. No sockets."""

from __future__ import annotations

import contextlib

import h2.config
import h2.connection
import h2.events
import pytest

from proxynow.edge.http2.codec import REFUSED_STREAM, CodecError, Headers, ServerCodec, Settings
from tests.support.h2codecs import CODECS, codec_class

GET = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"a.test"), (b":path", b"/")]


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def on_request(self, stream_id: int, headers: Headers, ended: bool) -> None:
        self.calls.append(("request", stream_id, headers, ended))

    def on_data(self, stream_id: int, data: bytes, flow: int, ended: bool) -> None:
        self.calls.append(("data", stream_id, data, flow, ended))

    def on_trailers(self, stream_id: int, headers: Headers) -> None:
        self.calls.append(("trailers", stream_id))

    def on_reset(self, stream_id: int) -> None:
        self.calls.append(("reset", stream_id))

    def on_window(self, stream_id: int) -> None:
        self.calls.append(("window", stream_id))

    def on_goaway(self) -> None:
        self.calls.append(("goaway",))


@pytest.fixture(params=CODECS)
def kind(request: pytest.FixtureRequest) -> type[ServerCodec]:
    return codec_class(request.param)


def pair(
    kind: type[ServerCodec], settings: Settings | None = None
) -> tuple[ServerCodec, h2.connection.H2Connection, Recorder]:
    config = h2.config.H2Configuration(client_side=True, header_encoding=None)
    client = h2.connection.H2Connection(config)
    client.initiate_connection()
    codec, recorder = kind(settings or Settings()), Recorder()
    codec.start()
    codec.receive(client.data_to_send(), recorder)
    client.receive_data(codec.output())
    codec.receive(client.data_to_send(), recorder)  # the SETTINGS ack
    return codec, client, recorder


def test_a_request_and_its_body_arrive_as_calls_with_cookie_crumbs_joined(
    kind: type[ServerCodec],
) -> None:
    codec, client, recorder = pair(kind)
    client.send_headers(1, [*GET, (b"cookie", b"a=1"), (b"cookie", b"b=2")])
    client.send_data(1, b"body", end_stream=True)
    codec.receive(client.data_to_send(), recorder)
    request, data = [c for c in recorder.calls if c[0] in ("request", "data")]
    assert request == ("request", 1, [*GET, (b"cookie", b"a=1; b=2")], False)
    assert data == ("data", 1, b"body", 4, True)


def test_the_answer_is_split_into_frames_and_read_back_whole(kind: type[ServerCodec]) -> None:
    codec, client, recorder = pair(kind)
    client.send_headers(1, GET, end_stream=True)
    codec.receive(client.data_to_send(), recorder)
    body = b"x" * 40_000  # more than one 16 KiB frame, within the 65,535 window
    assert codec.window(1) == 65535
    codec.headers(1, [(b":status", b"200")], False)
    codec.data(1, body, True)
    events = client.receive_data(codec.output())
    received = b"".join(e.data for e in events if isinstance(e, h2.events.DataReceived))
    assert received == body
    assert any(isinstance(e, h2.events.StreamEnded) for e in events)


def test_pieces_of_any_size_leave_in_order_in_full_frames(kind: type[ServerCodec]) -> None:
    # Pieces as backend reads hand them (one byte, a frame and one, a read's worth),
    # queued before and while frames leave: every byte once, in order, frames filled.
    codec, client, recorder = pair(kind)
    client.send_headers(1, GET, end_stream=True)
    codec.receive(client.data_to_send(), recorder)
    sizes = [1, 16_385, 3, 20_000, 7, 16_384, 5_000]  # 57,780: within the 65,535 window
    pieces = [bytes([i]) * size for i, size in enumerate(sizes)]
    codec.headers(1, [(b":status", b"200")], False)
    events = []
    for index, piece in enumerate(pieces):
        codec.data(1, piece, index == len(pieces) - 1)
        if index % 2:
            events += client.receive_data(codec.output())
    events += client.receive_data(codec.output())
    frames = [e.data for e in events if isinstance(e, h2.events.DataReceived)]
    assert b"".join(frames) == b"".join(pieces)
    assert max(map(len, frames)) <= 16_384
    assert any(isinstance(e, h2.events.StreamEnded) for e in events)


def test_the_stream_limit_is_the_front_ends_not_a_connection_error(kind: type[ServerCodec]) -> None:
    codec, _, recorder = pair(kind, Settings(max_concurrent_streams=1))
    # A client that ignores the limit announced (h2 as a client would refuse to send it);
    # its HPACK state is fresh, as the codec's decoder still is.
    blind = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    blind.initiate_connection()
    blind.data_to_send()
    for stream_id in (1, 3):
        blind.send_headers(stream_id, GET, end_stream=False)
    codec.receive(blind.data_to_send(), recorder)  # no CodecError: the front end decides
    assert [c[1] for c in recorder.calls if c[0] == "request"] == [1, 3]
    codec.reset(3, REFUSED_STREAM)
    rst = b"\x00\x00\x04\x03\x00\x00\x00\x00\x03\x00\x00\x00\x07"  # RST_STREAM 3
    assert codec.output() == rst


def test_drain_sends_goaway_and_the_streams_read_are_still_answered(
    kind: type[ServerCodec],
) -> None:
    codec, client, recorder = pair(kind)
    client.send_headers(1, GET, end_stream=True)
    codec.receive(client.data_to_send(), recorder)
    assert codec.drain() == 1
    codec.headers(1, [(b":status", b"204")], True)  # still possible after the GOAWAY
    data = codec.output()
    assert data[3] == 0x07 and data[9:13] == b"\x00\x00\x00\x01"  # GOAWAY, last stream 1
    assert b"\x01\x05\x00\x00\x00\x01" in data  # HEADERS with END_STREAM|END_HEADERS on 1


def test_a_protocol_error_is_a_codec_error_with_its_goaway_queued(kind: type[ServerCodec]) -> None:
    codec, _, recorder = pair(kind)
    ping_on_a_stream = b"\x00\x00\x08\x06\x00\x00\x00\x00\x01" + b"\x00" * 8
    try:
        codec.receive(ping_on_a_stream, recorder)
    except CodecError as exc:
        assert exc.code == 1  # PROTOCOL_ERROR
    else:
        raise AssertionError("no CodecError")
    assert codec.output()[3] == 0x07  # GOAWAY


def test_a_refused_header_block_leaves_nothing_to_the_next_request(
    kind: type[ServerCodec],
) -> None:
    codec, _, recorder = pair(kind)
    # Raw blocks, each HPACK-encoded afresh: a bad field midway through stream 1's block
    # (the fields before it were decoded), then a valid request on stream 3 in the same read.
    import hpack

    def block(stream: int, fields: list[tuple[bytes, bytes]]) -> bytes:
        payload = hpack.Encoder().encode(fields)
        return len(payload).to_bytes(3, "big") + b"\x01\x05" + stream.to_bytes(4, "big") + payload

    smuggled = [*GET, (b"x-smuggled", b"1"), (b"X-Upper", b"1"), (b"x-after", b"1")]
    # h2 ends the connection (CodecError): nothing of stream 1 reaches the front end either.
    with contextlib.suppress(CodecError):
        codec.receive(block(1, smuggled) + block(3, GET), recorder)
    requests = [c for c in recorder.calls if c[0] == "request"]
    assert all(c[1] == 3 and c[2] == GET for c in requests)


def test_a_field_name_with_a_bad_character_refuses_the_request(kind: type[ServerCodec]) -> None:
    # RFC 9113 §8.2.1: a malformed request, not one passed on without the field:
    # libnghttp2 resets the stream, h2 ends the connection.
    codec, client, recorder = pair(kind)
    client.send_headers(1, [*GET, (b"x y", b"1"), (b"x-ok", b"2")], end_stream=True)
    with contextlib.suppress(CodecError):
        codec.receive(client.data_to_send(), recorder)
    assert [c for c in recorder.calls if c[0] == "request"] == []
    events = client.receive_data(codec.output())
    refusals = [
        e for e in events if isinstance(e, h2.events.StreamReset | h2.events.ConnectionTerminated)
    ]
    assert [int(e.error_code or 0) for e in refusals] == [1]  # PROTOCOL_ERROR
