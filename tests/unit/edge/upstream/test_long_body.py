"""A long body of known length is relayed past the parser (UpstreamConnection._relay):
the owner gets the very bytes read, the response ends where its Content-Length says, and
the connection is reused only when the backend sent nothing past it."""

from __future__ import annotations

from typing import Any

from proxynow.edge.message.headers import ResponseHead
from proxynow.edge.upstream.connection import UpstreamConnection
from proxynow.edge.upstream.pool import PoolRegistry
from proxynow.edge.upstream.transport import PoolKey, TransportOptions

HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n"


class Wire:
    """The backend side's transport: what the connection writes is dropped."""

    def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...


class Owner:
    def __init__(self) -> None:
        self.pieces: list[bytes] = []
        self.ends: list[bool] = []

    def upstream_head(self, conn: Any, status: int, head: ResponseHead) -> None: ...
    def upstream_body(self, data: bytes) -> None:
        self.pieces.append(data)

    def upstream_done(self, conn: Any, reusable: bool) -> None:
        self.ends.append(reusable)

    def upstream_lost(self, conn: Any) -> None:
        raise AssertionError("lost")

    def upstream_failed(self, conn: Any, exc: BaseException) -> None:
        raise AssertionError(f"failed: {exc!r}")

    def upstream_upgraded(self, conn: Any, leftover: bytes) -> None: ...
    def upstream_pause(self) -> None: ...
    def upstream_resume(self) -> None: ...


def connection() -> UpstreamConnection:
    pool = PoolRegistry().get(PoolKey("http", "127.0.0.1", 80, TransportOptions()))
    conn = UpstreamConnection(pool)
    conn.connection_made(Wire())  # type: ignore[arg-type]
    return conn


def exchange(conn: UpstreamConnection, reads: list[bytes]) -> Owner:
    owner = Owner()
    conn.send(owner, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", False)  # type: ignore[arg-type]
    for data in reads:
        conn.data_received(data)
    return owner


def test_reads_after_the_head_are_handed_over_as_read() -> None:
    size = 1 << 20
    first = HEAD % size + b"a" * 1000
    rest = [b"b" * 300_000, b"c" * 300_000, b"d" * (size - 601_000)]
    conn = connection()
    owner = exchange(conn, [first, *rest])
    assert b"".join(owner.pieces) == b"a" * 1000 + b"".join(rest)
    # Not copies made by the parser: the objects the transport read.
    assert all(any(p is r for p in owner.pieces) for r in rest)
    assert owner.ends == [True]


def test_the_next_response_is_parsed_afresh() -> None:
    conn = connection()
    body = b"x" * 200_000
    one = exchange(conn, [HEAD % len(body), body[:70_000], body[70_000:]])
    two = exchange(conn, [b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"])
    assert (b"".join(one.pieces), one.ends) == (body, [True])
    assert (b"".join(two.pieces), two.ends) == (b"hello", [True])


def test_bytes_past_the_length_are_not_relayed_and_end_reuse() -> None:
    conn = connection()
    body = b"y" * 150_000
    owner = exchange(conn, [HEAD % len(body) + body[:10], body[10:] + b"HTTP/1.1 200 OK\r\n"])
    assert b"".join(owner.pieces) == body
    assert owner.ends == [False]


def test_a_body_read_byte_by_byte_at_its_end() -> None:
    conn = connection()
    body = bytes(range(256)) * 400  # 102,400 bytes
    reads = [
        HEAD % len(body),
        body[:-3],
        *(body[i : i + 1] for i in range(len(body) - 3, len(body))),
    ]
    owner = exchange(conn, reads)
    assert (b"".join(owner.pieces), owner.ends) == (body, [True])


def test_a_short_body_stays_with_the_parser() -> None:
    conn = connection()
    body = b"z" * 99_999  # five digits
    owner = exchange(conn, [HEAD % len(body), body])
    assert (b"".join(owner.pieces), owner.ends) == (body, [True])
    assert conn.body_left == 0
