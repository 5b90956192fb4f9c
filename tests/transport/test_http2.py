"""What only the HTTP/2 front end has, in memory on the client side (the shared cases of
test_front_ends.py run over it too): flow control both ways, streams in flight together,
the HTTP/2 header rules on the way to an HTTP/1.1 backend."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import pytest

from proxynow.edge.http2.protocol import H2Proxy
from tests.transport.client import until
from tests.transport.client_codecs import Http2Codec, Request
from tests.transport.front_ends import FRONT_ENDS
from tests.transport.harness import Backend, Proxied, echoed, routes

HTTP2 = [front_end for front_end in FRONT_ENDS if front_end.name.startswith("http2")]
WINDOW = 65535  # the stream's initial window (RFC 9113 §6.9.2), the client's default


@pytest.fixture(params=HTTP2, ids=[front_end.name for front_end in HTTP2])
async def proxied(
    request: pytest.FixtureRequest, backends: tuple[Backend, Backend], refused_url: str
) -> AsyncIterator[Proxied]:
    proxy = Proxied(request.param, routes(*backends, refused_url))
    try:
        yield proxy
    finally:
        await proxy.close()


def codec_of(connection: object) -> Http2Codec:
    codec = connection.codec  # type: ignore[attr-defined]
    assert isinstance(codec, Http2Codec)
    return codec


async def test_a_client_that_gives_no_window_back_pauses_the_backend(
    proxied: Proxied, backends: tuple[Backend, Backend]
) -> None:
    one, _ = backends
    connection = proxied.connect()
    codec, transport = codec_of(connection), connection.transport
    codec.acks = False  # it reads everything, and acknowledges nothing
    size = 8 << 20
    connection.send(Request(target=f"/big?size={size}"))
    await until(lambda: one.backlog() > 0, "the backend to stall")
    pending = codec.pending()
    assert pending is not None and len(pending.body) == WINDOW  # the window, not more
    assert not transport.writing_paused  # held by flow control, not by the socket
    # What the proxy holds meanwhile: at most one backend read, with that backend paused.
    protocol = transport.protocol
    assert isinstance(protocol, H2Proxy)
    (stream,) = protocol.streams.values()
    assert stream.upstream is not None and stream.upstream.reading_paused
    assert sum(map(len, stream.backlog)) <= 256 << 10
    transport.send(codec.give_back())
    response = await connection.response(0)
    assert (response.status, len(response.body)) == (200, size)


async def test_a_stalled_client_holds_no_whole_body_while_another_is_served(
    proxied: Proxied, backends: tuple[Backend, Backend]
) -> None:
    one, _ = backends
    stalled = proxied.connect()
    codec, transport = codec_of(stalled), stalled.transport
    codec.acks = False
    size = 8 << 20
    stalled.send(Request(target=f"/big?size={size}"))
    await until(lambda: one.backlog() > 0, "the backend to stall")
    quick = await proxied.connect().exchange(Request(target="/quick", host="two.test"))
    assert (quick.status, echoed(quick.body)["path"]) == (200, "/quick")
    protocol = transport.protocol
    assert isinstance(protocol, H2Proxy)
    (stream,) = protocol.streams.values()
    # The codec was handed no more than the window; the proxy holds at most one read more.
    assert codec.pending() is not None and len(codec.pending().body) == WINDOW  # type: ignore[union-attr]
    assert sum(map(len, stream.backlog)) <= 256 << 10
    transport.send(codec.give_back())
    response = await stalled.response(0)
    assert (response.status, len(response.body)) == (200, size)


async def test_a_body_larger_than_the_window_reaches_the_backend_whole(proxied: Proxied) -> None:
    # The client may send only its window; the rest goes once the proxy gives it back
    # (as it forwards to the backend).
    body = bytes(range(256)) * 4096  # 1 MiB
    response = await proxied.connect().exchange(Request("POST", "/upload", body=body))
    seen = echoed(response.body)
    assert (response.status, seen["body_len"]) == (200, len(body))
    assert seen["body_sha"] == hashlib.sha256(body).hexdigest()
    assert not seen["chunked"]  # its content-length went upstream


async def test_a_body_without_a_length_goes_upstream_chunked(proxied: Proxied) -> None:
    connection = proxied.connect()
    codec, transport = connection.codec, connection.transport
    transport.send(codec.request(Request("POST", "/in"), streamed=True))
    transport.send(codec.chunk(b"x" * 100_000))
    transport.send(codec.end())
    seen = echoed((await connection.response(0)).body)
    assert (seen["body_len"], seen["chunked"]) == (100_000, True)


async def test_streams_are_answered_while_another_is_in_flight(
    proxied: Proxied, backends: tuple[Backend, Backend]
) -> None:
    one, _ = backends
    connection = proxied.connect()
    connection.send(Request(target="/stream"))  # held by the backend until `release`
    await until(lambda: connection.codec.pending() is not None, "the held stream's head")
    quick = await connection.exchange(Request(target="/quick", host="two.test"))
    assert echoed(quick.body)["path"] == "/quick"
    one.release.set()
    responses = connection.codec.responses
    await until(lambda: len(responses) == 2, "the held stream's end")
    assert bytes(responses[1].body) == b"firstsecond"


async def test_authority_and_cookie_crumbs_reach_the_backend_as_http1(proxied: Proxied) -> None:
    crumbs = [("cookie", "a=1"), ("cookie", "b=2"), ("accept", "*/*")]
    response = await proxied.connect().exchange(Request(host="app.test", headers=crumbs))
    headers = echoed(response.body)["headers"]
    assert headers["host"] == "app.test"  # from :authority
    assert headers["cookie"] == "a=1; b=2"  # RFC 9113 §8.2.3
    assert headers["x-forwarded-proto"] == "http"
    assert response.header("x-server") == "one"  # lowercase on the way back


async def test_a_connection_specific_header_is_a_protocol_error(
    proxied: Proxied, backends: tuple[Backend, Backend]
) -> None:
    connection = proxied.connect()
    codec = codec_of(connection)
    fields = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"app.test")]
    fields += [(b":path", b"/"), (b"connection", b"keep-alive")]  # RFC 9113 §8.2.2
    codec.conn.send_headers(1, fields, end_stream=True)
    connection.transport.send(codec.conn.data_to_send())
    await refused(connection, codec)
    assert sum(backend.requests for backend in backends) == 0


async def refused(connection: object, codec: Http2Codec) -> None:
    """Stream 1 malformed (RFC 9113 §8.1.1): PROTOCOL_ERROR, as a stream error
    (libnghttp2's codec: RST_STREAM, the connection goes on) or a connection error (h2's:
    GOAWAY and the end)."""
    transport = connection.transport  # type: ignore[attr-defined]
    await until(lambda: 1 in codec.resets or transport.lost, "the refusal")
    if transport.lost:
        assert codec.goaway == 1
    else:
        assert codec.resets[1] == 1


async def test_a_header_value_with_a_line_break_never_reaches_the_backend(
    proxied: Proxied, backends: tuple[Backend, Backend]
) -> None:
    # HTTP/2 carries any bytes in a value; forwarded to HTTP/1.1 a CR LF would add a header
    # (or a request): RFC 9113 §8.2.1 makes the request malformed.
    connection = proxied.connect()
    codec = codec_of(connection)
    fields = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"app.test")]
    fields += [(b":path", b"/"), (b"x-note", b"a\r\nx-injected: 1")]
    codec.conn.send_headers(1, fields, end_stream=True)
    connection.transport.send(codec.conn.data_to_send())
    await refused(connection, codec)
    assert sum(backend.requests for backend in backends) == 0


async def test_limits_answer_on_the_stream_and_the_connection_goes_on(proxied: Proxied) -> None:
    connection = proxied.connect()
    long_target = await connection.exchange(Request(target="/" + "a" * (70 << 10)))
    many = [(f"x-h{i}", "v") for i in range(300)]  # maxHeaderCount is 256
    too_many = await connection.exchange(Request(headers=many))
    assert (long_target.status, too_many.status) == (414, 431)
    assert (await connection.exchange(Request(target="/ok"))).status == 200
