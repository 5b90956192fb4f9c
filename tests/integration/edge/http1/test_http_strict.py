"""Strict request parsing: every smuggling vector is a 400 and a closed connection, and the
backend never sees the request. Raw sockets against the real protocol on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.support_http import (
    EntryPointRuntime,
    LoopThread,
    Proxy,
    RawBackend,
    exchange,
    ok_response,
    simple_config,
)


@pytest.fixture
def backend(lt: LoopThread) -> Iterator[RawBackend]:
    backend = RawBackend(lt, lambda conn, head: ok_response())
    yield backend
    backend.close()


@pytest.fixture
def proxy(lt: LoopThread, backend: RawBackend) -> Iterator[Proxy]:
    runtime = EntryPointRuntime("web", max_header_bytes=8192, max_header_count=50)
    proxy = Proxy(lt, simple_config(backend.url), runtime)
    yield proxy
    proxy.close()


H = b"Host: example.com\r\n"

REJECTED = {
    "content-length-and-chunked": b"POST / HTTP/1.1\r\n"
    + H
    + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "chunked-and-content-length": b"POST / HTTP/1.1\r\n"
    + H
    + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
    "differing-content-lengths": b"POST / HTTP/1.1\r\n"
    + H
    + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "content-length-list": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5, 6\r\n\r\nhello!",
    "content-length-not-a-number": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5x\r\n\r\nhello",
    "invalid-chunk-size": b"POST / HTTP/1.1\r\n"
    + H
    + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    "chunk-size-overflow": b"POST / HTTP/1.1\r\n"
    + H
    + b"Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nhello\r\n0\r\n\r\n",
    "transfer-encoding-not-chunked": b"POST / HTTP/1.1\r\n"
    + H
    + b"Transfer-Encoding: gzip\r\n\r\n",
    "transfer-encoding-chunked-not-last": b"POST / HTTP/1.1\r\n"
    + H
    + b"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
    "transfer-encoding-in-http10": b"POST / HTTP/1.0\r\n"
    + H
    + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "obsolete-line-folding": b"GET / HTTP/1.1\r\n" + H + b"X-A: one\r\n two\r\n\r\n",
    "bare-lf-line-ends": b"GET / HTTP/1.1\nHost: example.com\n\n",
    "bare-lf-in-header": b"GET / HTTP/1.1\r\n" + H + b"X-A: one\nX-B: two\r\n\r\n",
    "bare-cr-in-header-value": b"GET / HTTP/1.1\r\n" + H + b"X-A: one\rtwo\r\n\r\n",
    "whitespace-before-colon": b"GET / HTTP/1.1\r\nHost : example.com\r\n\r\n",
    "invalid-header-name": b"GET / HTTP/1.1\r\n" + H + b"X(A): one\r\n\r\n",
    "control-char-in-target": b"GET /a\x01b HTTP/1.1\r\n" + H + b"\r\n",
    "fragment-in-target": b"GET /a#b HTTP/1.1\r\n" + H + b"\r\n",
    "absolute-form-other-host": b"GET http://evil.example/ HTTP/1.1\r\n" + H + b"\r\n",
    "authority-form": b"GET example.com:80 HTTP/1.1\r\n" + H + b"\r\n",
    "missing-host": b"GET / HTTP/1.1\r\nX-A: b\r\n\r\n",
    "two-hosts": b"GET / HTTP/1.1\r\n" + H + b"Host: other.example\r\n\r\n",
    "bad-version": b"GET / HTTP/9.9\r\n" + H + b"\r\n",
    "space-in-target": b"GET /a b HTTP/1.1\r\n" + H + b"\r\n",
}


@pytest.mark.parametrize("raw", REJECTED.values(), ids=REJECTED.keys())
def test_rejected_with_400_and_close(proxy: Proxy, backend: RawBackend, raw: bytes) -> None:
    status, _, body, closed = exchange(proxy.port, raw)
    assert status == 400
    assert body == b"400 Bad Request\n"
    assert closed
    assert backend.heads == []


def test_header_section_too_large_is_431(proxy: Proxy, backend: RawBackend) -> None:
    raw = b"GET / HTTP/1.1\r\n" + H + b"X-Big: " + b"a" * 20000 + b"\r\n\r\n"
    status, _, _, closed = exchange(proxy.port, raw)
    assert (status, closed) == (431, True)
    assert backend.heads == []


def test_too_many_headers_is_431(proxy: Proxy, backend: RawBackend) -> None:
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(60))
    status, _, _, closed = exchange(proxy.port, b"GET / HTTP/1.1\r\n" + H + many + b"\r\n")
    assert (status, closed) == (431, True)
    assert backend.heads == []


def test_absolute_form_with_matching_host_is_forwarded_in_origin_form(
    proxy: Proxy, backend: RawBackend
) -> None:
    raw = b"GET http://example.com/p?q=1 HTTP/1.1\r\n" + H + b"\r\n"
    status, _, body, _ = exchange(
        proxy.port, raw + b"GET / HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n"
    )
    assert (status, body) == (200, b"hello")
    assert backend.heads[0].startswith(b"GET /p?q=1 HTTP/1.1\r\n")


def test_identical_duplicate_content_length_is_accepted_once(
    proxy: Proxy, backend: RawBackend
) -> None:
    raw = b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nContent-Length: 5\r\n"
    raw += b"Connection: close\r\n\r\nhello"
    status, _, _, _ = exchange(proxy.port, raw)
    if status == 200:
        assert backend.heads[0].count(b"Content-Length: 5") == 1
    else:  # llhttp may refuse any duplicate; refusing is also safe
        assert status == 400 and backend.heads == []
