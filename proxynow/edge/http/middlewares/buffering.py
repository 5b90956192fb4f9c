"""`buffering`: read a request's body whole before it goes to a backend, as Traefik does.

A request with a body waits (a `Defer`, no task) while the HTTP/1 front end reads its body
into a `RequestBuffer` (body_buffer.py): `memRequestBodyBytes` in memory (1 MiB), the rest
in a temporary file, at most `maxRequestBodyBytes` (0: no limit) or the rest is read off,
dropped, and the client gets 413 at the body's end, as Traefik's client sees it. The
backend then gets the request with a Content-Length, at the proxy's pace, not the
client's: a slow upload occupies no backend connection. A Content-Length over the limit
with `Expect: 100-continue` is answered 413 at once. Over HTTP/2 the body is streamed
(only a Content-Length over the limit gets its 413).

`retryExpression` (retry_expression.py) sends a request with a body again, the body from
the buffer, while the expression holds for the attempt just made (at most 10 attempts,
oxy's bound; a request without a body is sent once, as Traefik 3.7.15 does):
on the backend's response head (its status; the answer is discarded and drained, as
retry's `status` does) and on a dial that failed (502, 504: `IsNetworkError()`), picking
a server again. The body is then kept until the exchange ends, not only until sent.

Responses are buffered too, as oxy's buffer does in Traefik (response_buffer.py): read
whole at the backend's pace (`memResponseBodyBytes` in memory, 1 MiB, the rest in a
temporary file), then sent with a Content-Length; over `maxResponseBodyBytes` the backend
is dropped and the client gets 500.

With no limit set (0), a body is still bounded by `UNSET_LIMIT` (1 GiB) on each side,
so that an endless upload or download cannot fill the disk (Traefik has no bound):
a larger one is answered as over a limit (413, 500).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from proxynow.edge.http.middlewares.base import RESEND, BuildContext, Defer, Reply, Resume, Step
from proxynow.edge.http.middlewares.body_buffer import TOO_LARGE, RequestBuffer
from proxynow.edge.http.middlewares.breaker_expression import ExpressionError
from proxynow.edge.http.middlewares.response_buffer import buffered, drop
from proxynow.edge.http.middlewares.retry_expression import Retried, parse

if TYPE_CHECKING:
    from proxynow.config.middlewares import Middleware
    from proxynow.edge.http.exchange import Exchange
    from proxynow.edge.message.headers import ResponseHead

__all__ = ["UNSET_LIMIT", "build", "problem"]

UNSET_LIMIT = 1 << 30  # the bound of a buffered body when its limit is 0 (none)


def problem(middleware: Middleware) -> str | None:
    """Why this buffering cannot be applied as written, or None."""
    options = middleware.buffering
    assert options is not None
    if options.retry_expression:
        try:
            parse(options.retry_expression)
        except ExpressionError as exc:
            return f"buffering retryExpression: {exc}"
    return None


def build(middleware: Middleware, context: BuildContext) -> Step:
    """The `buffering` builder (registry.py)."""
    options = middleware.buffering
    assert options is not None
    limit = options.max_request_body_bytes if options.max_request_body_bytes > 0 else UNSET_LIMIT
    memory = max(options.mem_request_body_bytes, 0)
    responses = (
        options.max_response_body_bytes if options.max_response_body_bytes > 0 else UNSET_LIMIT,
        max(options.mem_response_body_bytes, 0),
    )
    again = parse(options.retry_expression) if options.retry_expression else None

    def request(exchange: Exchange) -> Reply | Defer | None:
        head = exchange.head
        if not (head.lengths or exchange.chunked):
            return None  # no body to read
        over = bool(limit and head.lengths and int(head.content_length) > limit)
        if exchange.complete:  # read whole already (a buffering before this one): its size
            return TOO_LARGE if over else None
        gate = exchange.reader
        if gate is None or (over and exchange.expect_continue):
            return TOO_LARGE if over else None  # HTTP/2: streamed; or no body sent yet

        def start(resume: Resume) -> None:
            # Kept for this step's retryExpression, or for a retry step before it (whose
            # copy would miss what is pumped from the file): the buffer is the copy then.
            keep = again is not None or exchange.replay is not None
            buffer = RequestBuffer(exchange, limit, memory, resume, gate, keep)
            if keep:
                exchange.replay = _Kept(buffer)  # type: ignore[assignment]
            buffer.start()
            if over:  # read off, never kept: answered at its end
                buffer.discard()

        return Defer(start)

    def outcome(exchange: Exchange, now: float) -> None:
        sink = exchange.sink
        if sink is not None:
            sink.close()
        drop(exchange)

    retries = _Retries(again) if again is not None else None

    def response_head(exchange: Exchange, status: int, head: ResponseHead) -> Defer | None:
        if retries is not None:
            resent = retries.response_head(exchange, status, head)
            if resent is not None:
                return resent
        return buffered(exchange, head, status, responses, response_head)

    if retries is None:
        return Step("buffering", request=request, response_head=response_head, outcome=outcome)

    def finished(exchange: Exchange, now: float) -> None:
        retries.made.pop(id(exchange), None)
        outcome(exchange, now)

    return Step(
        "buffering",
        request=request,
        response_head=response_head,
        outcome=finished,
        failure=retries.failure,
    )


_MAX_ATTEMPTS = 10  # oxy's buffer gives up after this many, whatever the expression


class _Retries:
    """Attempts made per exchange, and the decision after each (retryExpression)."""

    def __init__(self, again: Retried) -> None:
        self.again = again
        self.made: dict[int, int] = {}

    def next(self, exchange: Exchange, status: int) -> bool:
        key = id(exchange)
        made = self.made.get(key, 1)
        if made >= _MAX_ATTEMPTS or not self.again(made, status):
            return False
        if exchange.replay is None:
            return False  # no body buffered (none, or HTTP/2's streamed): Traefik sends it once
        self.made[key] = made + 1
        return True

    def response_head(self, exchange: Exchange, status: int, head: ResponseHead) -> Defer | None:
        if exchange.upgrade or not self.next(exchange, status):
            return None
        loop = asyncio.get_running_loop()

        def start(resume: Resume) -> None:
            loop.call_soon(resume, RESEND)  # not from inside the backend's callback

        return Defer(start)

    def failure(self, exchange: Exchange, status: int, again: Callable[[], None]) -> bool:
        if not self.next(exchange, status):
            return False
        asyncio.get_running_loop().call_soon(again)
        return True


class _Kept:
    """The buffered body as dispatch sends it again (`Exchange.replay`'s interface)."""

    __slots__ = ("body", "buffer")

    def __init__(self, buffer: RequestBuffer) -> None:
        self.buffer = buffer
        self.body: list[bytes] | None = []  # not None: it can be sent again

    def add(self, data: bytes) -> None:
        """Nothing: the buffer has every piece already."""

    def took(self, pending: list[bytes]) -> None:
        """Nothing: the buffer keeps what it sends."""

    def again(self) -> list[bytes]:
        return self.buffer.again()
