"""grpcWeb's pure parts: the trailer frame, the text body decoder (pieces that cut base64
quanta, invalid input, a body read while an earlier step waited), the request conversion
and the preflight (the whole exchange: tests/e2e/edge/test_grpc_web.py)."""

from __future__ import annotations

import base64

import pytest

from proxynow.config.middlewares import Middleware
from proxynow.edge.http.exchange import Exchange
from proxynow.edge.http.middlewares.base import BuildContext, Reply, Step
from proxynow.edge.http.middlewares.grpc_web import Base64Body, build, trailer_frame, unchunked
from tests.unit.edge.http.middlewares.support import exchange


def step(*origins: str) -> Step:
    middleware = Middleware.model_validate({"grpcWeb": {"allowOrigins": list(origins)}})
    return build(middleware, BuildContext("r", False, lambda name: None))


def web(kind: bytes, body: bytes | None = None, origin: bytes = b"") -> Exchange:
    found = exchange(b"/svc.S/Call", b"POST")
    found.reader = None  # dispatch's (HTTP/2's: none)
    found.head.add(b"Content-Type", kind)
    if origin:
        found.head.add(b"Origin", origin)
    if body is None:
        found.complete = True
    else:
        found.head.add(b"Content-Length", b"%d" % len(body))
    return found


def sent(found: Exchange) -> bytes:
    """What waits for the backend connection, de-chunked."""
    return unchunked(b"".join(found.pending or []))


def test_the_trailer_frame_is_sorted_lower_case_lines() -> None:
    frame = trailer_frame(((b"grpc-status", b"0"), (b"Grpc-Message", b"a\r\nb")))
    block = b"grpc-message: a  b\r\ngrpc-status: 0\r\n"
    assert frame == b"\x80" + len(block).to_bytes(4, "big") + block
    assert trailer_frame(()) == b"\x80\x00\x00\x00\x00"


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7])
def test_a_text_body_is_decoded_whatever_the_pieces(size: int) -> None:
    message = bytes(range(40))
    encoded = base64.b64encode(message)
    found = web(b"application/grpc-web-text", encoded)
    assert step("*").request(found) is None  # type: ignore[misc]
    assert found.chunked and not found.head.lengths
    assert found.head.get(b"content-type") == b"application/grpc"
    sink = found.sink
    assert isinstance(sink, Base64Body)
    for at in range(0, len(encoded), size):
        sink.add(encoded[at : at + size])
    sink.done()
    assert sent(found) == message
    assert found.pending is not None and found.pending[-1] == b"0\r\n\r\n"
    sink.add(b"more")  # after the end: dropped
    assert sent(found) == message


def test_invalid_base64_ends_the_body_there() -> None:
    found = web(b"application/grpc-web-text", b"x" * 12)
    step("*").request(found)  # type: ignore[misc]
    assert found.sink is not None
    found.sink.add(b"QUFB!!!!QUFB")
    found.sink.done()
    assert found.pending == [b"0\r\n\r\n"]  # the quantum before the bad one was cut with it


def test_a_body_held_by_an_earlier_step_is_decoded_too() -> None:
    encoded = base64.b64encode(b"held body")
    found = web(b"application/grpc-web-text", encoded)
    found.pending = [encoded[:5], encoded[5:]]
    found.complete = True  # it was whole before this step ran
    step("*").request(found)  # type: ignore[misc]
    assert sent(found) == b"held body"
    assert found.pending is not None and found.pending[-1] == b"0\r\n\r\n"


def test_binary_requests_keep_their_body_and_suffix() -> None:
    found = web(b"application/grpc-web+proto", b"\x00\x00\x00\x00\x01x")
    step().request(found)  # type: ignore[misc]
    assert found.head.get(b"content-type") == b"application/grpc+proto"
    assert found.head.content_length == b"6" and found.sink is None
    other = web(b"application/json", b"{}")
    assert step().request(other) is None  # type: ignore[misc]
    assert other.head.get(b"content-type") == b"application/json"


def preflight(origin: bytes, method: bytes = b"POST", asked: bytes = b"x-grpc-web") -> Exchange:
    found = exchange(b"/svc.S/Call", b"OPTIONS")
    found.head.add(b"Origin", origin)
    found.head.add(b"Access-Control-Request-Method", method)
    found.head.add(b"Access-Control-Request-Headers", asked)
    return found


def test_the_preflight_answers_allowed_origins_only() -> None:
    hook = step("https://a.test").request
    assert hook is not None
    answer = hook(preflight(b"https://a.test", asked=b"X-Grpc-Web, content-type"))
    assert isinstance(answer, Reply) and answer.status == 200
    headers = dict(answer.headers)
    assert headers[b"Access-Control-Allow-Origin"] == b"https://a.test"
    assert headers[b"Access-Control-Allow-Headers"] == b"X-Grpc-Web, Content-Type"
    for refused in (preflight(b"https://b.test"), preflight(b"https://a.test", b"PUT")):
        answer = hook(refused)
        assert isinstance(answer, Reply)
        assert [name for name, _ in answer.headers] == [b"Vary"] * 3
    assert hook(preflight(b"https://a.test", asked=b"content-type")) is None  # not gRPC-Web's
