"""rateLimit: Go's token bucket, the short wait before a 429, and the bounded buckets."""

from __future__ import annotations

import asyncio
import gc
import ipaddress
from typing import TypeVar

import pytest

from proxynow.edge.http.middlewares.base import Defer, Reply
from proxynow.edge.http.middlewares.rate_limit import Buckets, go_duration

from .support_access import exchange, step

T = TypeVar("T")


def test_a_bucket_gives_burst_then_waits_then_refuses() -> None:
    buckets = Buckets(rate=10.0, burst=2)  # max delay 1/(2·10) = 50 ms
    assert buckets.take("a", 0.0) == 0.0
    assert buckets.take("a", 0.0) == 0.0
    assert buckets.take("a", 0.06) == pytest.approx(0.04)  # reserved: 40 ms wait
    refused = buckets.take("a", 0.06)
    assert refused == pytest.approx(-0.14)  # 140 ms: over 50 ms, not reserved
    assert buckets.take("a", 0.2) == 0.0  # the refused one did not take a token
    assert buckets.take("b", 0.2) == 0.0  # another source has its own bucket


def test_low_rates_wait_half_a_second_at_most_and_idle_buckets_are_forgotten() -> None:
    buckets = Buckets(rate=0.5, burst=1)
    assert buckets.max_delay == 0.5 and buckets.ttl == 3.0
    assert buckets.take("a", 0.0) == 0.0
    assert buckets.take("a", 1.6) == pytest.approx(0.4)
    assert buckets.take("a", 100.0) == 0.0  # idle past its ttl: a new, full bucket


def test_the_buckets_are_bounded() -> None:
    buckets = Buckets(rate=1000.0, burst=1, limit=100)
    for index in range(10_000):
        buckets.take(f"10.0.{index // 256}.{index % 256}", index * 1e-6)
    assert len(buckets.table) == 100
    assert "10.0.39.15" in buckets.table  # the most recent stay


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.25, "250ms"), (1.5, "1.5s"), (90.0, "1m30s"), (0.000_5, "500µs"), (2.0, "2s")],
)
def test_go_duration(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


async def test_the_hook_defers_on_a_loop_timer_and_answers_429_past_the_wait() -> None:
    hook = step({"rateLimit": {"average": 10, "burst": 1}}).request
    assert hook is not None
    assert hook(exchange()) is None
    loop = asyncio.get_running_loop()
    await asyncio.sleep(0.06)  # the bucket refills 0.6 token: the next waits about 40 ms
    waited = hook(exchange())
    refused = hook(exchange())
    assert isinstance(refused, Reply) and refused.status == 429
    headers = dict(refused.headers)
    assert headers[b"Retry-After"] == b"1" and headers[b"X-Retry-In"].endswith(b"ms")
    assert refused.body == b"Too Many Requests"
    assert isinstance(waited, Defer)
    resumed = loop.create_future()
    started = loop.time()
    waited.start(resumed.set_result)
    assert len(loop._scheduled) >= 1  # type: ignore[attr-defined]  # a timer, no task
    assert await resumed is None
    assert 0.02 <= loop.time() - started <= 0.5


def test_average_zero_is_no_limit_and_costs_nothing() -> None:
    assert step({"rateLimit": {"average": 0}}).request is None
    with pytest.raises(ValueError):
        step({"rateLimit": {"average": 1, "period": -1}})


async def test_long_source_keys_are_kept_as_digests() -> None:
    built = step({"rateLimit": {"average": 100, "sourceCriterion": {"requestHeaderName": "X-K"}}})
    assert built.request is not None
    huge = b"k" * 100_000
    assert built.request(exchange(headers=((b"X-K", huge),))) is None
    assert built.request(exchange(headers=((b"X-K", b"short"),))) is None
    buckets = _held(built.request, Buckets)
    assert sorted(len(key) for key in buckets.table) == [5, 64]


def _held(hook: object, kind: type[T]) -> T:
    """The `kind` object a hook holds: through a Python closure's cells, or a compiled
    closure's environment (mypyc has no `__closure__`), found as the collector sees them."""
    seen: list[object] = [hook]
    for _ in range(4):
        for held in seen:
            if isinstance(held, kind):
                return held
        seen = gc.get_referents(*seen)
    raise AssertionError(f"no {kind.__name__} held by {hook!r}")


def test_the_same_source_object_and_an_equal_one_share_a_bucket() -> None:
    # The last source is found by identity (a connection's peer address): an equal object,
    # or another source in between, finds the same bucket through the table.
    buckets = Buckets(rate=1.0, burst=3)
    first, equal = ipaddress.ip_address("10.0.0.1"), ipaddress.ip_address("10.0.0.1")
    assert first is not equal
    assert buckets.take(first, 0.0) == 0.0
    assert buckets.take(equal, 0.0) == 0.0
    assert buckets.take("other", 0.0) == 0.0
    assert buckets.take(first, 0.0) == 0.0  # the third token of that source
    assert buckets.take(first, 0.0) < 0.0  # none left: refused (1 s away, over 0.5 s)
    assert list(buckets.table) == ["other", first]  # the most recent last


def test_a_limit_of_one_or_none_keeps_at_most_that() -> None:
    for limit in (0, 1):
        buckets = Buckets(rate=1.0, burst=1, limit=limit)
        for _ in range(3):
            assert buckets.take("a", 0.0) == 0.0  # forgotten each time: a new, full one
            assert buckets.take("b", 0.0) == 0.0
        assert len(buckets.table) == limit
        assert (buckets.take("b", 0.0) < 0.0) is (limit == 1)  # kept: its token is taken
