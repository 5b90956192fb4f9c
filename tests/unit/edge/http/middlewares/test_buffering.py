"""buffering: what it refuses, when it reads a body first, and the request buffer: memory,
the file it spills to, the per-worker bound, a body over its limit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from proxynow.config.middlewares import Middleware
from proxynow.edge.core.flow import UPSTREAM_PENDING, ReadGate
from proxynow.edge.http.exchange import Exchange
from proxynow.edge.http.middlewares import body_buffer
from proxynow.edge.http.middlewares.base import BuildContext, Defer, Reply
from proxynow.edge.http.middlewares.body_buffer import TOO_LARGE, RequestBuffer, held
from proxynow.edge.http.middlewares.buffering import UNSET_LIMIT, build, problem
from proxynow.edge.http.middlewares.registry import BUILDERS
from tests.unit.edge.http.middlewares.support import exchange


class Transport:
    """What a ReadGate and a 100 Continue need of a transport, recorded."""

    def __init__(self) -> None:
        self.paused = False
        self.written: list[bytes] = []

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def is_closing(self) -> bool:
        return False

    def write(self, data: bytes) -> None:
        self.written.append(data)


@pytest.fixture
def gate() -> ReadGate:
    return ReadGate(Transport())  # type: ignore[arg-type]


def upload(length: int | None = None) -> Exchange:
    found = exchange(b"/up", b"POST")
    head = found.head
    if length is None:
        found.chunked = True
    else:
        head.lengths, head.content_length = 1, b"%d" % length
    return found


class Conn:
    def __init__(self) -> None:
        self.data: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.data.append(data)


@pytest.fixture(autouse=True)
def no_leak() -> Iterator[None]:
    before = held()
    yield
    assert held() == before  # every buffer gave its memory back


def test_bad_expressions_are_refused() -> None:
    def check(**options: object) -> str | None:
        return problem(Middleware.model_validate({"buffering": options}))

    assert check(maxRequestBodyBytes=10) is None
    assert check(memResponseBodyBytes=10) is None
    assert check(maxResponseBodyBytes=10) is None
    assert check(retryExpression="Attempts() < 2") is None
    assert check(retryExpression="Attempts() <") == (
        "buffering retryExpression: unexpected end of expression"
    )


def test_only_requests_with_a_body_wait(gate: ReadGate) -> None:
    step = build(
        Middleware.model_validate({"buffering": {"maxRequestBodyBytes": 10}}),
        BuildContext("r", False, lambda name: None),
    )
    assert step.request is not None
    bodyless = exchange(b"/")
    bodyless.complete = True
    assert step.request(bodyless) is None
    found = upload(5)
    found.reader = gate
    assert isinstance(step.request(found), Defer)
    over = upload(11)
    over.reader, over.expect_continue = gate, True
    assert step.request(over) == TOO_LARGE  # nothing sent yet: answered at once
    h2 = upload(5)
    h2.reader = None
    assert step.request(h2) is None  # HTTP/2: streamed


def test_an_unset_limit_is_one_gib(gate: ReadGate) -> None:
    step = build(
        Middleware.model_validate({"buffering": {}}), BuildContext("r", False, lambda n: None)
    )
    assert step.request is not None
    for length, answer in ((UNSET_LIMIT, None), (UNSET_LIMIT + 1, TOO_LARGE)):
        found = upload(length)
        found.reader, found.expect_continue = gate, True
        result = step.request(found)
        assert (result if result == TOO_LARGE else None) == answer


def test_a_body_in_memory_leaves_with_the_head(gate: ReadGate) -> None:
    found = upload()
    found.pending = [b"3\r\nabc\r\n"]  # read while an earlier step waited (framed)
    gate.block(UPSTREAM_PENDING)
    resumed: list[Reply | None] = []
    buffer = RequestBuffer(found, 0, 100, resumed.append, gate)
    buffer.start()
    assert not gate.reasons and found.sink is buffer  # reading again
    buffer.add(b"def")
    assert held() >= 6
    buffer.done()
    assert resumed == [None]
    assert found.pending == [b"abc", b"def"] and not found.chunked
    assert found.head.content_length == b"6" and found.complete


def test_past_memory_the_body_spills_to_a_file_pumped_in_pieces(gate: ReadGate) -> None:
    found = upload(3 * body_buffer.PIECE + 10)
    resumed: list[Reply | None] = []
    buffer = RequestBuffer(found, 0, 10, resumed.append, gate)
    buffer.start()
    buffer.add(b"0123456789")  # fits in memory
    buffer.add(b"x" * (3 * body_buffer.PIECE))  # spills
    buffer.done()
    assert found.pending == [b"0123456789"] and resumed == [None]
    conn = Conn()
    buffer.paused = True
    buffer.pump(conn)  # type: ignore[arg-type]
    assert conn.data == []  # the connection takes nothing now
    buffer.paused = False
    buffer.pump(conn)  # type: ignore[arg-type]
    assert [len(piece) for piece in conn.data] == [body_buffer.PIECE] * 3
    assert found.sink is None and buffer.file is None  # all sent: the file is closed


def test_the_worker_bound_spills_every_buffer(
    gate: ReadGate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(body_buffer, "WORKER_MEMORY", held() + 100)
    first = RequestBuffer(upload(), 0, 1000, lambda reply: None, gate)
    second = RequestBuffer(upload(), 0, 1000, lambda reply: None, gate)
    first.add(b"a" * 80)
    second.add(b"b" * 80)  # under its own limit, but the worker's is reached
    assert first.file is None and second.file is not None
    first.close()
    second.close()


def test_a_body_over_its_limit_is_read_off_and_answered_413(gate: ReadGate) -> None:
    found = upload()
    resumed: list[Reply | None] = []
    buffer = RequestBuffer(found, 5, 100, resumed.append, gate)
    buffer.start()
    buffer.add(b"abc")
    buffer.add(b"def")  # 6 > 5: nothing is kept from now on
    assert buffer.pieces == [] and resumed == []
    buffer.add(b"more")
    buffer.done()
    assert resumed == [TOO_LARGE] and found.sink is None
    assert TOO_LARGE.status == 413 and TOO_LARGE.body == b"Request Entity Too Large"


def test_expect_continue_is_answered_by_the_buffer(gate: ReadGate) -> None:
    found = upload(3)
    found.expect_continue = True
    buffer = RequestBuffer(found, 0, 100, lambda reply: None, gate)
    buffer.start()
    assert gate.transport.written == [b"HTTP/1.1 100 Continue\r\n\r\n"]  # type: ignore[attr-defined]
    assert not found.expect_continue
    buffer.close()


def test_a_retry_before_it_sends_the_body_again_from_the_buffer(gate: ReadGate) -> None:
    retry = Middleware.model_validate({"retry": {"attempts": 2, "status": ["503"]}})
    context = BuildContext("r", False, lambda name: None)
    retry_step = BUILDERS["retry"](retry, context)
    buffering = build(Middleware.model_validate({"buffering": {"memRequestBodyBytes": 4}}), context)
    found = upload(10)
    found.reader, found.method_b = gate, b"PUT"
    assert retry_step.request is not None and buffering.request is not None
    retry_step.request(found)  # keeps a copy of what goes out...
    deferred = buffering.request(found)
    assert isinstance(deferred, Defer)
    deferred.start(lambda reply: None)
    sink = found.sink
    assert sink is not None
    sink.add(b"0123")  # ...but the buffer is the copy now: 4 in memory,
    sink.add(b"456789")  # 6 in its file
    sink.done()
    conn = Conn()
    sink.pump(conn)  # type: ignore[arg-type]
    assert found.replay is not None
    again = found.replay.again()
    sink.pump(conn)  # type: ignore[arg-type]
    assert again == [b"0123"] and conn.data == [b"456789", b"456789"]
    assert buffering.outcome is not None
    buffering.outcome(found, 0.0)
