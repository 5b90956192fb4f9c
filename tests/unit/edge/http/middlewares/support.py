"""Building one middleware's step and running its request hook on a bare exchange."""

from __future__ import annotations

from typing import Any

from proxynow.config.middlewares import Middleware
from proxynow.edge.http.exchange import Exchange
from proxynow.edge.http.middlewares.base import BuildContext, Defer, Reply
from proxynow.edge.http.middlewares.registry import BUILDERS
from proxynow.edge.message.headers import RequestHead


def exchange(target: bytes, method: bytes = b"GET", host: bytes = b"h.test") -> Exchange:
    head = RequestHead(False)
    head.add(b"Host", host)
    found = Exchange(head, 0.0, None)
    found.host, found.target, found.method_b = host.decode(), target, method
    return found


def run(
    spec: dict[str, Any], target: bytes, method: bytes = b"GET", secure: bool = False
) -> tuple[Reply | Defer | None, Exchange]:
    """Build `spec` (one middleware) and run its request hook on a request for `target`."""
    middleware = Middleware.model_validate(spec)
    step = BUILDERS[middleware.kind](middleware, BuildContext("r", secure, lambda name: None))
    found = exchange(target, method)
    assert step.request is not None
    return step.request(found), found
