"""The HTTP/2 front end writes once per connection per turn of the loop: responses that
several backends return in the same turn leave in one write (one system call, one TLS
record), not one each.

In memory on both sides (the front end's real protocol and codec, real upstream
connections over recording transports): whether a real kernel hands several backends'
answers to one poll is not something a test can make happen on demand; the e2e suites
(tests/e2e/edge/test_http2_run.py) run the same code over real sockets."""

from __future__ import annotations

import asyncio
from typing import Any

import h2.config
import h2.connection
import h2.events
import pytest

from proxynow.config.dynamic import DynamicConfig
from proxynow.config.static import StaticConfig
from proxynow.edge.graph.state import WorkerState
from proxynow.edge.http.exchange import EntryPointRuntime
from proxynow.edge.http2.factory import http2_protocol_factory
from proxynow.edge.upstream.connection import UpstreamConnection
from proxynow.snapshot import Snapshot
from tests.support.h2codecs import CODECS, codec_env

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nContent-Type: text/plain\r\n\r\nhello\n"
STREAMS = (1, 3, 5)


class Recording:
    """A transport that keeps each write."""

    def __init__(self, peer: tuple[str, int]) -> None:
        self.peer = peer
        self.writes: list[bytes] = []
        self.closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.peer if name == "peername" else default

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    abort = close

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def get_write_buffer_size(self) -> int:
        return 0


def _state() -> WorkerState:
    service = {"loadBalancer": {"servers": [{"url": "http://127.0.0.1:9"}]}}
    router = {"rule": "PathPrefix(`/`)", "service": "s@test"}
    http = {"routers": {"r@test": router}, "services": {"s@test": service}}
    static = StaticConfig.model_validate({"entryPoints": {"web": {"address": ":80"}}})
    state = WorkerState(tick_interval=1.0)
    state.load(Snapshot(version=1, config=DynamicConfig.model_validate({"http": http})), static)
    return state


@pytest.mark.parametrize("codec", CODECS)
async def test_backends_answering_in_one_turn_make_one_write_to_the_client(codec: str) -> None:
    with codec_env(codec):
        state = _state()
        proxy = http2_protocol_factory(state, EntryPointRuntime("web"))()
    client_side = Recording(("127.0.0.1", 40000))
    proxy.connection_made(client_side)  # type: ignore[arg-type]
    (pool,) = state.resources.pools.pools.values()
    backends = []
    for _ in STREAMS:
        upstream = UpstreamConnection(pool)
        backend_side = Recording(("127.0.0.1", 9))
        upstream.connection_made(backend_side)  # type: ignore[arg-type]
        pool.release(upstream, 0.0)
        backends.append((upstream, backend_side))

    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    for stream_id in STREAMS:
        fields = [(":method", "GET"), (":scheme", "http"), (":authority", "app.test")]
        client.send_headers(stream_id, [*fields, (":path", "/")], end_stream=True)
    proxy.data_received(client.data_to_send())  # the three requests in one read
    await asyncio.sleep(0)
    assert all(side.writes for _, side in backends), "each request went to a backend"
    client_side.writes.clear()

    for upstream, _ in backends:  # the three answers read in the same turn
        upstream.data_received(RESPONSE)
    assert client_side.writes == [], "nothing is written before the turn ends"
    await asyncio.sleep(0)

    assert len(client_side.writes) == 1
    events = client.receive_data(client_side.writes[0])
    ended = {e.stream_id for e in events if isinstance(e, h2.events.StreamEnded)}
    bodies = {e.stream_id: e.data for e in events if isinstance(e, h2.events.DataReceived)}
    assert ended == set(STREAMS)
    assert bodies == {stream_id: b"hello\n" for stream_id in STREAMS}
