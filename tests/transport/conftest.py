"""Fixtures of the in-memory front-end suite: real loopback backends, a worker state with
their routes, and the front ends of front_ends.py (every case runs through each)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.transport.front_ends import FRONT_ENDS, FrontEnd
from tests.transport.harness import Backend, Proxied, routes


@pytest.fixture
def refused_url() -> Iterator[str]:
    with socket.socket() as bound:  # bound, never listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{bound.getsockname()[1]}"


@pytest.fixture
async def backends() -> AsyncIterator[tuple[Backend, Backend]]:
    one, two = Backend("one"), Backend("two")
    await one.start()
    await two.start()
    try:
        yield one, two
    finally:
        one.release.set()
        await one.runner.cleanup()
        await two.runner.cleanup()


@pytest.fixture(params=FRONT_ENDS, ids=[front_end.name for front_end in FRONT_ENDS])
def front_end(request: pytest.FixtureRequest) -> FrontEnd:
    front: FrontEnd = request.param
    return front


@pytest.fixture
async def proxied(
    front_end: FrontEnd, backends: tuple[Backend, Backend], refused_url: str
) -> AsyncIterator[Proxied]:
    proxy = Proxied(front_end, routes(*backends, refused_url))
    try:
        yield proxy
    finally:
        await proxy.close()
