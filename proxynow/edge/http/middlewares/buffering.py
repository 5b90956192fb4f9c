"""`buffering`: read a request's body whole before it goes to a backend, as Traefik does.

A request with a body waits (a `Defer`, no task) while the HTTP/1 front end reads its body
into a `RequestBuffer` (body_buffer.py): `memRequestBodyBytes` in memory (1 MiB), the rest
in a temporary file, at most `maxRequestBodyBytes` (0: no limit) or the rest is read off,
dropped, and the client gets 413 at the body's end, as Traefik's client sees it. The
backend then gets the request with a Content-Length, at the proxy's pace, not the
client's: a slow upload occupies no backend connection. A Content-Length over the limit
with `Expect: 100-continue` is answered 413 at once. Over HTTP/2 the body is streamed
(only a Content-Length over the limit gets its 413).

Not applied yet (`problem`, so a middleware setting them is disabled with that error):
response buffering (`maxResponseBodyBytes`; responses are streamed, and
`memResponseBodyBytes` has nothing to bound) and `retryExpression`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proxynow.edge.http.middlewares.base import BuildContext, Defer, Reply, Resume, Step
from proxynow.edge.http.middlewares.body_buffer import TOO_LARGE, RequestBuffer

if TYPE_CHECKING:
    from proxynow.config.middlewares import Middleware
    from proxynow.edge.http.exchange import Exchange

__all__ = ["build", "problem"]


def problem(middleware: Middleware) -> str | None:
    """Why this buffering cannot be applied as written, or None."""
    options = middleware.buffering
    assert options is not None
    unapplied = [
        name
        for name, value in (
            ("maxResponseBodyBytes", options.max_response_body_bytes > 0),
            ("retryExpression", bool(options.retry_expression)),
        )
        if value
    ]
    if unapplied:
        return f"buffering {' and '.join(unapplied)} not implemented yet"
    return None


def build(middleware: Middleware, context: BuildContext) -> Step:
    """The `buffering` builder (registry.py)."""
    options = middleware.buffering
    assert options is not None
    limit = max(options.max_request_body_bytes, 0)
    memory = max(options.mem_request_body_bytes, 0)

    def request(exchange: Exchange) -> Reply | Defer | None:
        head = exchange.head
        if exchange.complete or not (head.lengths or exchange.chunked):
            return None  # no body to read
        over = bool(limit and head.lengths and int(head.content_length) > limit)
        gate = exchange.reader
        if gate is None or (over and exchange.expect_continue):
            return TOO_LARGE if over else None  # HTTP/2: streamed; or no body sent yet

        def start(resume: Resume) -> None:
            buffer = RequestBuffer(exchange, limit, memory, resume, gate)
            buffer.start()
            if over:  # read off, never kept: answered at its end
                buffer.discard()

        return Defer(start)

    def outcome(exchange: Exchange, now: float) -> None:
        sink = exchange.sink
        if sink is not None:
            sink.close()

    return Step("buffering", request=request, outcome=outcome)
