"""The protocol factory of an HTTP entrypoint: `HttpProxy`, or `LimitedHttpProxy` when the
entrypoint has writeTimeout or keep-alive limits (chosen once per entrypoint, so that a
request on the default path pays nothing for them)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from proxynow.edge.http.peers import PeerCache
from proxynow.edge.http1.limits import LimitedHttpProxy
from proxynow.edge.http1.protocol import HttpProxy

if TYPE_CHECKING:
    from proxynow.edge.graph.state import WorkerState
    from proxynow.edge.http.exchange import EntryPointRuntime

__all__ = ["http_protocol_factory"]


def http_protocol_factory(
    state: WorkerState,
    entrypoint: EntryPointRuntime,
    h2c: Callable[[], asyncio.Protocol] | None = None,
) -> Callable[[], asyncio.Protocol]:
    """The protocol factory for one HTTP entrypoint (for `loop.create_server`); `h2c`, the
    HTTP/2 front end's, takes the connections that open with the HTTP/2 preface."""
    stats = state.metrics.entrypoint(entrypoint.name)
    peers = PeerCache(entrypoint)
    protocol = LimitedHttpProxy if entrypoint.limits_connections else HttpProxy

    def factory() -> asyncio.Protocol:
        proxy = protocol(state, entrypoint, stats, peers)
        proxy.h2c = h2c
        return proxy

    return factory
