"""Every HTTP front end through the same cases, in memory on the client side.

Each case runs once per entry of front_ends.py (`proxied` is parametrized over them):
the client's bytes go into the protocol by `data_received` / `eof_received`, what it
writes is parsed by the entry's codec; the backends are real aiohttp servers on
127.0.0.1. Only the front end's public surface is used (its factory and the
asyncio.Protocol methods), so the cases hold for any front end that serves HTTP.
"""

from __future__ import annotations

import hashlib

from tests.transport.client import HIGH_WATER, until
from tests.transport.client_codecs import Request
from tests.transport.harness import Backend, Proxied, echoed

BIG = 32 << 20  # past what loopback socket buffers hold while nobody reads


async def test_keep_alive_serves_two_requests_on_one_connection(proxied: Proxied) -> None:
    connection = proxied.connect()
    first = await connection.exchange(Request(target="/first"))
    second = await connection.exchange(Request(target="/second"))
    assert (first.status, echoed(first.body)["path"]) == (200, "/first")
    assert (second.status, echoed(second.body)["path"]) == (200, "/second")
    assert not connection.transport.closing


async def test_post_with_a_length_reaches_the_backend_whole(proxied: Proxied) -> None:
    body = bytes(range(256)) * 40
    response = await proxied.connect().exchange(Request("POST", "/upload", body=body))
    seen = echoed(response.body)
    assert (response.status, seen["method"], seen["body_len"]) == (200, "POST", len(body))
    assert seen["body_sha"] == hashlib.sha256(body).hexdigest()


async def test_a_body_of_unknown_length_is_streamed_to_the_backend(proxied: Proxied) -> None:
    connection = proxied.connect()
    codec, transport = connection.codec, connection.transport
    parts = [b"alpha-", b"beta-" * 1000, b"gamma"]
    transport.send(codec.request(Request("POST", "/stream-in"), streamed=True))
    for part in parts:
        transport.send(codec.chunk(part))
    transport.send(codec.end())
    response = await connection.response(0)
    seen = echoed(response.body)
    assert (response.status, seen["body_len"]) == (200, sum(map(len, parts)))
    assert seen["body_sha"] == hashlib.sha256(b"".join(parts)).hexdigest()


async def test_a_streamed_response_is_forwarded_as_it_comes(
    proxied: Proxied, backends: tuple[Backend, Backend]
) -> None:
    one, _ = backends
    connection = proxied.connect()
    connection.send(Request(target="/stream"))
    await until(
        lambda: (r := connection.codec.pending()) is not None and r.body == b"first",
        "the first part before the backend sends the rest",
    )
    pending = connection.codec.pending()
    assert pending is not None and pending.status == 200 and not pending.complete
    one.release.set()
    response = await connection.response(0)
    assert response.body == b"firstsecond"


async def test_a_host_without_a_router_is_a_404(
    proxied: Proxied, backends: tuple[Backend, Backend]
) -> None:
    connection = proxied.connect()
    response = await connection.exchange(Request(host="nobody.test"))
    assert response.status == 404
    assert sum(backend.requests for backend in backends) == 0
    assert (await connection.exchange(Request())).status == 200  # the connection goes on


async def test_a_malformed_request_is_refused_and_the_connection_closed(
    proxied: Proxied, backends: tuple[Backend, Backend]
) -> None:
    connection = proxied.connect()
    connection.transport.send(connection.codec.malformed())
    await until(lambda: connection.transport.lost, "the connection to close")
    assert connection.codec.refused()
    assert sum(backend.requests for backend in backends) == 0


async def test_the_host_picks_the_backend(proxied: Proxied) -> None:
    connection = proxied.connect()
    one = await connection.exchange(Request(host="one.test"))
    two = await connection.exchange(Request(host="two.test"))
    assert (echoed(one.body)["server"], one.header("x-server")) == ("one", "one")
    assert (echoed(two.body)["server"], two.header("x-server")) == ("two", "two")


async def test_the_backend_sees_forwarded_headers_from_the_transport(proxied: Proxied) -> None:
    connection = proxied.connect()  # its peer is 192.0.2.10, the entrypoint trusts nobody
    spoofed = [("X-Forwarded-For", "203.0.113.66"), ("X-Real-Ip", "203.0.113.66")]
    response = await connection.exchange(Request(host="app.test", headers=spoofed))
    headers = echoed(response.body)["headers"]
    assert headers["x-forwarded-for"] == "192.0.2.10"
    assert headers["x-real-ip"] == "192.0.2.10"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-host"] == "app.test"
    assert headers["x-forwarded-port"] == "80"
    assert headers["x-forwarded-server"]


async def test_a_backend_that_refuses_connections_is_a_502(proxied: Proxied) -> None:
    connection = proxied.connect()
    response = await connection.exchange(Request(host="dead.test"))
    assert response.status == 502
    assert (await connection.exchange(Request())).status == 200


async def test_a_head_response_has_no_body(proxied: Proxied) -> None:
    connection = proxied.connect()
    head = await connection.exchange(Request("HEAD", "/thing"))
    assert (head.status, bytes(head.body)) == (200, b"")
    after = await connection.exchange(Request(target="/after"))  # framing intact
    assert echoed(after.body)["path"] == "/after"
    assert connection.codec.unexpected == b""


async def test_a_client_eof_after_a_request_still_gets_the_answer(proxied: Proxied) -> None:
    connection = proxied.connect()
    connection.send(Request(target="/last"))
    connection.transport.send_eof()
    response = await connection.response(0)
    assert echoed(response.body)["path"] == "/last"
    await until(lambda: connection.transport.lost, "the connection to close")


async def test_a_client_that_stops_reading_pauses_the_backend(
    proxied: Proxied, backends: tuple[Backend, Backend]
) -> None:
    one, _ = backends
    connection = proxied.connect()
    transport = connection.transport
    transport.stop_reading()
    connection.send(Request(target=f"/big?size={BIG}"))
    await until(lambda: transport.writing_paused, "the protocol to be told to pause writing")
    # The backend's socket buffers fill: it is left holding what the proxy does not read.
    await until(lambda: one.backlog() > 0, "the backend to stall")
    assert transport.written == transport.written_at_pause, "written after the pause"
    assert HIGH_WATER < transport.written < BIG and one.big_sent < BIG
    transport.read_again()
    response = await connection.response(0)
    assert (response.status, len(response.body)) == (200, BIG)
    assert one.big_sent == BIG
