"""The codec interface (proxynow/edge/http2/codec.py) alone: bytes from an `h2` client in,
handler calls out; what it queues read back by that client. No sockets."""

from __future__ import annotations

import h2.config
import h2.connection
import h2.events

from proxynow.edge.http2.codec import REFUSED_STREAM, Codec, CodecError, Headers, Settings

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


def pair(settings: Settings | None = None) -> tuple[Codec, h2.connection.H2Connection, Recorder]:
    config = h2.config.H2Configuration(client_side=True, header_encoding=None)
    client = h2.connection.H2Connection(config)
    client.initiate_connection()
    codec, recorder = Codec(settings or Settings()), Recorder()
    codec.start()
    codec.receive(client.data_to_send(), recorder)
    client.receive_data(codec.output())
    codec.receive(client.data_to_send(), recorder)  # the SETTINGS ack
    return codec, client, recorder


def test_a_request_and_its_body_arrive_as_calls_with_cookie_crumbs_joined() -> None:
    codec, client, recorder = pair()
    client.send_headers(1, [*GET, (b"cookie", b"a=1"), (b"cookie", b"b=2")])
    client.send_data(1, b"body", end_stream=True)
    codec.receive(client.data_to_send(), recorder)
    request, data = [c for c in recorder.calls if c[0] in ("request", "data")]
    assert request == ("request", 1, [*GET, (b"cookie", b"a=1; b=2")], False)
    assert data == ("data", 1, b"body", 4, True)


def test_the_answer_is_split_into_frames_and_read_back_whole() -> None:
    codec, client, recorder = pair()
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


def test_the_stream_limit_is_the_front_ends_not_a_connection_error() -> None:
    codec, _, recorder = pair(Settings(max_concurrent_streams=1))
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


def test_drain_sends_goaway_and_the_streams_read_are_still_answered() -> None:
    codec, client, recorder = pair()
    client.send_headers(1, GET, end_stream=True)
    codec.receive(client.data_to_send(), recorder)
    assert codec.drain() == 1
    codec.headers(1, [(b":status", b"204")], True)  # still possible after the GOAWAY
    data = codec.output()
    assert data[3] == 0x07 and data[9:13] == b"\x00\x00\x00\x01"  # GOAWAY, last stream 1
    assert b"\x01\x05\x00\x00\x00\x01" in data  # HEADERS with END_STREAM|END_HEADERS on 1


def test_a_protocol_error_is_a_codec_error_with_its_goaway_queued() -> None:
    codec, _, recorder = pair()
    ping_on_a_stream = b"\x00\x00\x08\x06\x00\x00\x00\x00\x01" + b"\x00" * 8
    try:
        codec.receive(ping_on_a_stream, recorder)
    except CodecError as exc:
        assert exc.code == 1  # PROTOCOL_ERROR
    else:
        raise AssertionError("no CodecError")
    assert codec.output()[3] == 0x07  # GOAWAY
