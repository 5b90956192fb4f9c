"""The protocol factory of HTTP/2 connections on one entrypoint (ALPN `h2` after a TLS
handshake, prior-knowledge h2c handed over by the HTTP/1 front end)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from proxynow.edge.http.peers import PeerCache
from proxynow.edge.http2.choice import codec_factory
from proxynow.edge.http2.codec import Settings
from proxynow.edge.http2.protocol import H2Proxy

if TYPE_CHECKING:
    from proxynow.edge.graph.state import WorkerState
    from proxynow.edge.http.exchange import EntryPointRuntime

__all__ = ["http2_protocol_factory", "settings_for"]

_MAX_SETTING = 2**31 - 1


def settings_for(entrypoint: EntryPointRuntime) -> Settings:
    """The SETTINGS an entrypoint's connections announce (Traefik's defaults)."""
    # SETTINGS values are 32-bit (RFC 9113 §6.5.1): a configured value past it is clamped.
    return Settings(
        max_concurrent_streams=min(max(1, entrypoint.max_concurrent_streams), _MAX_SETTING),
        max_header_list_size=min(entrypoint.max_header_bytes, _MAX_SETTING),
    )


def http2_protocol_factory(
    state: WorkerState, entrypoint: EntryPointRuntime, peers: PeerCache | None = None
) -> Callable[[], asyncio.Protocol]:
    """The protocol factory for HTTP/2 connections of one entrypoint (`peers`: the HTTP/1
    front end's cache of the same entrypoint, shared when given)."""
    stats = state.metrics.entrypoint(entrypoint.name)
    shared = peers if peers is not None else PeerCache(entrypoint)
    settings = settings_for(entrypoint)
    codec = codec_factory()

    def factory() -> asyncio.Protocol:
        return H2Proxy(state, entrypoint, stats, shared, settings, codec)

    return factory
