"""Passive health checks in one worker: real dials to a refused port and a live one."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from proxynow.config.dynamic import DynamicConfig
from proxynow.config.static import StaticConfig
from proxynow.edge.core.errors import ProxyError
from proxynow.edge.graph.build import HttpTarget, Server
from proxynow.edge.graph.state import WorkerState
from proxynow.edge.upstream.connection import UpstreamConnection
from proxynow.rules import SimpleRequest
from proxynow.snapshot import Snapshot

STATIC = StaticConfig.model_validate({"entryPoints": {"web": {"address": ":80"}}})


@pytest.fixture
def refused() -> Iterator[str]:
    """A URL whose port is bound but not listening: every connection is refused."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{bound.getsockname()[1]}"


@pytest.fixture
def listening() -> Iterator[str]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


def target_for(state: WorkerState, service: dict[str, Any]) -> HttpTarget:
    http = {
        "routers": {"r@f": {"rule": "PathPrefix(`/`)", "service": "s@f"}},
        "services": {"s@f": service},
    }
    config = DynamicConfig.model_validate({"http": http})
    graph = state.load(Snapshot(version=1, config=config), STATIC)
    request = SimpleRequest(host="x", path="/", client_ip=ipaddress.ip_address("127.0.0.1"))
    target = graph.http["web"].match(request)
    assert target is not None
    return target


async def dial(server: Server) -> bool:
    """Dial through the server's pool as the protocol does; True if it connected."""
    done: asyncio.Future[UpstreamConnection | ProxyError] = asyncio.Future()
    server.pool.connect(done.set_result)
    async with asyncio.timeout(10):
        result = await done
    if isinstance(result, UpstreamConnection):
        result.close()
        return True
    return False


def urls(target: HttpTarget, n: int = 6) -> set[str]:
    return {s.url if s is not None else "503" for s in (target.pick() for _ in range(n))}


async def test_a_refused_server_leaves_for_the_failure_window_then_returns(
    refused: str, listening: str
) -> None:
    state = WorkerState()
    passive = {"failureWindow": "300ms", "maxFailedAttempts": 2}
    service = {
        "loadBalancer": {
            "servers": [{"url": refused}, {"url": listening}],
            "passiveHealthCheck": passive,
        }
    }
    target = target_for(state, service)
    bad = next(s for s in (target.pick() for _ in range(2)) if s is not None and s.url == refused)
    assert not await dial(bad)
    assert urls(target) == {refused, listening}  # one failure of two allowed
    assert not await dial(bad)
    assert urls(target) == {listening}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while urls(target) != {refused, listening}:  # back once the window has passed
        assert loop.time() < deadline, "the server did not come back"
        await asyncio.sleep(0.02)
    state.stop()


async def test_failures_count_per_server_and_successes_do_not(refused: str, listening: str) -> None:
    state = WorkerState()
    passive = {"failureWindow": "1m", "maxFailedAttempts": 2}
    servers = [{"url": refused}, {"url": listening}]
    service = {"loadBalancer": {"servers": servers, "passiveHealthCheck": passive}}
    target = target_for(state, service)
    by_url = {s.url: s for s in (target.pick() for _ in range(2)) if s is not None}
    assert await dial(by_url[listening])
    assert not await dial(by_url[refused])
    # One failure of two allowed: the live server's success changed nothing for it.
    assert urls(target) == {refused, listening}
    assert not await dial(by_url[refused])
    assert urls(target) == {listening}
    state.stop()


async def test_without_passive_check_nothing_is_counted(refused: str) -> None:
    state = WorkerState()
    target = target_for(state, {"loadBalancer": {"servers": [{"url": refused}]}})
    server = target.pick()
    assert server is not None
    for _ in range(3):
        assert not await dial(server)
    assert urls(target) == {refused}
    state.stop()
