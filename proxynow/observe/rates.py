"""Per-second rates per router, service and entrypoint, from the workers' counters.

The dashboard's live charts (proxynow/api/stream.py) are fed from here. `RateMeter.update`
is pure: it takes one `Supervisor.collect()` (the same answers the Prometheus scrape
uses), turns each worker's rows into per-name totals (`with_views`, proxynow/observe/views.py),
and returns what each name did since the previous call: requests, requests per second,
the share of 5xx and of 4xx answers, the mean latency, and the bound under which 95% of
the requests finished (the duration histogram's bucket holding the 95th percentile).

Differences are taken per worker process, keyed by (worker slot, pid): a worker's counters
only grow while it lives, and a restarted worker (a new pid) starts from zero, so what it
counted is measured from zero and never subtracted from its predecessor's. A worker that
did not answer is left out of that interval (its next answer covers both). The first
update after `reset` is the baseline of every worker.

A frame lists only the names that had requests in the interval, so its size follows the
traffic, not the configuration; a name missing from a frame did nothing. Internal routers
and services (`...@internal`: the API and the dashboard's own requests) are left out, as
Traefik leaves them out of its metrics.

`RateSampler(collect)` is the I/O shell the stream calls once per second while someone
watches: `reset()` when the first client arrives (the next sample is a baseline), then
`sample()`; nothing here runs when nobody watches.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from proxynow.observe.views import with_views

__all__ = ["RateMeter", "RateSampler", "quantile"]

WorkerId = tuple[int, int]  # (worker slot, pid)
NameKey = tuple[str, str]  # ("routers" | "services" | "entrypoints", name)
_LEVELS = ("entrypoints", "routers", "services")


@dataclass(frozen=True, slots=True)
class _Totals:
    """What one name counted in one worker, cumulative."""

    count: int
    server_errors: int
    client_errors: int
    seconds: float
    buckets: tuple[int, ...]  # per bucket, not cumulative, the last one +Inf

    def minus(self, before: _Totals) -> _Totals:
        return _Totals(
            self.count - before.count,
            self.server_errors - before.server_errors,
            self.client_errors - before.client_errors,
            self.seconds - before.seconds,
            tuple(a - b for a, b in zip(self.buckets, before.buckets, strict=False)),
        )

    def plus(self, other: _Totals) -> _Totals:
        return _Totals(
            self.count + other.count,
            self.server_errors + other.server_errors,
            self.client_errors + other.client_errors,
            self.seconds + other.seconds,
            tuple(a + b for a, b in zip(self.buckets, other.buckets, strict=False)),
        )


def _totals(view: Mapping[str, Any]) -> _Totals:
    requests = view["requests"]
    duration = view["duration"]
    return _Totals(
        int(duration["count"]),
        sum(requests.get("5xx", {}).values()),
        sum(requests.get("4xx", {}).values()),
        float(duration["sum"]),
        tuple(duration["buckets"]),
    )


def _worker_totals(metrics: dict[str, Any]) -> dict[NameKey, _Totals]:
    views = with_views(metrics)
    found: dict[NameKey, _Totals] = {}
    for level in _LEVELS:
        for name, view in views.get(level, {}).items():
            if level != "entrypoints" and name.endswith("@internal"):
                continue
            found[level, name] = _totals(view)
    return found


def quantile(q: float, bounds: Sequence[float], buckets: Sequence[int]) -> float | None:
    """The upper bound of the histogram bucket that holds the q-quantile (`buckets` per
    bucket, the last one +Inf, which gives `inf`); None without observations.

    Not interpolated: with Traefik's coarse buckets (0.1, 0.3, 1.2, 5 s) a linear guess
    inside the first bucket would report 95 ms for requests that took 1 ms. A bound is
    what the histogram knows: "95% of the requests took at most this"."""
    total = sum(buckets)
    if total <= 0:
        return None
    rank = q * total
    below = 0
    for i, count in enumerate(buckets):
        below += count
        if count > 0 and below >= rank:
            return bounds[i] if i < len(bounds) else float("inf")
    return float("inf")


def _rates(totals: _Totals, interval: float, bounds: Sequence[float]) -> dict[str, Any]:
    count = totals.count
    p95 = quantile(0.95, bounds, totals.buckets)
    return {
        "requests": count,
        "rps": round(count / interval, 3),
        "errorRate": round(totals.server_errors / count, 4),
        "clientErrorRate": round(totals.client_errors / count, 4),
        "latencyMs": round(1000 * totals.seconds / count, 3),
        # None past the last bound (more than 5 s by default) and without requests
        "p95Ms": round(1000 * p95, 3) if p95 is not None and p95 != float("inf") else None,
    }


class RateMeter:
    """The differences between successive collections, per name, as rates."""

    __slots__ = ("_last", "_since")

    def __init__(self) -> None:
        self._last: dict[WorkerId, dict[NameKey, _Totals]] = {}
        self._since: float | None = None

    def reset(self) -> None:
        """Forget everything: the next update is a baseline."""
        self._last = {}
        self._since = None

    def update(
        self, collections: Iterable[Mapping[str, Any]], now: float, wall: float
    ) -> dict[str, Any] | None:
        """One collection at monotonic time `now` (Unix time `wall`); the frame of what
        happened since the previous one, or None for the first (a baseline)."""
        moved: dict[NameKey, _Totals] = {}
        bounds: Sequence[float] = ()
        last: dict[WorkerId, dict[NameKey, _Totals]] = {}
        for answer in collections:
            worker: WorkerId = (answer["worker"], answer["pid"])
            current = _worker_totals(answer["metrics"])
            bounds = answer["metrics"].get("buckets", bounds)
            before = self._last.get(worker)
            last[worker] = current
            if before is not None or self._since is not None:
                _add_moves(moved, current, before or {})
        # A worker that did not answer keeps its last totals, so nothing it counted is lost.
        self._last = {**{w: t for w, t in self._last.items() if w not in last}, **last}
        since, self._since = self._since, now
        if since is None or now <= since:
            return None
        interval = now - since
        frame: dict[str, Any] = {"time": round(wall, 3), "interval": round(interval, 3)}
        for level in _LEVELS:
            frame[level] = {
                name: _rates(totals, interval, bounds)
                for (kind, name), totals in sorted(moved.items())
                if kind == level and totals.count > 0
            }
        return frame


def _add_moves(
    moved: dict[NameKey, _Totals],
    current: Mapping[NameKey, _Totals],
    before: Mapping[NameKey, _Totals],
) -> None:
    for key, totals in current.items():
        previous = before.get(key)
        delta = totals.minus(previous) if previous is not None else totals
        if delta.count <= 0:
            continue
        known = moved.get(key)
        moved[key] = delta if known is None else known.plus(delta)


Collect = Callable[[], Awaitable[list[dict[str, Any]]]]


class RateSampler:
    """`RateMeter` over a live `collect` (`Supervisor.collect`), with the clocks."""

    __slots__ = ("_collect", "_meter", "samples")

    def __init__(self, collect: Collect) -> None:
        self._collect = collect
        self._meter = RateMeter()
        self.samples = 0  # collections made: none while nobody watches (tests read it)

    def reset(self) -> None:
        self._meter.reset()

    async def sample(self) -> dict[str, Any] | None:
        answers = await self._collect()
        self.samples += 1
        return self._meter.update(answers, time.monotonic(), time.time())
