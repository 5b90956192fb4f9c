"""The HTTP front ends the in-memory suite runs: one entry per front end (and variant).

An entry names the client codec that speaks its version and the protocol factory the
worker serves it with (`(WorkerState, EntryPointRuntime) -> protocol factory`, as
`loop.create_server` takes it), plus the static entrypoint options it runs under. Adding
the HTTP/2 front end means adding its entry here: every case in test_front_ends.py then
runs through it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from proxynow.edge.graph.state import WorkerState
from proxynow.edge.http.exchange import EntryPointRuntime
from proxynow.edge.http1.factory import http_protocol_factory
from proxynow.edge.http2.factory import http2_protocol_factory
from tests.support.h2codecs import codec_env
from tests.transport.client_codecs import ClientCodec, Http1Codec, Http2Codec

__all__ = ["FRONT_ENDS", "FrontEnd"]

ProtocolFactory = Callable[[WorkerState, EntryPointRuntime], Callable[[], asyncio.Protocol]]


def http2_on(codec: str) -> ProtocolFactory:
    """The HTTP/2 front end on one codec (PROXYNOW_H2_CODEC while its factory is built)."""

    def factory(
        state: WorkerState, entrypoint: EntryPointRuntime
    ) -> Callable[[], asyncio.Protocol]:
        with codec_env(codec):
            return http2_protocol_factory(state, entrypoint)

    return factory


@dataclass(frozen=True)
class FrontEnd:
    name: str
    codec: Callable[[], ClientCodec]
    factory: ProtocolFactory
    entrypoint: dict[str, Any] = field(default_factory=dict)  # static entrypoint options


FRONT_ENDS = [
    FrontEnd("http1", Http1Codec, http_protocol_factory),
    # The same front end on an entrypoint with connection limits: the factory serves it
    # with another protocol class, which must answer every case the same way.
    FrontEnd(
        "http1-limits",
        Http1Codec,
        http_protocol_factory,
        {
            "transport": {
                "keepAliveMaxRequests": 1000,
                "respondingTimeouts": {"writeTimeout": "60s"},
            }
        },
    ),
    # HTTP/2 with prior knowledge (h2c): every stream an exchange on the same dispatch; on
    # libnghttp2's codec (the default) and on h2's (the fallback).
    FrontEnd("http2", Http2Codec, http2_on("nghttp2")),
    FrontEnd("http2-h2", Http2Codec, http2_on("h2")),
]
