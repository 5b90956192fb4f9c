"""Helpers of the access-control middleware unit tests: a step from a Traefik-shaped dict,
an exchange."""

from __future__ import annotations

import ipaddress
from typing import Any

from proxynow.config.middlewares import Middleware
from proxynow.edge.http.exchange import Exchange
from proxynow.edge.http.middlewares.base import BuildContext, Step
from proxynow.edge.http.middlewares.registry import BUILDERS
from proxynow.edge.message.headers import RequestHead


def step(spec: dict[str, Any]) -> Step:
    middleware = Middleware.model_validate(spec)
    return BUILDERS[middleware.kind](middleware, BuildContext("r", False, lambda name: None))


def exchange(
    peer: str | None = "127.0.0.1",
    headers: tuple[tuple[bytes, bytes], ...] = (),
    trusted: bool = True,
    target: bytes = b"/p?q=1",
    method: bytes = b"GET",
) -> Exchange:
    head = RequestHead(trusted)
    head.add(b"Host", b"app.test")
    for name, value in headers:
        head.add(name, value)
    ip = ipaddress.ip_address(peer) if peer is not None else None
    found = Exchange(head, 0.0, ip)
    found.host, found.target, found.method_b = "app.test", target, method
    return found
