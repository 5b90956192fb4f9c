"""`retry`: send a request again when its backend could not be reached, as Traefik does.

A request is sent anew (through the load balancer again, so to another server when
there is one) while it has `attempts` left and nothing of it reached a backend: a dial
that failed (refused, timed out). Once a backend has the request, its answer stands,
whatever its status, and an answer the proxy gives itself (503: no server) is not
retried. Between attempts it waits an exponential backoff from `initialInterval` (doubling
each time, at most twice `initialInterval`, Traefik's maximum), on a loop timer: no task. Requests
with a method that is not idempotent (POST, PATCH) are retried only with
`retryNonIdempotentMethod`. Traefik v3.7's `status` and `timeout` are not applied yet: a
middleware that sets them is disabled with that error (`problem`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from proxynow.edge.http.middlewares.base import BuildContext, Step

if TYPE_CHECKING:
    from proxynow.config.middlewares import Middleware
    from proxynow.edge.http.exchange import Exchange

__all__ = ["build", "problem"]

# RFC 9110 §9.2.2: repeating these has the effect of doing it once.
_IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})


def problem(middleware: Middleware) -> str | None:
    """Why this retry cannot be applied as written, or None."""
    options = middleware.retry
    assert options is not None
    if options.attempts <= 0:
        return f"retry attempts must be positive, got {options.attempts}"
    unapplied = [
        name for name, value in (("status", options.status), ("timeout", options.timeout)) if value
    ]
    if unapplied:
        return f"retry {' and '.join(unapplied)} are not implemented yet"
    return None


def build(middleware: Middleware, context: BuildContext) -> Step:
    """The `retry` builder (registry.py)."""
    options = middleware.retry
    assert options is not None
    attempts = max(options.attempts, 1)
    initial = max(options.initial_interval, 0.0)
    on_network = not options.disable_retry_on_network_error
    any_method = options.retry_non_idempotent_method
    tried: dict[int, int] = {}  # id(exchange) → attempts made, while it lives

    def failure(exchange: Exchange, status: int, again: Callable[[], None]) -> bool:
        if not on_network or status == 503:
            return False
        if not any_method and exchange.method_b not in _IDEMPOTENT:
            return False
        key = id(exchange)
        made = tried.get(key, 1)
        if made >= attempts:
            return False
        tried[key] = made + 1
        delay = min(initial * 2 ** (made - 1), 2 * initial) if initial else 0.0
        asyncio.get_running_loop().call_later(delay, again)
        return True

    def outcome(exchange: Exchange, now: float) -> None:
        tried.pop(id(exchange), None)

    return Step("retry", outcome=outcome, failure=failure)
