"""Bad backends and odd clients on the HTTP/1.1 data plane (issue "tried as an attacker").

Each case goes through the real protocol on real sockets: odd status codes, response heads
past the limits, an exception in the accounting, forwarded-header spellings with
underscores, Host syntax, extension methods, raw non-ASCII targets, Content-Length forms,
request trailers. Traefik 3.7's answers to the same bytes are quoted where they decide.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from typing import Any, cast

import httptools
import pytest

from proxynow.config.static import EntryPoint
from proxynow.edge.core.metrics import TargetStats
from proxynow.edge.http.exchange import entrypoint_runtime
from proxynow.edge.http1 import request_line
from tests.integration.support_http import (
    DEADLINE,
    LoopThread,
    Proxy,
    RawBackend,
    exchange,
    is_closed,
    ok_response,
    read_response,
    simple_config,
    wait_for,
)


@pytest.fixture
def recorder(lt: LoopThread) -> Iterator[RawBackend]:
    backend = RawBackend(lt, lambda conn, head: ok_response())
    yield backend
    backend.close()


@pytest.fixture
def proxy(lt: LoopThread, recorder: RawBackend) -> Iterator[Proxy]:
    proxy = Proxy(lt, simple_config(recorder.url))
    yield proxy
    proxy.close()


def backend_answering(lt: LoopThread, answer: bytes) -> RawBackend:
    return RawBackend(lt, lambda conn, head: answer)


def send(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """One request on a new connection, its response (not waiting for the close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as sock:
        sock.sendall(raw)
        return read_response(sock)


def get(port: int, head: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    return send(port, b"GET /x HTTP/1.1\r\nHost: a.test\r\n%b\r\n" % head)


def forwarded_head(recorder: RawBackend) -> bytes:
    wait_for(lambda: recorder.heads, "the backend to receive a request")
    return recorder.heads[-1]


# ---------------------------------------------------------------- status codes


@pytest.mark.parametrize("status", [600, 799, 999])
def test_status_600_to_999_is_relayed_counted_and_the_connection_lives(
    lt: LoopThread, status: int
) -> None:
    backend = backend_answering(lt, b"HTTP/1.1 %d Odd\r\nContent-Length: 2\r\n\r\nok" % status)
    proxy = Proxy(lt, simple_config(backend.url))
    try:
        with proxy.connect() as sock:
            for _ in range(2):  # the connection is answered again: nothing got stuck
                sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
                assert read_response(sock)[::2] == (status, b"ok")
            sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            assert read_response(sock)[0] == status
            assert is_closed(sock)
        requests = proxy.metrics()["routers"]["r@test"]["requests"]
        assert requests == {"other": {"GET": 3}}
    finally:
        proxy.close()
        backend.close()


@pytest.mark.parametrize("status", [b"000", b"099", b"042"])
def test_status_below_100_is_a_502_with_nothing_of_the_backend_written(
    lt: LoopThread, status: bytes
) -> None:
    forged = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged"
    answer = b"HTTP/1.1 %b X\r\nContent-Length: %d\r\n\r\n%b" % (status, len(forged), forged)
    backend = backend_answering(lt, answer)
    proxy = Proxy(lt, simple_config(backend.url))
    try:
        raw = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        with proxy.connect() as sock:
            sock.sendall(raw)
            data = read_all(sock)
        assert data.startswith(b"HTTP/1.1 502 Bad Gateway\r\n")
        assert b"forged" not in data and b" %b " % status not in data
    finally:
        proxy.close()
        backend.close()


def test_llhttp_refuses_a_four_digit_status() -> None:
    # So every status the proxy sees has three digits, which metrics index by.
    parser = httptools.HttpResponseParser(object())
    with pytest.raises(httptools.HttpParserError):
        parser.feed_data(b"HTTP/1.1 1000 X\r\n\r\n")


@pytest.mark.patches_hot_path
def test_an_exception_in_accounting_is_logged_once_and_closes_the_connection(
    lt: LoopThread, recorder: RawBackend, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    # A fault the real code does not raise on demand any more (a status of 999 once did).
    def broken(self: TargetStats, *args: Any) -> None:
        raise RuntimeError("accounting bug")

    proxy = Proxy(lt, simple_config(recorder.url))
    monkeypatch.setattr(TargetStats, "observe", broken)
    try:
        with caplog.at_level(logging.ERROR), proxy.connect() as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            assert read_response(sock)[::2] == (200, b"hello")
            assert is_closed(sock)
        wait_for(lambda: not proxy.state.connections, "the client connection to be gone")
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and "accounting bug" in str(errors[0].exc_info)
    finally:
        proxy.close()


# ---------------------------------------------------------------- response head limits


def test_a_response_head_over_the_byte_limit_is_a_502(lt: LoopThread) -> None:
    big = b"X-Big: " + b"v" * (1 << 20) + b"\r\n"
    backend = backend_answering(lt, b"HTTP/1.1 200 OK\r\n" + big + b"Content-Length: 0\r\n\r\n")
    proxy = Proxy(lt, simple_config(backend.url))
    try:
        assert get(proxy.port)[0] == 502
    finally:
        proxy.close()
        backend.close()


def test_response_head_limits_are_options_of_the_servers_transport(lt: LoopThread) -> None:
    fields = b"".join(b"X-%d: v\r\n" % i for i in range(20))
    backend = backend_answering(lt, b"HTTP/1.1 200 OK\r\n%bContent-Length: 2\r\n\r\nok" % fields)
    config = simple_config(backend.url, serversTransport="t@test")
    transports: dict[str, Any] = {"t@test": {"maxResponseHeaderCount": 10}}
    config["http"]["serversTransports"] = transports
    proxy = Proxy(lt, config)
    try:
        assert get(proxy.port)[0] == 502
        transports["t@test"] = {"maxResponseHeaderCount": 30, "maxResponseHeaderBytes": 100}
        proxy.load(config, version=2)
        assert get(proxy.port)[0] == 502  # 20 fields fit, 100 bytes do not
        transports["t@test"] = {"maxResponseHeaderCount": 30}
        proxy.load(config, version=3)
        assert get(proxy.port)[::2] == (200, b"ok")
    finally:
        proxy.close()
        backend.close()


# ---------------------------------------------------------------- forwarded headers


@pytest.mark.parametrize(
    "name",
    [
        "X_Forwarded-For",
        "X-Forwarded_For",
        "X_Forwarded_For",
        "x_forwarded_for",
        "X-Real_Ip",
        "X_Real_Ip",
        "X-Forwarded_Host",
        "X_Forwarded-Proto",
        "X-Forwarded_Port",
        "X_Forwarded_Server",
        "X-Forwarded_Prefix",
    ],
)
def test_underscore_spellings_of_forwarded_headers_are_stripped(
    proxy: Proxy, recorder: RawBackend, name: str
) -> None:
    assert get(proxy.port, b"%b: 6.6.6.6\r\n" % name.encode())[0] == 200
    head = forwarded_head(recorder).lower()
    assert b"6.6.6.6" not in head
    assert b"\r\nx-forwarded-for: 127.0.0.1\r\n" in head


def test_an_underscore_name_that_folds_to_no_forwarded_header_passes(
    proxy: Proxy, recorder: RawBackend
) -> None:
    assert get(proxy.port, b"X_Custom_Id: 7\r\n")[0] == 200
    assert b"\r\nX_Custom_Id: 7\r\n" in forwarded_head(recorder)


# ---------------------------------------------------------------- Host


@pytest.mark.parametrize(
    "host", [b"a b", b"u@a.test", b"a/b", b"a\\b", "é.test".encode(), b"a\tb", b'a"b', b"a{b}"]
)
def test_a_malformed_host_is_a_400(proxy: Proxy, recorder: RawBackend, host: bytes) -> None:
    status, _, _, closed = exchange(proxy.port, b"GET / HTTP/1.1\r\nHost: %b\r\n\r\n" % host)
    assert status == 400 and closed
    assert recorder.heads == []


@pytest.mark.parametrize(
    "host", [b"", b"a.test", b"a.test:8080", b"[::1]:80", b"10.0.0.1", b"a,b", b"a_b.test"]
)
def test_hosts_traefik_accepts_are_routed(proxy: Proxy, host: bytes) -> None:
    status, _, body = send(proxy.port, b"GET / HTTP/1.1\r\nHost: %b\r\n\r\n" % host)
    assert (status, body) == (200, b"hello")


# ---------------------------------------------------------------- request line


@pytest.mark.parametrize("method", [b"FOO", b"get", b"X-CUSTOM.V2", b"BREW"])
def test_extension_methods_are_forwarded(proxy: Proxy, recorder: RawBackend, method: bytes) -> None:
    raw = b"%b /m?q=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc" % method
    assert send(proxy.port, raw)[0] == 200
    assert forwarded_head(recorder).startswith(b"%b /m?q=1 HTTP/1.1\r\n" % method)


def test_a_method_that_is_not_a_token_is_a_400(proxy: Proxy, recorder: RawBackend) -> None:
    assert exchange(proxy.port, b"F(O / HTTP/1.1\r\nHost: a\r\n\r\n")[0] == 400
    assert recorder.heads == []


def test_raw_utf8_path_is_percent_encoded_and_the_query_kept(
    proxy: Proxy, recorder: RawBackend
) -> None:
    raw = "GET /é/x?q=ü&r=%C3 HTTP/1.1\r\nHost: a\r\n\r\n".encode()
    assert send(proxy.port, raw)[0] == 200
    # What Traefik 3.7 sends for the same bytes.
    expected = "GET /%C3%A9/x?q=ü&r=%C3 HTTP/1.1\r\n".encode()
    assert forwarded_head(recorder).startswith(expected)


def test_a_request_line_in_pieces_is_still_served(proxy: Proxy, recorder: RawBackend) -> None:
    with proxy.connect() as sock:
        for piece in (
            b"FO",
            b"O /",
            "é".encode()[:1],
            "é".encode()[1:],
            b" HTTP/1.1\r\nHost: a\r\n\r\n",
        ):
            sock.sendall(piece)
            wait_for(lambda: proxy.state.connections, "the connection to be accepted")
        assert read_response(sock)[0] == 200
        sock.sendall(b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
        assert read_response(sock)[0] == 200
    assert recorder.heads[0].startswith(b"FOO /%C3%A9 HTTP/1.1\r\n")
    assert recorder.heads[1].startswith(b"GET /next HTTP/1.1\r\n")


def test_a_request_line_without_end_is_cut_at_the_target_limit(proxy: Proxy) -> None:
    with proxy.connect() as sock:
        sock.sendall(b"GET /" + b"a" * (70 << 10))
        assert read_response(sock)[0] == 414


def test_an_extension_method_pipelined_behind_another_request_is_refused(
    proxy: Proxy, recorder: RawBackend
) -> None:
    # Documented: the rewrite applies to the first request line of a read.
    raw = b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nFOO /2 HTTP/1.1\r\nHost: a\r\n\r\n"
    with proxy.connect() as sock:
        sock.sendall(raw)
        answers = read_all(sock)
    assert answers.startswith(b"HTTP/1.1 200 OK\r\n") and b"hello" in answers
    assert answers.partition(b"hello")[2].startswith(b"HTTP/1.1 400 ")
    assert len(recorder.heads) == 1


def test_the_methods_llhttp_knows_are_the_ones_listed() -> None:
    for method in request_line.KNOWN_METHODS - {b"CONNECT"}:  # CONNECT: a tunnel
        parser = httptools.HttpRequestParser(object())
        parser.feed_data(method + b" / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert parser.get_method() == method
    for method in (b"FOO", b"get", b"BREW"):
        with pytest.raises(httptools.HttpParserError):
            httptools.HttpRequestParser(object()).feed_data(method + b" / HTTP/1.1\r\n")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"FOO / HTTP/1.1\r\n", (b"POST / HTTP/1.1\r\n", b"FOO", None)),
        ("GET /é HTTP/1.1\r\n".encode(), (b"GET /%C3%A9 HTTP/1.1\r\n", None, b"/%C3%A9")),
        (b"GET / HTTP/1.1\r\n", None),  # nothing to rewrite: llhttp's refusal stands
        (b"FOO / HTTP/1.1", None),  # no line end yet
        (b"F@O / HTTP/1.1\r\n", None),
        (b"FOO  / HTTP/1.1\r\n", None),
        (b"X" * 65 + b" / HTTP/1.1\r\n", None),
    ],
)
def test_lenient_line(data: bytes, expected: tuple[bytes, bytes | None, bytes | None]) -> None:
    assert request_line.lenient_line(data) == expected


# ---------------------------------------------------------------- framing


def test_content_length_is_forwarded_without_leading_zeros(
    proxy: Proxy, recorder: RawBackend
) -> None:
    raw = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 005\r\n\r\nhello"
    assert send(proxy.port, raw)[0] == 200
    assert b"\r\nContent-Length: 5\r\n" in forwarded_head(recorder) + b"\r\n"


def test_a_backend_content_length_is_relayed_without_leading_zeros(lt: LoopThread) -> None:
    backend = backend_answering(lt, b"HTTP/1.1 200 OK\r\nContent-Length: 0002\r\n\r\nok")
    proxy = Proxy(lt, simple_config(backend.url))
    try:
        status, headers, body = get(proxy.port)
        assert (status, headers["content-length"], body) == (200, "2", b"ok")
    finally:
        proxy.close()
        backend.close()


def chunked_with_trailers(trailers: bytes) -> bytes:
    return (
        b"POST /t HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n%b\r\n" % trailers
    )


class _Recording(asyncio.Protocol):
    """A backend connection that keeps every byte and answers once the chunked body ends."""

    def __init__(self, received: list[bytes]) -> None:
        self.received = received

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.received.append(data)
        if b"".join(self.received).endswith(b"0\r\n\r\n"):
            self.transport.write(ok_response())


def test_request_trailers_never_reach_the_backend(lt: LoopThread) -> None:
    received: list[bytes] = []
    server = lt.run(lt.loop.create_server(lambda: _Recording(received), "127.0.0.1", 0))
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    proxy = Proxy(lt, simple_config(url))
    try:
        # Sent whole before the dial completes, so the upstream head is built after the
        # trailers were parsed: they must not join it then either.
        raw = chunked_with_trailers(b"Host: evil\r\nX-Trailer: 1\r\n")
        assert send(proxy.port, raw)[0] == 200
        sent = b"".join(received)
        head, _, body = sent.partition(b"\r\n\r\n")
        assert b"evil" not in head and b"X-Trailer" not in head
        assert b"Content-Length" not in head
        assert body == b"5\r\nhello\r\n0\r\n\r\n"
    finally:
        proxy.close()
        lt.call(server.close)


def test_a_trailer_with_content_length_is_refused(silent: Proxy) -> None:
    with silent.connect() as sock:  # llhttp refuses it; the body's end never goes upstream
        sock.sendall(chunked_with_trailers(b"Content-Length: 3\r\n"))
        assert read_all(sock).startswith(b"HTTP/1.1 400 ")


@pytest.fixture
def silent(lt: LoopThread) -> Iterator[Proxy]:
    """A proxy in front of a backend that never answers (so the proxy's refusal shows)."""
    backend = RawBackend(lt, lambda conn, head: b"")
    proxy = Proxy(lt, simple_config(backend.url))
    yield proxy
    proxy.close()
    backend.close()


def read_all(sock: socket.socket) -> bytes:
    sock.settimeout(DEADLINE)
    data = b""
    try:
        while piece := sock.recv(65536):
            data += piece
    except ConnectionResetError:
        pass
    return data


def test_endless_trailers_are_cut_like_an_endless_head(silent: Proxy) -> None:
    with silent.connect() as sock:
        sock.sendall(b"POST /t HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n")
        sock.sendall(b"X-Long: ")
        chunk = b"v" * 65536
        sent = 0
        try:
            while sent < (8 << 20):
                sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert sent < (8 << 20)  # cut near the 1 MiB head limit
        assert b" 431 " in read_all(sock)


def test_many_trailer_fields_count_against_the_header_count(silent: Proxy) -> None:
    fields = b"".join(b"T%d: v\r\n" % i for i in range(300))
    with silent.connect() as sock:
        sock.sendall(chunked_with_trailers(fields))
        assert read_all(sock).startswith(b"HTTP/1.1 431 ")


def test_request_limits_are_entrypoint_options(lt: LoopThread, recorder: RawBackend) -> None:
    entrypoint = EntryPoint.model_validate(
        {"address": ":80", "http": {"maxHeaderCount": 3, "maxTargetBytes": 16}}
    )
    proxy = Proxy(lt, simple_config(recorder.url), entrypoint_runtime("web", entrypoint))
    try:
        assert get(proxy.port, b"A: 1\r\nB: 2\r\n")[0] == 200
        assert get(proxy.port, b"A: 1\r\nB: 2\r\nC: 3\r\n")[0] == 431
        assert send(proxy.port, b"GET /%s HTTP/1.1\r\nHost: a\r\n\r\n" % (b"a" * 16))[0] == 414
    finally:
        proxy.close()
