"""The header API of the message heads: reads, writes, and the bytes sent on after a write."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from proxynow.edge.http.exchange import Exchange, validate
from proxynow.edge.message.headers import (
    ForwardContext,
    HeaderError,
    RequestHead,
    ResponseHead,
    forwarded_headers,
    upstream_head,
)

CTX = ForwardContext(b"192.0.2.7", trusted=False, tls=False, server_name=b"edge")
TRUSTED = ForwardContext(b"192.0.2.7", trusted=True, tls=False, server_name=b"edge")


def head(*headers: tuple[bytes, bytes], trusted: bool = False) -> RequestHead:
    received = RequestHead(trusted)
    for name, value in ((b"Host", b"app.test"), *headers):
        received.add(name, value)
    return received


def sent(request: RequestHead, ctx: ForwardContext = CTX) -> list[bytes]:
    """The head's lines as `HttpProxy._request_head` sends them upstream: the per-peer
    forwarded block (built from a blank head, as edge/http/peers.py does) unless the head's
    forwarded headers changed, when the block is built from the head itself."""
    if request.forwarded:
        block = forwarded_headers(request, ctx, False)
    else:
        blank = RequestHead(ctx.trusted)
        blank.host = b"app.test"
        block = forwarded_headers(blank, ctx, False)
    wire = upstream_head(request, b"GET / HTTP/1.1\r\n", request.host, block, b"")
    return wire.split(b"\r\n")[1:-2]


# ---------------------------------------------------------------- reading


def test_get_and_get_all_in_any_case() -> None:
    request = head((b"X-Tag", b"a"), (b"x-tag", b"b"), (b"Accept", b"*/*"))
    assert request.get(b"X-TAG") == b"a"
    assert request.get_all(b"x-tag") == [b"a", b"b"]
    assert request.get(b"accept") == b"*/*"
    assert request.get(b"missing") is None
    assert request.get_all(b"missing") == []


def test_fields_the_parser_sets_aside_are_read_too() -> None:
    request = head((b"Content-Length", b"5"), (b"Connection", b"keep-alive"), (b"Expect", b"x"))
    assert request.get(b"host") == b"app.test"
    assert request.get(b"content-length") == b"5"
    assert request.get(b"Connection") == b"keep-alive"
    assert request.get(b"expect") == b"x"
    assert request.get(b"keep-alive") is None  # hop-by-hop: never forwarded


def test_forwarded_headers_read_as_they_will_be_forwarded() -> None:
    untrusted = head((b"X-Forwarded-Proto", b"https"), (b"X-Forwarded-For", b"10.0.0.1"))
    assert untrusted.get(b"x-forwarded-proto") is None  # dropped: an untrusted client's
    assert untrusted.get_all(b"x-forwarded-for") == []
    trusted = head(
        (b"X-Forwarded-Proto", b"https"),
        (b"X-Forwarded-For", b"10.0.0.1"),
        (b"X-Forwarded-For", b"10.0.0.2"),
        trusted=True,
    )
    assert trusted.get(b"X-Forwarded-Proto") == b"https"
    assert trusted.get_all(b"x-forwarded-for") == [b"10.0.0.1", b"10.0.0.2"]


def test_items_are_what_get_all_answers() -> None:
    request = head(
        (b"User-Agent", b"t"),
        (b"X-Forwarded-For", b"10.0.0.1"),
        (b"Content-Length", b"3"),
        (b"Upgrade", b"websocket"),
        trusted=True,
    )
    pairs = request.items()
    assert pairs[0] == (b"Host", b"app.test")
    assert (b"User-Agent", b"t") in pairs
    assert (b"X-Forwarded-For", b"10.0.0.1") in pairs
    assert (b"Content-Length", b"3") in pairs
    assert (b"Upgrade", b"websocket") in pairs
    for name, value in pairs:
        assert value in request.get_all(name)
    names = {name.lower() for name, _ in pairs}
    for name in names:
        assert request.get_all(name) == [v for n, v in pairs if n.lower() == name]


# ---------------------------------------------------------------- writing, as sent upstream


def test_set_replaces_every_value_in_place() -> None:
    request = head((b"A", b"1"), (b"X-Tag", b"a"), (b"B", b"2"), (b"x-tag", b"b"))
    request.set(b"X-Tag", b"c")
    assert request.get_all(b"x-tag") == [b"c"]
    assert sent(request)[:4] == [b"Host: app.test", b"A: 1", b"X-Tag: c", b"B: 2"]


def test_set_adds_an_absent_header_at_the_end() -> None:
    request = head((b"A", b"1"))
    request.set(b"X-New", b"v")
    assert sent(request)[:3] == [b"Host: app.test", b"A: 1", b"X-New: v"]


def test_append_keeps_the_others() -> None:
    request = head((b"Via", b"1.1 a"))
    request.append(b"via", b"1.1 b")
    assert request.get_all(b"VIA") == [b"1.1 a", b"1.1 b"]
    assert sent(request)[1:3] == [b"Via: 1.1 a", b"via: 1.1 b"]


def test_remove_drops_every_value() -> None:
    request = head((b"Cookie", b"a=1"), (b"A", b"1"), (b"cookie", b"b=2"))
    request.remove(b"COOKIE")
    assert request.get(b"cookie") is None
    assert sent(request)[:2] == [b"Host: app.test", b"A: 1"]
    request.remove(b"never-sent")  # nothing to do


def test_host_is_the_host_sent() -> None:
    request = head()
    request.set(b"Host", b"other.test")
    assert request.get_all(b"host") == [b"other.test"]
    assert sent(request)[0] == b"Host: other.test"
    with pytest.raises(HeaderError):
        request.append(b"Host", b"third.test")
    request.remove(b"host")
    assert request.hosts == 0 and request.get(b"host") is None


def test_a_set_forwarded_header_replaces_the_proxys() -> None:
    # Traefik's headers middleware on X-Forwarded-Proto: the value set wins over the
    # entrypoint's, and the per-peer block is no longer used for this request.
    request = head()
    assert not request.forwarded
    request.set(b"X-Forwarded-Proto", b"https")
    assert request.forwarded and request.xf_proto == b"https"
    lines = sent(request)
    assert [line for line in lines if line.startswith(b"X-Forwarded-Proto")] == [
        b"X-Forwarded-Proto: https"
    ]


def test_a_removed_forwarded_header_gets_the_proxys_value() -> None:
    request = head((b"X-Real-Ip", b"10.9.9.9"), trusted=True)
    assert b"X-Real-Ip: 10.9.9.9" in sent(request, TRUSTED)
    request.remove(b"x-real-ip")
    assert request.real_ip == b""
    lines = sent(request, TRUSTED)
    assert [line for line in lines if line.startswith(b"X-Real-Ip")] == [b"X-Real-Ip: 192.0.2.7"]


def test_x_forwarded_for_written_is_followed_by_the_peer() -> None:
    request = head()
    request.set(b"X-Forwarded-For", b"10.0.0.1")
    request.append(b"x-forwarded-for", b"10.0.0.2")
    assert request.get_all(b"X-Forwarded-For") == [b"10.0.0.1", b"10.0.0.2"]
    assert b"X-Forwarded-For: 10.0.0.1, 10.0.0.2, 192.0.2.7" in sent(request)


def test_framing_and_hop_by_hop_headers_are_the_proxys() -> None:
    request = head((b"Content-Length", b"5"))
    for name in (b"Content-Length", b"transfer-encoding", b"Connection", b"Upgrade", b"TE"):
        with pytest.raises(HeaderError):
            request.set(name, b"x")
        with pytest.raises(HeaderError):
            request.append(name, b"x")
        with pytest.raises(HeaderError):
            request.remove(name)
    with pytest.raises(HeaderError):
        request.set(b"X-Forwarded-Server", b"spoofed")
    assert request.get(b"content-length") == b"5"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (b"X-A", b"v\r\nInjected: 1"),
        (b"X-A", b"v\nx"),
        (b"X-A", b"v\x00"),
        (b"X A", b"v"),
        (b"X-A:", b"v"),
        (b"", b"v"),
    ],
)
def test_no_write_can_add_a_line(name: bytes, value: bytes) -> None:
    request = head()
    with pytest.raises(HeaderError):
        request.set(name, value)
    with pytest.raises(HeaderError):
        request.append(name, value)
    assert sent(request)[0] == b"Host: app.test"
    assert len(request.lines) == 0


def test_a_header_named_in_connection_is_still_dropped_after_a_write() -> None:
    request = head((b"Connection", b"X-Secret"), (b"X-Secret", b"1"))
    request.set(b"X-Secret", b"2")
    assert not any(line.lower().startswith(b"x-secret") for line in sent(request))


def test_cookie_lookup_of_the_exchange_reads_through_the_api() -> None:
    exchange = Exchange(head((b"Cookie", b"a=1; lb=x"), (b"cookie", b"lb=y")), 0.0, None)
    exchange.target = b"/"
    validate(exchange)
    assert exchange.cookie(b"lb") == b"x"
    exchange.head.set(b"Cookie", b"lb=z")
    assert exchange.cookie(b"lb") == b"z"
    assert exchange.header_values("cookie") == ["lb=z"]
    assert exchange.header_values("host") == ["app.test"]


# ---------------------------------------------------------------- the response head


def response(*headers: tuple[bytes, bytes]) -> ResponseHead:
    received = ResponseHead()
    for name, value in headers:
        received.add(name, value)
    return received


def test_response_head_reads_and_writes_kept_lines() -> None:
    answer = response((b"Content-Type", b"text/plain"), (b"Content-Length", b"13"), (b"X-A", b"1"))
    assert answer.get(b"content-type") == b"text/plain"
    assert answer.get(b"Content-Length") == b"13"
    answer.set(b"X-A", b"2")
    answer.append(b"Set-Cookie", b"a=1")
    answer.append(b"Set-Cookie", b"b=2")
    answer.remove(b"content-type")
    assert b"".join(answer.kept_lines()) == b"X-A: 2\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n"
    assert answer.items() == [
        (b"X-A", b"2"),
        (b"Set-Cookie", b"a=1"),
        (b"Set-Cookie", b"b=2"),
        (b"Content-Length", b"13"),
    ]


def test_response_framing_is_the_proxys() -> None:
    answer = response((b"Transfer-Encoding", b"chunked"))
    for name in (b"Content-Length", b"Transfer-Encoding", b"connection", b"Keep-Alive"):
        with pytest.raises(HeaderError):
            answer.set(name, b"1")
        with pytest.raises(HeaderError):
            answer.remove(name)
    with pytest.raises(HeaderError):
        answer.append(b"X-A", b"a\r\nb")
    assert answer.te == b"chunked" and answer.lines == []


def test_a_copy_carries_every_attribute_of_the_head() -> None:
    # The slot names from the source: a head compiled by mypyc has no __slots__ at run time.
    source = Path(__file__).parents[4] / "proxynow" / "edge" / "message" / "headers.py"
    tree = ast.parse(source.read_text())
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "RequestHead"]
    (slots,) = [n for n in cls.body if isinstance(n, ast.Assign) and "__slots__" in ast.unparse(n)]
    names = ast.literal_eval(slots.value)
    head = RequestHead(True, 5)
    for index, name in enumerate(names):  # a value of each attribute's own type, all distinct
        value = getattr(head, name)
        if isinstance(value, bool):
            setattr(head, name, not value)
        elif isinstance(value, int):
            setattr(head, name, index + 7)
        elif isinstance(value, bytes):
            setattr(head, name, b"v%d" % index)
        else:
            setattr(head, name, [b"v%d" % index])
    copied = head.copy()
    assert [getattr(copied, name) for name in names] == [getattr(head, name) for name in names]
    assert copied is not head
