"""The HTTP/1.1 proxy end to end: real sockets, a real aiohttp backend, real clients."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import socket
import subprocess
from collections.abc import Iterator

import pytest
from websockets.sync.client import connect as ws_connect

from proxynow.edge.core import flow
from tests.integration.support_http import (
    Backend,
    LoopThread,
    Proxy,
    RawBackend,
    RawConnection,
    echo_info,
    exchange,
    header,
    ok_response,
    read_response,
    simple_config,
    wait_for,
)


@pytest.fixture
def backend(lt: LoopThread) -> Iterator[Backend]:
    backend = Backend(lt)
    yield backend
    backend.close()


@pytest.fixture
def proxy(lt: LoopThread, backend: Backend) -> Iterator[Proxy]:
    proxy = Proxy(lt, simple_config(backend.url))
    yield proxy
    proxy.close()


def client(proxy: Proxy) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)


def get(proxy: Proxy, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    conn = client(proxy)
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    result = response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    conn.close()
    return result


# ---------------------------------------------------------------- connections


def test_keep_alive_reuses_client_and_upstream_connections(proxy: Proxy) -> None:
    conn = client(proxy)
    for i in range(5):
        conn.request("GET", f"/k/{i}")
        response = conn.getresponse()
        assert response.status == 200
        assert echo_info(response.read())["path"] == f"/k/{i}"
    conn.close()
    pools = proxy.lt.call(lambda: [len(p.idle) for p in proxy.state.resources.pools.pools.values()])
    assert pools == [1]


def test_pipelined_responses_come_in_request_order(proxy: Proxy) -> None:
    # The first request is slow: its response must still come first.
    raw = b"".join(
        b"GET /p/%d%s HTTP/1.1\r\nHost: h\r\n\r\n" % (i, b"?delay=0.2" if i == 0 else b"")
        for i in range(4)
    )
    with proxy.connect() as sock:
        sock.sendall(raw)
        reader = sock.makefile("rb")
        paths = [echo_info(_read(reader)[2])["path"] for _ in range(4)]
    assert paths == ["/p/0?delay=0.2", "/p/1", "/p/2", "/p/3"]


def _read(reader: object) -> tuple[int, dict[str, str], bytes]:
    from tests.integration.support_http import _read_response

    return _read_response(reader, False)


def test_http10_client_gets_connection_close(proxy: Proxy) -> None:
    status, headers, body, closed = exchange(proxy.port, b"GET /old HTTP/1.0\r\n\r\n")
    assert status == 200
    assert headers.get("connection") == "close"
    assert echo_info(body)["path"] == "/old"
    assert closed


def test_http10_keep_alive_with_unknown_length_is_close_delimited(proxy: Proxy) -> None:
    raw = b"GET /?chunked=1 HTTP/1.0\r\nConnection: keep-alive\r\nHost: h\r\n\r\n"
    status, headers, body, closed = exchange(proxy.port, raw)
    assert status == 200
    assert "transfer-encoding" not in headers
    assert echo_info(body)["path"] == "/?chunked=1"
    assert closed


def test_http10_keep_alive_with_length_stays_open(proxy: Proxy) -> None:
    with proxy.connect() as sock:
        for i in range(2):
            sock.sendall(b"GET /%d HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" % i)
            status, headers, _ = read_response(sock)
            assert (status, headers.get("connection")) == (200, "keep-alive")


# ---------------------------------------------------------------- bodies and framing


def test_chunked_request_body_is_streamed(proxy: Proxy) -> None:
    conn = client(proxy)
    parts = [b"a" * 1000, b"b" * 3000, b"c"]
    conn.request("POST", "/up", body=iter(parts), encode_chunked=True)
    info = echo_info(conn.getresponse().read())
    conn.close()
    assert info["body_len"] == 4001
    assert info["body_sha"] == hashlib.sha256(b"".join(parts)).hexdigest()
    assert header(info, "Transfer-Encoding") == ["chunked"]


def test_chunked_response_is_relayed_chunked(proxy: Proxy) -> None:
    with proxy.connect() as sock:
        sock.sendall(b"GET /?chunked=1 HTTP/1.1\r\nHost: h\r\n\r\n")
        _, headers, body = read_response(sock)
    assert headers["transfer-encoding"] == "chunked"
    assert echo_info(body)["path"] == "/?chunked=1"


def test_close_delimited_response_is_rechunked_for_http11(lt: LoopThread) -> None:
    raw = RawBackend(lt, lambda conn, head: None if conn.requests > 1 else b"")

    # Answer the first request close-delimited: head, body, then close.
    def respond(conn: object, head: bytes) -> bytes | None:
        assert conn.transport is not None  # type: ignore[attr-defined]
        conn.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil eof")  # type: ignore[attr-defined]
        return None

    raw.responder = respond
    proxy = Proxy(lt, simple_config(raw.url))
    try:
        with proxy.connect() as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            status, headers, body = read_response(sock)
            assert (status, body) == (200, b"until eof")
            assert headers["transfer-encoding"] == "chunked"
            sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")  # the client connection lives on
            assert read_response(sock)[2] == b"until eof"
    finally:
        proxy.close()
        raw.close()


def test_head_response_has_no_body_and_connection_is_reused(proxy: Proxy) -> None:
    with proxy.connect() as sock:
        sock.sendall(b"HEAD /h HTTP/1.1\r\nHost: h\r\n\r\n")
        status, headers, _ = read_response(sock, head_only=True)
        assert status == 200 and int(headers["content-length"]) > 0
        sock.sendall(b"GET /after HTTP/1.1\r\nHost: h\r\n\r\n")
        status, _, body = read_response(sock)
        assert echo_info(body)["path"] == "/after"


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses(proxy: Proxy, status: int) -> None:
    with proxy.connect() as sock:
        sock.sendall(b"GET /?status=%d HTTP/1.1\r\nHost: h\r\n\r\n" % status)
        got, headers, body = read_response(sock)
        assert (got, body) == (status, b"")
        assert "transfer-encoding" not in headers
        sock.sendall(b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n")
        assert echo_info(read_response(sock)[2])["path"] == "/next"


def test_expect_100_continue(proxy: Proxy) -> None:
    with proxy.connect() as sock:
        sock.sendall(
            b"POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        reader = sock.makefile("rb")
        assert reader.readline() == b"HTTP/1.1 100 Continue\r\n"
        assert reader.readline() == b"\r\n"
        sock.sendall(b"hello")
        status, _, body = _read(reader)
    info = echo_info(body)
    assert (status, info["body_len"]) == (200, 5)
    assert header(info, "Expect") == []


def _buffered(proxy: Proxy) -> int:
    """Bytes the proxy holds for its connections (write buffers both ways, held bodies)."""
    total = 0
    for c in proxy.state.connections:
        total += c.transport.get_write_buffer_size()
        ex = c.active
        if ex is not None and ex.upstream is not None and ex.upstream.transport:
            total += ex.upstream.transport.get_write_buffer_size()
        if ex is not None and ex.pending:
            total += sum(map(len, ex.pending))
    return total


LIMIT = 4 << 20
SIZE = 20 << 20


def test_large_download_with_stalled_client_is_bounded(proxy: Proxy) -> None:
    with proxy.connect() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(b"GET /?download=%d HTTP/1.1\r\nHost: h\r\n\r\n" % SIZE)

        def upstream_paused() -> bool:
            return any(
                c.writing_paused and c.active and c.active.upstream.reading_paused
                for c in proxy.state.connections
            )

        # The client reads nothing: the proxy must stop reading the backend.
        wait_for(lambda: proxy.lt.call(upstream_paused), "backpressure on the backend")
        assert proxy.lt.call(lambda: _buffered(proxy)) < LIMIT
        reader = sock.makefile("rb")
        status, _, body = _read(reader)
        reader.close()
    assert (status, len(body)) == (200, SIZE)


def test_stalled_long_download_is_bounded_while_another_client_is_served(
    proxy: Proxy,
) -> None:
    """A body of known length goes past the parser (UpstreamConnection._relay): a client
    that stops reading still stops the backend, and another client is served meanwhile."""
    with proxy.connect() as stalled:
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        stalled.sendall(b"GET /?download=%d HTTP/1.1\r\nHost: h\r\n\r\n" % SIZE)

        def upstream_paused() -> bool:
            return any(
                c.writing_paused and c.active and c.active.upstream.reading_paused
                for c in proxy.state.connections
            )

        wait_for(lambda: proxy.lt.call(upstream_paused), "backpressure on the backend")
        status, headers, body = get(proxy, f"/?download={3 << 20}")
        assert (status, len(body), headers["content-length"]) == (200, 3 << 20, str(3 << 20))
        assert proxy.lt.call(lambda: _buffered(proxy)) < LIMIT
        reader = stalled.makefile("rb")
        status, _, body = _read(reader)
        reader.close()
    assert (status, len(body)) == (200, SIZE)


def test_large_upload_to_stalled_backend_is_bounded(lt: LoopThread) -> None:
    def stall(conn: RawConnection, head: bytes) -> bytes | None:
        assert conn.transport is not None
        conn.transport.pause_reading()  # the backend takes the head, then nothing more
        return b""

    raw = RawBackend(lt, stall)
    proxy = Proxy(lt, simple_config(raw.url))
    try:
        with proxy.connect() as sock:
            sock.sendall(b"PUT /up HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % SIZE)
            sock.setblocking(False)
            block = b"u" * 65536
            sent = 0

            def gated() -> bool:
                return any(c.gate.reasons & flow.UPSTREAM_BUSY for c in proxy.state.connections)

            while not proxy.lt.call(gated):
                with contextlib.suppress(BlockingIOError):
                    sent += sock.send(block)
                assert sent < SIZE, "the proxy never pushed back"
            assert proxy.lt.call(lambda: _buffered(proxy)) < LIMIT
    finally:
        proxy.close()
        raw.close()


def test_large_upload_is_streamed_whole(proxy: Proxy) -> None:
    conn = client(proxy)
    conn.request("PUT", "/up", body=b"u" * SIZE)
    info = echo_info(conn.getresponse().read())
    conn.close()
    assert info["body_len"] == SIZE
    assert info["body_sha"] == hashlib.sha256(b"u" * SIZE).hexdigest()


def test_large_chunked_download(proxy: Proxy) -> None:
    status, _, body = get(proxy, f"/?download={5 << 20}&chunked=1")
    assert (status, len(body)) == (200, 5 << 20)


def test_large_body_of_known_length_arrives_whole_on_a_reused_connection(
    lt: LoopThread,
) -> None:
    body = os.urandom(3 << 20)
    digest = hashlib.sha256(body).digest()
    raw = RawBackend(lt, lambda conn, head: ok_response(body))
    proxy = Proxy(lt, simple_config(raw.url))
    try:
        with proxy.connect() as sock:
            for _ in range(2):
                sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
                status, _, got = read_response(sock)
                assert (status, hashlib.sha256(got).digest()) == (200, digest)
    finally:
        proxy.close()
        raw.close()
    assert [c.requests for c in raw.connections] == [2]


# ---------------------------------------------------------------- headers


def test_hop_by_hop_headers_are_removed_both_ways(proxy: Proxy) -> None:
    raw = (
        b"GET /?hop=Keep-Alive&hop=X-Drop-Me HTTP/1.1\r\nHost: h\r\n"
        b"Connection: keep-alive, X-Secret\r\nX-Secret: s\r\nKeep-Alive: 5\r\n"
        b"TE: trailers\r\nProxy-Connection: x\r\nProxy-Authorization: p\r\nX-Kept: k\r\n"
        b"Upgrade: h2c\r\n\r\n"
    )
    with proxy.connect() as sock:
        sock.sendall(raw)
        _, headers, body = read_response(sock)
    info = echo_info(body)
    names = {k.lower() for k, _ in info["headers"]}
    for name in (
        "connection",
        "x-secret",
        "keep-alive",
        "te",
        "proxy-connection",
        "proxy-authorization",
        "upgrade",
    ):
        assert name not in names
    assert header(info, "X-Kept") == ["k"]
    assert "keep-alive" not in headers


def test_interim_response_headers_do_not_reach_the_final_response(lt: LoopThread) -> None:
    raw = RawBackend(
        lt,
        lambda conn, head: (
            b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
            + ok_response(b"final", b"X-Final: 1\r\n")
        ),
    )
    proxy = Proxy(lt, simple_config(raw.url))
    try:
        with proxy.connect() as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            reader = sock.makefile("rb")
            assert reader.readline() == b"HTTP/1.1 103 Early Hints\r\n"
            assert reader.readline() == b"Link: </a.css>; rel=preload\r\n"
            assert reader.readline() == b"\r\n"
            status, headers, body = _read(reader)
    finally:
        proxy.close()
        raw.close()
    assert (status, body, headers["x-final"]) == (200, b"final", "1")
    assert "link" not in headers


def test_header_names_are_recognised_in_any_case(proxy: Proxy) -> None:
    with proxy.connect() as sock:
        for spelling in (b"x-forwarded-for", b"X-FORWARDED-FOR", b"X-Forwarded-For"):
            sock.sendall(b"GET /c HTTP/1.1\r\nhOsT: h\r\n%b: 6.6.6.6\r\n\r\n" % spelling)
            _, _, body = read_response(sock)
            info = echo_info(body)
            assert header(info, "X-Forwarded-For") == ["127.0.0.1"]
            assert header(info, "X-Forwarded-Host") == ["h"]


def test_forwarded_headers_follow_each_request_on_one_connection(
    lt: LoopThread, backend: Backend
) -> None:
    import ipaddress

    from tests.integration.support_http import EntryPointRuntime

    runtime = EntryPointRuntime("web", trusted_ips=(ipaddress.ip_network("127.0.0.0/8"),))
    proxy = Proxy(lt, simple_config(backend.url), runtime)
    requests = [
        (b"Host: a.test:8080\r\n", "a.test:8080", "8080", "127.0.0.1"),
        (b"Host: b.test\r\n", "b.test", "80", "127.0.0.1"),
        (b"Host: a.test:8080\r\nX-Forwarded-For: 1.2.3.4\r\n", "a.test:8080", "8080",
         "1.2.3.4, 127.0.0.1"),
        (b"Host: a.test:8080\r\n", "a.test:8080", "8080", "127.0.0.1"),
    ]  # fmt: skip
    try:
        with proxy.connect() as sock:
            for lines, host, port, xff in requests:
                sock.sendall(b"GET /f HTTP/1.1\r\n%b\r\n" % lines)
                info = echo_info(read_response(sock)[2])
                assert header(info, "X-Forwarded-Host") == [host]
                assert header(info, "X-Forwarded-Port") == [port]
                assert header(info, "X-Forwarded-For") == [xff]
    finally:
        proxy.close()


def test_forwarded_headers_from_untrusted_peer_are_replaced(proxy: Proxy) -> None:
    _, _, body = get(
        proxy,
        "/f",
        **{
            "X-Forwarded-For": "6.6.6.6",
            "X-Forwarded-Proto": "https",
            "X-Real-Ip": "6.6.6.6",
            "X-Forwarded-Host": "evil",
            "X_Forwarded_Port": "1",
        },
    )
    info = echo_info(body)
    assert header(info, "X-Forwarded-For") == ["127.0.0.1"]
    assert header(info, "X-Forwarded-Proto") == ["http"]
    assert header(info, "X-Real-Ip") == ["127.0.0.1"]
    assert header(info, "X-Forwarded-Host") == [f"127.0.0.1:{proxy.port}"]
    assert header(info, "X-Forwarded-Port") == [str(proxy.port)]
    assert header(info, "X_Forwarded_Port") == []
    assert len(header(info, "X-Forwarded-Server")) == 1


def test_forwarded_headers_from_trusted_peer_are_kept_and_appended(
    lt: LoopThread, backend: Backend
) -> None:
    import ipaddress

    from tests.integration.support_http import EntryPointRuntime

    runtime = EntryPointRuntime("web", trusted_ips=(ipaddress.ip_network("127.0.0.0/8"),))
    proxy = Proxy(lt, simple_config(backend.url), runtime)
    try:
        _, _, body = get(
            proxy,
            "/f",
            **{
                "X-Forwarded-For": "1.2.3.4",
                "X-Forwarded-Proto": "https",
                "X-Real-Ip": "1.2.3.4",
                "X-Forwarded-Server": "spoof",
            },
        )
    finally:
        proxy.close()
    info = echo_info(body)
    assert header(info, "X-Forwarded-For") == ["1.2.3.4, 127.0.0.1"]
    assert header(info, "X-Forwarded-Proto") == ["https"]
    assert header(info, "X-Real-Ip") == ["1.2.3.4"]
    assert header(info, "X-Forwarded-Port") == [str(proxy.port)]
    assert "spoof" not in header(info, "X-Forwarded-Server")


@pytest.mark.parametrize("pass_host", [True, False])
def test_pass_host_header(lt: LoopThread, backend: Backend, pass_host: bool) -> None:
    proxy = Proxy(lt, simple_config(backend.url, passHostHeader=pass_host))
    try:
        _, _, body = get(proxy, "/", Host="front.example")
    finally:
        proxy.close()
    expected = "front.example" if pass_host else f"127.0.0.1:{backend.port}"
    assert header(echo_info(body), "Host") == [expected]


# ---------------------------------------------------------------- errors


def test_no_router_is_404(lt: LoopThread, backend: Backend) -> None:
    config = simple_config(backend.url)
    config["http"]["routers"]["r@test"]["rule"] = "Host(`only.example`)"
    proxy = Proxy(lt, config)
    try:
        with proxy.connect() as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: other.example\r\n\r\n")
            assert read_response(sock)[:1] == (404,)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: only.example\r\n\r\n")  # still open
            assert read_response(sock)[0] == 200
    finally:
        proxy.close()


def test_no_server_is_503(lt: LoopThread) -> None:
    proxy = Proxy(lt, simple_config())
    try:
        status, _, body = get(proxy, "/")
    finally:
        proxy.close()
    assert (status, body) == (503, b"503 Service Unavailable\n")


def test_refused_backend_is_502(lt: LoopThread) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = sock.getsockname()[1]
        proxy = Proxy(lt, simple_config(f"http://127.0.0.1:{port}"))
        try:
            status, _, body = get(proxy, "/")
        finally:
            proxy.close()
    assert (status, body) == (502, b"502 Bad Gateway\n")


def test_backend_reset_before_response_is_502(lt: LoopThread) -> None:
    raw = RawBackend(lt, lambda conn, head: None)
    proxy = Proxy(lt, simple_config(raw.url))
    try:
        status, _, _ = get(proxy, "/")
    finally:
        proxy.close()
        raw.close()
    assert status == 502


def test_response_header_timeout_is_504(lt: LoopThread, backend: Backend) -> None:
    config = simple_config(backend.url, serversTransport="slow@test")
    config["http"]["serversTransports"] = {
        "slow@test": {"forwardingTimeouts": {"responseHeaderTimeout": "0.2s"}}
    }
    proxy = Proxy(lt, config)
    try:
        status, _, body = get(proxy, "/?delay=3")
    finally:
        proxy.close()
    assert (status, body) == (504, b"504 Gateway Timeout\n")


def test_failing_request_leaves_other_connections_alone(lt: LoopThread) -> None:
    raw = RawBackend(lt, lambda conn, head: None if b"/fail" in head else ok_response())
    proxy = Proxy(lt, simple_config(raw.url))
    try:
        with proxy.connect() as healthy:
            healthy.sendall(b"GET /ok HTTP/1.1\r\nHost: h\r\n\r\n")
            assert read_response(healthy)[0] == 200
            assert get(proxy, "/fail")[0] == 502
            healthy.sendall(b"GET /ok HTTP/1.1\r\nHost: h\r\n\r\n")
            assert read_response(healthy)[0] == 200
    finally:
        proxy.close()
        raw.close()


# ---------------------------------------------------------------- upgrade, curl


def test_websocket_upgrade_is_tunnelled(proxy: Proxy) -> None:
    with ws_connect(f"ws://127.0.0.1:{proxy.port}/ws", open_timeout=10) as ws:
        for text in ("one", "two"):
            ws.send(text)
            assert ws.recv(timeout=10) == "echo:" + text
    wait_for(lambda: proxy.lt.call(lambda: not proxy.state.connections), "tunnel closed")


def test_curl_get_and_post(proxy: Proxy) -> None:
    url = f"http://127.0.0.1:{proxy.port}/curl"
    out = subprocess.run(
        ["curl", "-sS", "--max-time", "10", url, url + "2"], capture_output=True, check=True
    )
    assert out.stdout.count(b'"method": "GET"') == 2
    out = subprocess.run(
        [
            "curl",
            "-sS",
            "--max-time",
            "10",
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            "@-",
            url,
        ],
        input=b"x" * 100000,
        capture_output=True,
        check=True,
    )
    assert echo_info(out.stdout)["body_len"] == 100000
