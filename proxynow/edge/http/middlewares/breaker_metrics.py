"""What a circuit breaker watches, as oxy's RTMetrics keeps it for Traefik: over the last
10 seconds (10 buckets of 1 s) the requests, the network errors (a 502 or 504) and the
counts per status code; over the last 60 seconds (6 buckets of 10 s) the latencies, in a
log-scale histogram with 1% resolution (oxy's HDR histogram keeps 2 significant digits).
Bounded: the status codes are 3 digits, the histogram a few hundred cells per bucket."""

from __future__ import annotations

import math

__all__ = ["RollingMetrics"]

_COUNT_BUCKETS = 10
_COUNT_RESOLUTION = 1.0
_LATENCY_BUCKETS = 6
_LATENCY_RESOLUTION = 10.0
_GROWTH = math.log(1.01)  # one histogram cell per 1% of latency


class _Rolling:
    """Per-bucket dicts in a ring; `cells(now)` are those still in the window."""

    __slots__ = ("buckets", "resolution", "stamps")

    def __init__(self, buckets: int, resolution: float) -> None:
        self.resolution = resolution
        self.buckets: list[dict[int, int]] = [{} for _ in range(buckets)]
        self.stamps = [-1] * buckets  # the period each bucket holds

    def bucket(self, now: float) -> dict[int, int]:
        period = int(now // self.resolution)
        index = period % len(self.buckets)
        if self.stamps[index] != period:
            self.stamps[index] = period
            self.buckets[index] = {}
        return self.buckets[index]

    def cells(self, now: float) -> list[dict[int, int]]:
        period = int(now // self.resolution)
        oldest = period - len(self.buckets) + 1
        return [b for b, stamp in zip(self.buckets, self.stamps, strict=True) if stamp >= oldest]

    def reset(self) -> None:
        self.buckets = [{} for _ in self.buckets]
        self.stamps = [-1] * len(self.stamps)


class RollingMetrics:
    """Requests recorded with their status and latency; read by breaker expressions at
    the time of the last `at(now)` (reads need no clock of their own)."""

    __slots__ = ("codes", "latencies", "now")

    def __init__(self) -> None:
        self.codes = _Rolling(_COUNT_BUCKETS, _COUNT_RESOLUTION)  # status → count
        self.latencies = _Rolling(_LATENCY_BUCKETS, _LATENCY_RESOLUTION)  # cell → count
        self.now = 0.0

    def record(self, status: int, seconds: float, now: float) -> None:
        codes = self.codes.bucket(now)
        codes[status] = codes.get(status, 0) + 1
        micros = max(seconds * 1e6, 1.0)
        cell = int(math.log(micros) / _GROWTH)
        latencies = self.latencies.bucket(now)
        latencies[cell] = latencies.get(cell, 0) + 1

    def at(self, now: float) -> RollingMetrics:
        self.now = now
        return self

    def reset(self) -> None:
        self.codes.reset()
        self.latencies.reset()

    def _counts(self) -> dict[int, int]:
        total: dict[int, int] = {}
        for bucket in self.codes.cells(self.now):
            for status, count in bucket.items():
                total[status] = total.get(status, 0) + count
        return total

    def network_error_ratio(self) -> float:
        counts = self._counts()
        total = sum(counts.values())
        if not total:
            return 0.0
        return (counts.get(502, 0) + counts.get(504, 0)) / total

    def response_code_ratio(self, start_a: int, end_a: int, start_b: int, end_b: int) -> float:
        a = b = 0
        for status, count in self._counts().items():
            if start_a <= status < end_a:
                a += count
            if start_b <= status < end_b:
                b += count
        return a / b if b else 0.0

    def latency_ms(self, quantile: float) -> int:
        """The latency at `quantile` (0-100) in whole milliseconds, 0 with no request."""
        cells: dict[int, int] = {}
        for bucket in self.latencies.cells(self.now):
            for cell, count in bucket.items():
                cells[cell] = cells.get(cell, 0) + count
        total = sum(cells.values())
        if not total:
            return 0
        wanted = max(min(quantile, 100.0), 0.0) / 100.0 * total
        seen = 0
        for cell in sorted(cells):
            seen += cells[cell]
            if seen >= wanted:
                return int(math.exp((cell + 1) * _GROWTH) / 1000)
        return 0
