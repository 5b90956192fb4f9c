"""`rateLimit`: a token bucket per source, with Traefik's short wait before a 429.

Each source (`sourceCriterion`, the peer address by default: source.py) has a bucket of
`burst` tokens refilled at `average / period` per second (Go's golang.org/x/time/rate, as
Traefik uses it: traefik pkg/middlewares/ratelimiter/). A request takes a token; when the
bucket is empty it reserves one in the future, and:

- if that is at most `max_delay` away (1/(2·rate), 0.5 s below one request a second), the
  request waits that long and goes on: a `Defer` resumed by a loop timer, never a sleep
  or a task;
- else the reservation is given back and the answer is 429 with `Retry-After` (whole
  seconds, rounded up) and `X-Retry-In` (the wait, as Go prints a duration).

`average` 0 means no limit: the step has no hook at all. The buckets are bounded in memory
as Traefik's ttlmap bounds them: a bucket idle for its time-to-live (1 s more than the
time one token takes, at least 2 s) is forgotten (a new one is full), at most
`MAX_SOURCES` are kept, the least recently used going first, and a long source key (a
client's header value) is kept as its digest.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import TYPE_CHECKING

from proxynow.edge.http.middlewares.base import (
    BuildContext,
    Defer,
    Reply,
    RequestHook,
    Resume,
    Step,
)
from proxynow.edge.http.middlewares.replies import text_reply
from proxynow.edge.http.middlewares.source import Extract, peer, source_criterion

if TYPE_CHECKING:
    from proxynow.config.middlewares import Middleware
    from proxynow.edge.http.exchange import Exchange

__all__ = ["MAX_SOURCES", "Buckets", "build", "go_duration"]

MAX_SOURCES = 65536  # Traefik's maxSources
# A source key longer than this (a header value chosen by the client) is kept as its
# SHA-256, so that the table's memory is bounded by MAX_SOURCES times a small size.
MAX_KEY = 64


def build(middleware: Middleware, context: BuildContext) -> Step:
    """The `rateLimit` builder (registry.py); `ValueError` for a bad option."""
    options = middleware.rate_limit
    assert options is not None
    if options.period < 0:
        raise ValueError("period must not be negative")
    extract = source_criterion(options.source_criterion, default_host=False)
    if options.average <= 0:
        return Step("rateLimit")  # no limit: nothing to call
    rate = options.average / (options.period or 1.0)
    limiter = _limiter(Buckets(rate, max(options.burst, 1)), extract)
    return Step("rateLimit", request=limiter, rewrites=frozenset())


def _limiter(buckets: Buckets, extract: Extract) -> RequestHook:
    if extract is peer:
        return _by_peer(buckets)

    def request(exchange: Exchange) -> Reply | Defer | None:
        source = extract(exchange)
        if len(source) > MAX_KEY:
            source = hashlib.sha256(source.encode("utf-8", "surrogateescape")).hexdigest()
        delay = buckets.take(source, time.monotonic())
        return None if delay == 0.0 else _delayed(delay)

    return request


def _by_peer(buckets: Buckets) -> RequestHook:
    """The default source, keyed by the peer's parsed address (no text made per request;
    the address object hashes and compares as its value)."""

    def request(exchange: Exchange) -> Reply | Defer | None:
        delay = buckets.take(exchange.client_ip or "", time.monotonic())
        return None if delay == 0.0 else _delayed(delay)

    return request


def _delayed(delay: float) -> Reply | Defer:
    """A positive `delay`: wait that long (a loop timer); a negative one: refused."""
    if delay > 0.0:
        return Defer(lambda resume: _wait(delay, resume))
    return _too_many(-delay)


def _wait(delay: float, resume: Resume) -> None:
    # Relative to now: the buckets' clock (time.monotonic) need not be the loop's.
    asyncio.get_running_loop().call_later(delay, resume, None)


def _too_many(delay: float) -> Reply:
    return text_reply(
        429,
        (b"Retry-After", b"%d" % math.ceil(delay)),
        (b"X-Retry-In", go_duration(delay).encode()),
    )


class _Bucket:
    """One source's tokens and the time they were counted at (floats held unboxed by the
    compiled build: a request that takes a token allocates nothing)."""

    __slots__ = ("at", "tokens")

    def __init__(self, tokens: float, at: float) -> None:
        self.tokens = tokens
        self.at = at


class Buckets:
    """The token buckets of one rateLimit, by source (LRU-bounded, idle ones forgotten)."""

    __slots__ = ("burst", "last", "last_bucket", "limit", "max_delay", "rate", "table", "ttl")

    def __init__(self, rate: float, burst: int, limit: int = MAX_SOURCES) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.limit = limit
        # Go truncates the rate to an integer here (time.Duration(rtl)).
        self.max_delay = 0.5 if rate < 1 else 1.0 / (2 * int(rate))
        self.ttl = 2.0 if rate >= 1 else 1.0 + int(1 / rate)
        self.table: OrderedDict[Hashable, _Bucket] = OrderedDict()
        # The source of the last take and its bucket: the same object again (a keep-alive
        # connection's peer address, shared by the connections of that peer) is found
        # without hashing (an address hashes in Python) and is already the most recent.
        self.last: object = None
        self.last_bucket: _Bucket | None = None

    def take(self, source: Hashable, now: float) -> float:
        """Take a token for `source` at `now`: 0.0 to go on now, a positive wait to go on
        after, or minus the wait refused (answer 429)."""
        bucket = self.last_bucket if source is self.last else self._find(source)
        assert bucket is not None
        if now - bucket.at > self.ttl:
            bucket.tokens, bucket.at = self.burst, now  # idle past its ttl: full again
        else:
            tokens = bucket.tokens + (now - bucket.at) * self.rate
            bucket.tokens = tokens if tokens < self.burst else self.burst  # not min(): boxed
            bucket.at = now
        tokens = bucket.tokens - 1.0
        if tokens >= 0.0:
            bucket.tokens = tokens
            return 0.0
        delay = -tokens / self.rate
        if delay > self.max_delay:
            return -delay  # the reservation is cancelled: the token stays
        bucket.tokens = tokens
        return delay

    def _find(self, source: Hashable) -> _Bucket:
        """`source`'s bucket, made the most recent (a new, full one if it has none)."""
        table = self.table
        bucket = table.get(source)
        if bucket is None:
            bucket = table[source] = _Bucket(self.burst, -math.inf)
            if len(table) > self.limit:
                table.popitem(last=False)
                if source not in table:  # a limit of 0 keeps nothing: nor does the memo
                    return bucket
        else:
            table.move_to_end(source)
        self.last, self.last_bucket = source, bucket
        return bucket


def go_duration(seconds: float) -> str:
    """A duration as Go's time.Duration.String prints it (`1.5s`, `250ms`, `1m30s`)."""
    nanos = round(seconds * 1e9)
    if nanos < 1_000:
        return f"{nanos}ns"
    if nanos < 1_000_000:
        return _trim(nanos / 1e3) + "µs"
    if nanos < 1_000_000_000:
        return _trim(nanos / 1e6) + "ms"
    hours, rest = divmod(nanos, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = _trim(rest / 1e9) + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    return f"{minutes}m{text}" if minutes else text


def _trim(value: float) -> str:
    return f"{value:.9f}".rstrip("0").rstrip(".")
