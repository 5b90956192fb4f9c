"""Per-worker request metrics: plain increments, aggregated only when collected.

One `TargetStats` exists per (entrypoint, router, service) and is bound to the graph's
target when the graph is built, so recording a request is three or four increments in one
array the request already holds: no locks, no label formatting, no lookups by name.
Requests that match no router count against the entrypoint's unrouted stats. The stats
outlive graph swaps (counters are cumulative), so they live here, not in the graph.

`collect()` returns plain dicts (picklable) that the control plane merges across workers
and renders as Traefik's metric families (entrypoint / router / service requests by code
class and method, duration histogram with buckets 0.1, 0.3, 1.2, 5 s, bytes, retries,
open connections).
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING, Any

__all__ = [
    "BUCKETS",
    "METHODS",
    "METHOD_INDEX",
    "OTHER_METHOD",
    "STATUS_CLASSES",
    "EntryPointStats",
    "TargetStats",
    "TcpStats",
    "WorkerMetrics",
    "method_index",
]

BUCKETS = (0.1, 0.3, 1.2, 5.0)
METHODS = (
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "CONNECT",
    "OPTIONS",
    "TRACE",
    "PATCH",
    "OTHER",
)
# "other": a three-digit status outside 100-599 (a backend may send 600-999; 999 is seen in
# the wild), counted apart as Traefik's `code` label would show it apart.
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx", "other")
_N_METHODS = len(METHODS)
OTHER_METHOD = _N_METHODS - 1
METHOD_INDEX = {name.encode("ascii"): i for i, name in enumerate(METHODS[:OTHER_METHOD])}


def method_index(method: bytes) -> int:
    """The precomputed index of a request method (unknown methods share one slot)."""
    return METHOD_INDEX.get(method, OTHER_METHOD)


# TargetStats slots: sums first (one cache line with the slow buckets), then the
# requests by (status class, method).
_DURATION_SUM = 0
_BYTES_IN = 1
_BYTES_OUT = 2
_RETRIES = 3
_SLOW_BUCKETS = 4  # the buckets after the first; the first is the total minus these
_REQUESTS = _SLOW_BUCKETS + len(BUCKETS)
_SIZE = _REQUESTS + len(STATUS_CLASSES) * _N_METHODS
_OTHER_CLASS = len(STATUS_CLASSES) - 1
# Status → the first slot of its class's row, for every status the parser can deliver
# (three digits): one tuple index instead of arithmetic that a status of 999 would
# push past the end of the array.
_STATUS_ROW = tuple(
    _REQUESTS + (status // 100 - 1 if 100 <= status < 600 else _OTHER_CLASS) * _N_METHODS
    for status in range(1000)
)


if TYPE_CHECKING:
    _Doubles = array[float]
else:
    _Doubles = array  # not subscriptable at run time before Python 3.12


class TargetStats(_Doubles):
    """Counters for one (entrypoint, router, service) triple, in one array of doubles.

    The values sit inline in one buffer rather than one Python int per counter (each its
    own allocation on its own page), so a request touches two cache lines of its
    router's stats: with 1,000 routers in rotation the int-per-counter layout cost about
    2 µs per request more than with one router. Doubles count exactly up to 2**53. A
    request faster than the first bucket bound (the usual case) adds to three slots.
    """

    __slots__ = ()

    def __new__(cls) -> TargetStats:
        return super().__new__(cls, "d", bytes(8 * _SIZE))  # type: ignore[return-value]

    def observe(
        self, method: int, status: int, duration: float, bytes_in: int, bytes_out: int
    ) -> None:
        """Count one finished request (status 0..999, method from `method_index`)."""
        self[_STATUS_ROW[status] + method] += 1
        self[_DURATION_SUM] += duration
        self[_BYTES_OUT] += bytes_out
        if bytes_in:
            self[_BYTES_IN] += bytes_in
        if duration > 0.1:
            self._slow(duration)

    def _slow(self, duration: float) -> None:
        if duration <= 0.3:
            self[_SLOW_BUCKETS] += 1
        elif duration <= 1.2:
            self[_SLOW_BUCKETS + 1] += 1
        elif duration <= 5.0:
            self[_SLOW_BUCKETS + 2] += 1
        else:
            self[_SLOW_BUCKETS + 3] += 1

    def retry(self) -> None:
        self[_RETRIES] += 1

    @property
    def requests(self) -> list[int]:
        """Requests by status class, then method: index (class - 1) * len(METHODS) + method."""
        return [int(n) for n in self[_REQUESTS:]]

    @property
    def buckets(self) -> list[int]:
        """Requests per duration bucket (not cumulative); the last one is +Inf."""
        slow = [int(n) for n in self[_SLOW_BUCKETS:_REQUESTS]]
        return [int(sum(self[_REQUESTS:])) - sum(slow), *slow]

    @property
    def duration_sum(self) -> float:
        return self[_DURATION_SUM]

    @property
    def bytes_in(self) -> int:
        return int(self[_BYTES_IN])

    @property
    def bytes_out(self) -> int:
        return int(self[_BYTES_OUT])

    @property
    def retries(self) -> int:
        return int(self[_RETRIES])


class EntryPointStats:
    """Connection gauges and the stats of requests that reached no router."""

    __slots__ = ("open_connections", "tcp_open_connections", "unrouted")

    def __init__(self) -> None:
        self.open_connections = 0  # HTTP(S) connections
        self.tcp_open_connections = 0  # connections proxied by TCP routers
        self.unrouted = TargetStats()


class TcpStats:
    """Counters of one TCP router and its service: a TCP stream has no requests, so
    connections (accepted, open, failed to reach a backend) and bytes each way."""

    __slots__ = ("bytes_in", "bytes_out", "connections", "failed", "open")

    def __init__(self) -> None:
        self.connections = 0
        self.open = 0
        self.failed = 0  # no server, or the backend could not be reached
        self.bytes_in = 0  # from clients
        self.bytes_out = 0  # to clients

    def view(self) -> dict[str, int]:
        return {
            "connections": self.connections,
            "open_connections": self.open,
            "failed": self.failed,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
        }


def _empty_view() -> dict[str, Any]:
    return {
        "requests": {},
        "duration": {"buckets": [0] * (len(BUCKETS) + 1), "sum": 0.0, "count": 0},
        "bytes_in": 0,
        "bytes_out": 0,
        "retries": 0,
    }


def _merge(view: dict[str, Any], stats: TargetStats) -> None:
    requests: dict[str, dict[str, int]] = view["requests"]
    for i, count in enumerate(stats.requests):
        if count:
            by_method = requests.setdefault(STATUS_CLASSES[i // _N_METHODS], {})
            method = METHODS[i % _N_METHODS]
            by_method[method] = by_method.get(method, 0) + count
    duration = view["duration"]
    duration["buckets"] = [a + b for a, b in zip(duration["buckets"], stats.buckets, strict=True)]
    duration["sum"] += stats.duration_sum
    duration["count"] += sum(stats.buckets)
    view["bytes_in"] += stats.bytes_in
    view["bytes_out"] += stats.bytes_out
    view["retries"] += stats.retries


class WorkerMetrics:
    """All counters of one worker, keyed by names only at build and collect time."""

    __slots__ = ("entrypoints", "targets", "tcp")

    def __init__(self) -> None:
        self.entrypoints: dict[str, EntryPointStats] = {}
        self.targets: dict[tuple[str, str, str], TargetStats] = {}
        self.tcp: dict[tuple[str, str], TcpStats] = {}

    def entrypoint(self, name: str) -> EntryPointStats:
        stats = self.entrypoints.get(name)
        if stats is None:
            stats = self.entrypoints[name] = EntryPointStats()
        return stats

    def target(self, entrypoint: str, router: str, service: str) -> TargetStats:
        """The stats object for a graph target (created once, reused across graphs)."""
        key = (entrypoint, router, service)
        stats = self.targets.get(key)
        if stats is None:
            stats = self.targets[key] = TargetStats()
            self.entrypoint(entrypoint)
        return stats

    def tcp_route(self, router: str, service: str) -> TcpStats:
        """The stats object of a TCP route (created once, reused across graphs)."""
        key = (router, service)
        stats = self.tcp.get(key)
        if stats is None:
            stats = self.tcp[key] = TcpStats()
        return stats

    def collect(self) -> dict[str, Any]:
        """Plain nested dicts: {"entrypoints"|"routers"|"services": {name: view}, "tcp":
        {"routers"|"services": {name: TcpStats.view()}}}.

        Bucket counts are per bucket (not cumulative), the last one is +Inf; entrypoint
        views add "open_connections" (HTTP) and "tcp_open_connections".
        """
        entrypoints: dict[str, dict[str, Any]] = {}
        routers: dict[str, dict[str, Any]] = {}
        services: dict[str, dict[str, Any]] = {}
        for name, ep in self.entrypoints.items():
            view = entrypoints[name] = _empty_view()
            view["open_connections"] = ep.open_connections
            view["tcp_open_connections"] = ep.tcp_open_connections
            _merge(view, ep.unrouted)
        for (ep_name, router, service), stats in self.targets.items():
            _merge(entrypoints[ep_name], stats)
            if router:
                _merge(routers.setdefault(router, _empty_view()), stats)
            if service:
                _merge(services.setdefault(service, _empty_view()), stats)
        tcp_routers: dict[str, dict[str, int]] = {}
        tcp_services: dict[str, dict[str, int]] = {}
        for (router, service), tcp in self.tcp.items():
            view = tcp.view()
            tcp_routers[router] = _add(tcp_routers.get(router), view)
            tcp_services[service] = _add(tcp_services.get(service), view)
        return {
            "entrypoints": entrypoints,
            "routers": routers,
            "services": services,
            "tcp": {"routers": tcp_routers, "services": tcp_services},
        }


def _add(total: dict[str, int] | None, view: dict[str, int]) -> dict[str, int]:
    if total is None:
        return dict(view)
    return {key: total[key] + value for key, value in view.items()}
