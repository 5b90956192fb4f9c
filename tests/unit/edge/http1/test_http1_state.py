"""The phases of an HTTP/1 client connection (edge/http1/protocol.py): one explicit state.

The table of transitions is checked whole (every allowed step enters what the table says,
every other one raises `IllegalTransition`), each phase's deadline is checked, and real
requests through `HttpProxy` on an in-memory transport are checked to walk the phases they
should, every step through the one method `_enter`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from proxynow.edge.graph.state import WorkerState
from proxynow.edge.http.exchange import EntryPointRuntime, Exchange
from proxynow.edge.http1 import protocol as http1
from proxynow.edge.http1.factory import http_protocol_factory
from proxynow.edge.http1.protocol import (
    AWAITING,
    BODY,
    CLOSED,
    CLOSING,
    HEAD,
    IDLE,
    INF,
    PHASES,
    RESPONDING,
    TRANSITIONS,
    TUNNEL,
    UPGRADING,
    HttpProxy,
    IllegalTransition,
)
from proxynow.edge.message.headers import RequestHead

# What each phase may be asked to become, and what it becomes (the design, written out).
EXPECTED: dict[int, dict[int, int]] = {
    IDLE: {HEAD: HEAD, BODY: BODY, AWAITING: AWAITING, CLOSING: CLOSING, CLOSED: CLOSED},
    HEAD: {HEAD: HEAD, BODY: BODY, AWAITING: AWAITING, CLOSING: CLOSING, CLOSED: CLOSED},
    BODY: {
        AWAITING: AWAITING,
        RESPONDING: RESPONDING,
        IDLE: IDLE,
        HEAD: HEAD,
        CLOSING: CLOSING,
        CLOSED: CLOSED,
    },
    AWAITING: {
        AWAITING: AWAITING,
        RESPONDING: RESPONDING,
        UPGRADING: UPGRADING,
        IDLE: IDLE,
        HEAD: HEAD,
        CLOSING: CLOSING,
        CLOSED: CLOSED,
    },
    RESPONDING: {
        RESPONDING: RESPONDING,
        IDLE: IDLE,
        HEAD: HEAD,
        CLOSING: CLOSING,
        CLOSED: CLOSED,
    },
    # A backend that answers an Upgrade request without a 101 ends the connection.
    UPGRADING: {
        UPGRADING: UPGRADING,
        TUNNEL: TUNNEL,
        RESPONDING: CLOSING,
        CLOSING: CLOSING,
        CLOSED: CLOSED,
    },
    TUNNEL: {CLOSING: CLOSING, CLOSED: CLOSED},
    # The exchange still answered while closing moves on; the connection stays closing.
    CLOSING: {AWAITING: CLOSING, RESPONDING: CLOSING, CLOSING: CLOSING, CLOSED: CLOSED},
    CLOSED: {CLOSING: CLOSED, CLOSED: CLOSED},
}

REQUEST = b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n"


class Transport:
    """An in-memory transport: what is written is kept."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    abort = close

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def get_write_buffer_size(self) -> int:
        return 0


class Recording(HttpProxy):
    """An HttpProxy that records every phase it enters (through the one method)."""

    __slots__ = ("entered",)

    def _enter(self, phase: int, now: float) -> None:
        super()._enter(phase, now)
        self.entered.append(self.phase)


@pytest.fixture
async def state() -> AsyncIterator[WorkerState]:
    worker = WorkerState()
    yield worker
    worker.stop()


def _proxy(state: WorkerState, **options: Any) -> tuple[HttpProxy, Transport]:
    proxy = http_protocol_factory(state, EntryPointRuntime("web", **options))()
    assert isinstance(proxy, HttpProxy)
    transport = Transport()
    proxy.connection_made(transport)  # type: ignore[arg-type]
    return proxy, transport


def _recording(state: WorkerState) -> tuple[Recording, Transport]:
    entrypoint = EntryPointRuntime("web")
    stats = state.metrics.entrypoint("web")
    proxy = Recording(state, entrypoint, stats, http1.PeerCache(entrypoint))
    proxy.entered = []
    transport = Transport()
    proxy.connection_made(transport)  # type: ignore[arg-type]
    return proxy, transport


def test_the_table_is_the_design() -> None:
    assert TRANSITIONS == EXPECTED
    assert len(PHASES) == len(TRANSITIONS) == CLOSED + 1


@pytest.mark.parametrize("old", range(len(PHASES)), ids=PHASES)
async def test_every_transition_enters_what_the_table_says_or_raises(
    state: WorkerState, old: int
) -> None:
    proxy, _ = _proxy(state)
    for asked in range(len(PHASES)):
        proxy.phase = old
        proxy.active = Exchange(RequestHead(False), 0.0, None)
        expected = EXPECTED[old].get(asked)
        if expected is None:
            with pytest.raises(IllegalTransition):
                proxy._enter(asked, 1.0)
            assert proxy.phase == old  # an illegal step changes nothing
        else:
            proxy._enter(asked, 1.0)
            assert proxy.phase == expected, (PHASES[old], PHASES[asked])


async def test_each_phase_arms_its_own_deadline(state: WorkerState) -> None:
    proxy, _ = _proxy(state, read_timeout=5.0, idle_timeout=50.0)
    proxy.active = Exchange(RequestHead(False), 0.0, None)
    proxy.phase = IDLE
    proxy._enter(HEAD, 10.0)
    assert proxy.deadline == 15.0  # readTimeout
    proxy._enter(BODY, 10.0)  # callers pass the request's start: readTimeout covers it all
    assert proxy.deadline == 15.0
    proxy._enter(AWAITING, 12.0)
    assert proxy.deadline == INF  # no server, no responseHeaderTimeout
    proxy.active.complete = True
    proxy._enter(RESPONDING, 13.0)
    assert proxy.deadline == INF
    proxy._enter(IDLE, 14.0)
    assert proxy.deadline == 64.0  # idleTimeout
    proxy._enter(AWAITING, 15.0)
    proxy._enter(CLOSING, 15.0)
    assert proxy.deadline == INF  # closing, waiting for nothing (no timeout was armed)
    proxy.deadline = 20.0  # as if a responseHeaderTimeout was armed
    proxy._enter(CLOSING, 16.0)
    assert proxy.deadline == 20.0  # still awaiting a response head: its 504 stands
    proxy.active = None
    proxy._enter(CLOSING, 17.0)
    assert proxy.deadline == INF


async def test_requests_answered_404_walk_awaiting_idle_and_head_when_in_pieces(
    state: WorkerState,
) -> None:
    proxy, transport = _recording(state)
    assert proxy.entered == [HEAD]  # the first request is read from the connection's start
    proxy.data_received(REQUEST[:10])
    proxy.data_received(REQUEST[10:])
    assert transport.written[0].startswith(b"HTTP/1.1 404")
    # A head read whole in one read goes from IDLE (or the connection's HEAD) straight to
    # AWAITING; only a read that ends inside a head enters HEAD.
    assert proxy.entered == [HEAD, HEAD, AWAITING, IDLE]
    proxy.data_received(REQUEST)
    assert proxy.entered[4:] == [AWAITING, IDLE] and not transport.closed
    proxy.data_received(REQUEST[:20])
    assert proxy.entered[6:] == [HEAD]
    proxy.data_received(REQUEST[20:])
    assert proxy.entered[7:] == [AWAITING, IDLE]


async def test_a_request_with_a_body_is_dispatched_in_body(state: WorkerState) -> None:
    proxy, transport = _recording(state)
    proxy.data_received(b"POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 3\r\n\r\n")
    # Answered (404) before its body was read: the connection cannot be reused.
    assert proxy.entered == [HEAD, BODY, CLOSING] and transport.closed
    proxy.data_received(b"abc")  # what comes after is dropped
    assert len(transport.written) == 1


async def test_a_malformed_request_closes(state: WorkerState) -> None:
    proxy, transport = _recording(state)
    proxy.data_received(b"GET / HTTP/1.1\r\nHost: app.test\r\nContent-Length: x\r\n\r\n")
    assert proxy.phase == CLOSING and transport.closed
    assert transport.written == [transport.written[0]]
    assert transport.written[0].startswith(b"HTTP/1.1 400")
    proxy.connection_lost(None)
    assert proxy.phase == CLOSED


async def test_drain_when_idle_closes_at_once(state: WorkerState) -> None:
    proxy, transport = _recording(state)
    proxy.data_received(REQUEST)
    proxy.shutdown()
    assert proxy.entered[-1] == CLOSING and transport.closed


@pytest.mark.patches_hot_path
async def test_a_pipelined_request_refused_behind_one_in_flight_is_answered_after_it(
    state: WorkerState, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy, transport = _recording(state)
    monkeypatch.setattr(http1, "route", lambda downstream, exchange: None)  # stays in flight
    proxy.data_received(REQUEST + b"GET / HTTP/1.1\r\nHost: bad host\r\n\r\n")
    assert proxy.phase == CLOSING and not transport.written and not transport.closed
    active = proxy.active
    assert active is not None
    proxy.error(active, 502)  # the one in flight is answered first, then the refusal
    assert [w[:12] for w in transport.written] == [b"HTTP/1.1 502", b"HTTP/1.1 400"]
    assert transport.closed
