"""retry: which configurations are refused, when a response head is discarded for another
attempt (status ranges, method, the body kept, attempts, the window), and the body copy."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from proxynow.config.middlewares import Middleware
from proxynow.edge.http.exchange import Exchange
from proxynow.edge.http.middlewares.base import RESEND, BuildContext, Defer, Reply, Step
from proxynow.edge.http.middlewares.retry import build, problem
from proxynow.edge.http.replay import MAX_REPLAY, Replay
from proxynow.edge.message.headers import ResponseHead
from tests.unit.edge.http.middlewares.support import exchange


def step(**options: Any) -> Step:
    middleware = Middleware.model_validate({"retry": {"attempts": 3, **options}})
    return build(middleware, BuildContext("r", False, lambda name: None))


def bodyless(method: bytes = b"GET") -> Exchange:
    found = exchange(b"/", method)
    found.complete = True
    return found


def head_hook(found: Step, ex: Exchange, status: int) -> Defer | None:
    assert found.response_head is not None
    return found.response_head(ex, status, ResponseHead())


def test_refused_configurations() -> None:
    def check(**options: Any) -> str | None:
        return problem(Middleware.model_validate({"retry": options}))

    assert check(attempts=0) == "retry attempts must be positive, got 0"
    assert check(attempts=2, disableRetryOnNetworkError=True) is not None
    assert check(attempts=2, disableRetryOnNetworkError=True, status=["500"]) is None
    assert check(attempts=2, status=["500-599"], timeout="1s") is None


def test_without_status_only_dials_are_retried() -> None:
    found = step()
    assert found.response_head is None and found.request is None
    assert found.failure is not None


@pytest.mark.asyncio
async def test_a_status_in_the_ranges_is_sent_again_until_the_attempts_run_out() -> None:
    found = step(status=["500-502", "504"], initialInterval="0s")
    ex = bodyless()
    ex.start = asyncio.get_running_loop().time()
    assert head_hook(found, ex, 200) is None
    assert head_hook(found, ex, 503) is None
    first = head_hook(found, ex, 500)
    assert isinstance(first, Defer)
    assert isinstance(head_hook(found, ex, 504), Defer)
    assert head_hook(found, ex, 504) is None  # the third attempt's answer stands
    assert found.outcome is not None
    found.outcome(ex, 0.0)
    assert isinstance(head_hook(found, ex, 500), Defer)  # counted per exchange


async def test_the_deferred_attempt_resumes_with_resend_after_the_backoff() -> None:
    loop = asyncio.get_running_loop()
    found = step(status=["500"], initialInterval="20ms")
    ex = bodyless()
    ex.start = loop.time()
    deferred = head_hook(found, ex, 500)
    assert deferred is not None
    got: list[tuple[Reply | None, float]] = []
    deferred.start(lambda reply: got.append((reply, loop.time())))
    while not got:
        await asyncio.sleep(0.002)
    assert got[0][0] is RESEND and got[0][1] - ex.start >= 0.02


@pytest.mark.asyncio
async def test_methods_bodies_and_the_window() -> None:
    now = asyncio.get_running_loop().time()
    found = step(status=["500"], initialInterval="0s")
    post = bodyless(b"POST")
    post.start = now
    assert head_hook(found, post, 500) is None  # not idempotent
    # A body not read whole, or not kept, is not sent again.
    put = exchange(b"/", b"PUT")
    put.start, put.head.lengths, put.head.content_length = now, 1, b"3"
    assert found.request is not None
    found.request(put)
    assert put.replay is not None
    assert head_hook(found, put, 500) is None  # the body is still being read
    put.complete = True
    put.replay.add(b"abc")
    assert isinstance(head_hook(found, put, 500), Defer)
    put.replay.body = None
    assert head_hook(found, put, 500) is None
    # The window: an answer that comes `timeout` after the request's start stands; one
    # before it is retried, whatever the backoff.
    windowed = step(status=["500"], initialInterval="1s", timeout="150ms")
    late = bodyless()
    late.start = now - 0.15
    assert head_hook(windowed, late, 500) is None
    late.start = now - 0.1
    assert isinstance(head_hook(windowed, late, 500), Defer)


def test_the_replay_keeps_a_body_within_its_limit() -> None:
    replay = Replay(5)
    replay.took([b"ab"])
    replay.add(b"cd")
    assert replay.again() == [b"ab", b"cd"]
    replay.took([b"ab", b"cd", b"e"])  # resent pieces are not counted twice
    assert replay.body == [b"ab", b"cd", b"e"] and replay.size == 5
    replay.add(b"f")
    assert replay.body is None and replay.again() is None
    assert Replay(-1).limit == MAX_REPLAY
