"""`retry`: send a request again when its backend could not be reached, or (Traefik v3.7's
`status`) answered with a status of the ranges given, as Traefik does.

A request is sent anew (through the load balancer again, so to another server when there
is one) while it has `attempts` left and nothing of an answer went to the client:

- a dial that failed (refused, timed out): nothing of the request reached a backend
  (`failure` hook; off with `disableRetryOnNetworkError`, which needs `status`);
- a response head whose status is in `status`: the `response_head` hook discards it (its
  body is drained off the connection, which goes back to its pool) and resumes with
  `RESEND`, and dispatch sends the request again (edge/proxy/dispatch.py `replace`).
  A request with a body is sent again only when the whole body was read and kept within
  `maxRequestBodyBytes` (`Exchange.replay`, filled by the front end as the body goes
  out); a larger one is sent once and its answer stands, as in Traefik.

An answer the proxy gives itself (503: no server) is not retried. `timeout` is how long
the middleware may retry, from the request's start: an answer (or a failed dial) that
comes after it stands; one before it is retried even if the backoff then ends past it,
and the attempt in flight is never cut (measured against Traefik 3.7.15). Between
attempts it waits an exponential backoff from `initialInterval` (doubling each time, at most twice
`initialInterval`, Traefik's maximum), on a loop timer: no task. Requests with a method
that is not idempotent (POST, PATCH) are retried only with `retryNonIdempotentMethod`.
Over HTTP/2 only dial failures are retried (the front end does not replace responses).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from proxynow.edge.http.middlewares.base import RESEND, BuildContext, Defer, Resume, Step
from proxynow.edge.http.middlewares.errors import parse_ranges
from proxynow.edge.http.replay import Replay

if TYPE_CHECKING:
    from proxynow.config.middlewares import Middleware
    from proxynow.edge.http.exchange import Exchange
    from proxynow.edge.message.headers import ResponseHead

__all__ = ["build", "problem"]

# RFC 9110 §9.2.2: repeating these has the effect of doing it once.
_IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})


def problem(middleware: Middleware) -> str | None:
    """Why this retry cannot be applied as written, or None."""
    options = middleware.retry
    assert options is not None
    if options.attempts <= 0:
        return f"retry attempts must be positive, got {options.attempts}"
    if options.disable_retry_on_network_error and not options.status:
        return "retry disableRetryOnNetworkError needs status: nothing would be retried"
    return None


class _Attempts:
    """What one retry middleware knows of the requests it may send again: attempts made
    per exchange (while it lives), the backoff, the window."""

    def __init__(self, attempts: int, initial: float, window: float) -> None:
        self.attempts = attempts
        self.initial = initial
        self.window = window
        self.tried: dict[int, int] = {}  # id(exchange) → attempts made

    def next_delay(self, exchange: Exchange, now: float) -> float | None:
        """The wait before the next attempt, counted as made; None: no attempt left."""
        if self.window and now - exchange.start >= self.window:
            return None  # the window is over: this answer stands (Traefik checks it here)
        key = id(exchange)
        made = self.tried.get(key, 1)
        if made >= self.attempts:
            return None
        self.tried[key] = made + 1
        initial = self.initial
        return min(initial * 2 ** (made - 1), 2 * initial) if initial else 0.0


def build(middleware: Middleware, context: BuildContext) -> Step:
    """The `retry` builder (registry.py)."""
    options = middleware.retry
    assert options is not None
    state = _Attempts(
        max(options.attempts, 1), max(options.initial_interval, 0.0), max(options.timeout, 0.0)
    )
    on_network = not options.disable_retry_on_network_error
    any_method = options.retry_non_idempotent_method
    ranges = parse_ranges(options.status, context.router)
    keep = options.max_request_body_bytes

    def allowed(exchange: Exchange) -> bool:
        return any_method or exchange.method_b in _IDEMPOTENT

    def failure(exchange: Exchange, status: int, again: Callable[[], None]) -> bool:
        if not on_network or status == 503 or not allowed(exchange):
            return False
        loop = asyncio.get_running_loop()
        delay = state.next_delay(exchange, loop.time())
        if delay is None:
            return False
        loop.call_later(delay, again)
        return True

    def request(exchange: Exchange) -> None:
        head = exchange.head
        if (head.lengths or exchange.chunked) and not exchange.complete and allowed(exchange):
            exchange.replay = Replay(keep)  # the body is kept as it goes out
        return None

    def response_head(exchange: Exchange, status: int, head: ResponseHead) -> Defer | None:
        if not any(low <= status <= high for low, high in ranges) or exchange.upgrade:
            return None
        if not allowed(exchange) or not _replayable(exchange):
            return None
        loop = asyncio.get_running_loop()
        delay = state.next_delay(exchange, loop.time())
        if delay is None:
            return None

        def start(resume: Resume) -> None:
            loop.call_later(delay, resume, RESEND)

        return Defer(start)

    def outcome(exchange: Exchange, now: float) -> None:
        state.tried.pop(id(exchange), None)

    if not ranges:
        return Step("retry", outcome=outcome, failure=failure)
    return Step(
        "retry", request=request, response_head=response_head, outcome=outcome, failure=failure
    )


def _replayable(exchange: Exchange) -> bool:
    """Whether the request can be sent whole again: no body, or all of it kept."""
    if exchange.complete and exchange.replay is None:
        return not exchange.body_sent or not (exchange.head.lengths or exchange.chunked)
    replay = exchange.replay
    return exchange.complete and replay is not None and replay.body is not None
