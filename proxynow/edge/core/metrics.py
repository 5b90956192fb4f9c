"""Per-worker request metrics: plain increments, aggregated only when collected.

One `TargetStats` exists per (entrypoint, router, service) and is bound to the graph's
target when the graph is built, so recording a request is one dict lookup and a few
increments in a row the request's labels select: no locks, no label formatting, no lookups
by name. Requests that match no router count against the entrypoint's unrouted stats. The
stats outlive graph swaps (counters are cumulative), so they live here, not in the graph.

The labels Traefik gives a request (`code`, `method`, `protocol`, and for TLS requests
`tls_version`, `tls_cipher`) are packed into one int, the row key (`request_key`): the
status itself in the low bits, then the method's index, the protocol's, and the id of the
connection's TLS (version, cipher) pair in this worker's `TlsTable`. A row is allocated on
the first request with that key and holds [count, duration sum, bytes in, bytes out, then
one count per duration bucket after the first]; a target sees a handful of keys, so its
memory stays a few rows. The control plane decodes the keys (`split_key`) at scrape time.

`metrics.prometheus.headerLabels` (label name -> request header) adds one more part to the
key, above the TLS id: the id of the request's combination of those headers' values in
this worker's `HeaderLabels` table. The values are client-chosen, so the table is bounded:
a value is cut to `VALUE_LIMIT` bytes, the first `LABEL_CAP` distinct combinations get an
id of their own and every later one shares `OVERFLOW_ID`, whose label values are
`OVERFLOW_VALUE`. Id 0, the key's default, is the combination of no such header (every
label empty, as Traefik gives a missing header). Without headerLabels there is no table
and a request pays nothing for it (the id is set by a request hook on the routers'
chains, edge/http/header_labels.py).

`collect()` returns plain lists and dicts (picklable, JSON-safe): the raw rows per target,
which proxynow/observe/ turns into Prometheus families and observe/views.py into
per-name views (requests by status class and method) for the control socket and tests.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Sequence
from typing import Any, TypeAlias

__all__ = [
    "BELOW_HEADER",
    "BUCKETS",
    "HEADER_SHIFT",
    "LABEL_CAP",
    "METHODS",
    "METHOD_BITS",
    "OVERFLOW_ID",
    "OVERFLOW_VALUE",
    "PROTOCOLS",
    "PROTOCOL_MASK",
    "P_GRPC",
    "P_GRPC_WEB",
    "P_SSE",
    "P_WEBSOCKET",
    "ROUTING_BUCKETS",
    "ROW_SLOW",
    "VALUE_LIMIT",
    "EntryPointStats",
    "HeaderLabels",
    "TargetStats",
    "TcpStats",
    "TlsTable",
    "WorkerMetrics",
    "header_id",
    "request_key",
    "split_key",
]

BUCKETS = (0.1, 0.3, 1.2, 5.0)  # Traefik's default duration buckets, in seconds
# Traefik's method label (pkg/middlewares/metrics): the verbs of RFC 9110, PATCH and PRI;
# anything else is one value, so clients cannot grow the label set.
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
    "PRI",
    "EXTENSION_METHOD",
)
# Traefik's protocol label, in the order its middleware tests them (the first match wins).
PROTOCOLS = ("http", "websocket", "sse", "grpc-web", "grpc")

# Row key layout: status (0..999) | method << 10 | protocol << 14 | TLS id << 17
# | header-label id << 32 (TLS ids stay below 2**15: a worker sees a few dozen pairs).
_METHOD_SHIFT = 10
_PROTOCOL_SHIFT = 14
_TLS_SHIFT = 17
HEADER_SHIFT = 32
_TLS_MASK = (1 << (HEADER_SHIFT - _TLS_SHIFT)) - 1
BELOW_HEADER = (1 << HEADER_SHIFT) - 1  # a key's bits below the header-label id
# headerLabels bounds (docs/metrics.md): distinct value combinations per worker, and the
# bytes kept of each value; the control plane applies the same cap to its sums.
LABEL_CAP = 100
OVERFLOW_ID = LABEL_CAP + 1
OVERFLOW_VALUE = "other"
VALUE_LIMIT = 256
_STATUS_MASK = (1 << _METHOD_SHIFT) - 1
_METHOD_MASK = (1 << (_PROTOCOL_SHIFT - _METHOD_SHIFT)) - 1


class _MethodBits(dict[bytes, int]):
    """The method's part of a row key, the one definition of the method index:
    `METHOD_BITS[method]`, unknown methods sharing the last index. A subscript, not
    `.get(method, default)`, because the hot path spells it inline (edge/http1/protocol.py)."""

    def __missing__(self, method: bytes) -> int:
        return _EXTENSION_BITS


METHOD_BITS = _MethodBits(
    {name.encode("ascii"): i << _METHOD_SHIFT for i, name in enumerate(METHODS[:-1])}
)
_EXTENSION_BITS = (len(METHODS) - 1) << _METHOD_SHIFT
assert len(METHODS) <= _METHOD_MASK + 1, "the method index outgrew its bits"
P_WEBSOCKET = 1 << _PROTOCOL_SHIFT
P_SSE = 2 << _PROTOCOL_SHIFT
P_GRPC_WEB = 3 << _PROTOCOL_SHIFT
P_GRPC = 4 << _PROTOCOL_SHIFT
PROTOCOL_MASK = 0x7 << _PROTOCOL_SHIFT

# Row slots: 0 count, 1 duration sum (seconds), 2 bytes in, 3 bytes out, then
ROW_SLOW = 4  # per-bucket counts after the first bucket, the last one +Inf

# A string: `array` is not subscriptable at run time before Python 3.12 (and mypyc compiles
# an `if TYPE_CHECKING: ... else: ...` alias as unreachable).
Row: TypeAlias = "array[float]"


def request_key(status: int, method: bytes, protocol: int = 0, tls: int = 0) -> int:
    """The row key of a request (the hot path inlines this; `protocol` is a P_* value,
    `tls` a value from `TlsTable.bits`)."""
    return status | METHOD_BITS[method] | protocol | tls


def split_key(key: int) -> tuple[int, str, str, int]:
    """(status, method label, protocol label, TLS id) of a row key."""
    return (
        key & _STATUS_MASK,
        METHODS[(key >> _METHOD_SHIFT) & _METHOD_MASK],
        PROTOCOLS[(key >> _PROTOCOL_SHIFT) & 0x7],
        (key >> _TLS_SHIFT) & _TLS_MASK,
    )


def header_id(key: int) -> int:
    """The header-label combination id of a row key (0: none of the headers)."""
    return key >> HEADER_SHIFT


class HeaderLabels:
    """This worker's combinations of headerLabels values, by the id a row key carries.

    `labels` are the Prometheus label names, sorted; `headers` the lowercased header
    names in the same order. Ids 1..LABEL_CAP go to the first combinations seen, then
    every new one gets OVERFLOW_ID: the table never holds more than LABEL_CAP entries
    besides the all-empty one (id 0). It maps a combination (values cut to VALUE_LIMIT
    bytes) to its key bits, so that a known one costs one dict lookup.
    """

    __slots__ = ("headers", "ids", "labels")

    def __init__(self, labels: dict[str, str]) -> None:
        self.labels = tuple(sorted(labels))
        self.headers = tuple(labels[name].lower().encode("latin-1") for name in self.labels)
        self.ids: dict[tuple[bytes, ...], int] = {(b"",) * len(self.labels): 0}

    def bits(self, values: tuple[bytes, ...]) -> int:
        """The header part of a row key for these values (one per label, b"" if absent)."""
        found = self.ids.get(values)
        return self._new(values) if found is None else found

    def _new(self, values: tuple[bytes, ...]) -> int:
        """A combination not in the table: cut, then known, added, or the overflow."""
        if any(len(value) > VALUE_LIMIT for value in values):
            values = tuple([value[:VALUE_LIMIT] for value in values])
            found = self.ids.get(values)
            if found is not None:
                return found
        ids = self.ids
        if len(ids) > LABEL_CAP:  # the cap, besides the all-empty combination
            return OVERFLOW_ID << HEADER_SHIFT
        found = ids[values] = len(ids) << HEADER_SHIFT
        return found

    def dump(self) -> dict[str, Any]:
        """{"names": label names, "values": {id: [value, ...]}} (UTF-8, bad bytes replaced)."""
        values = {
            str(found >> HEADER_SHIFT): [value.decode("utf-8", "replace") for value in combination]
            for combination, found in self.ids.items()
            if found
        }
        return {"names": list(self.labels), "values": values}


class TargetStats:
    """Counters for one (entrypoint, router, service) triple: one row per label key.

    A row is an array of doubles (counts are exact up to 2**53), so a request touches one
    small buffer rather than one Python int object per counter. A request faster than the
    first bucket bound (the usual case) adds to three slots of its row.
    """

    __slots__ = ("first", "rest", "retries", "rows", "width")

    def __init__(self, buckets: Sequence[float] = BUCKETS) -> None:
        self.rows: dict[int, Row] = {}
        self.first = buckets[0] if buckets else float("inf")
        self.rest = tuple(buckets[1:])
        self.width = ROW_SLOW + len(buckets)
        self.retries = 0

    def observe(self, key: int, duration: float, bytes_in: int, bytes_out: int) -> None:
        """Count one finished request under its row key (`request_key`)."""
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = array("d", bytes(8 * self.width))
        row[0] += 1
        row[1] += duration
        row[3] += bytes_out
        if bytes_in:
            row[2] += bytes_in
        if duration > self.first:
            row[ROW_SLOW + bisect_left(self.rest, duration)] += 1

    def retry(self) -> None:
        self.retries += 1

    def dump(self) -> list[list[float]]:
        """The rows as [key, count, sum, bytes in, bytes out, slow buckets...]."""
        return [[key, *row] for key, row in self.rows.items()]


class TlsTable:
    """This worker's (TLS version, cipher) pairs, by the small id a row key carries.

    A connection looks its pair up once, after the handshake; requests then pay nothing.
    """

    __slots__ = ("ids",)

    def __init__(self) -> None:
        self.ids: dict[tuple[str, str], int] = {}

    def bits(self, version: str, cipher: str) -> int:
        """The TLS part of a row key for a connection with this version and cipher."""
        pair = (version, cipher)
        tls_id = self.ids.get(pair)
        if tls_id is None:
            tls_id = self.ids[pair] = len(self.ids) + 1
        return tls_id << _TLS_SHIFT

    def dump(self) -> dict[str, list[str]]:
        return {str(tls_id): list(pair) for pair, tls_id in self.ids.items()}


# proxynow_routing_duration_seconds: the router lookups the HTTP protocol times (a
# connection's first request, and the first after a graph swap: two perf_counter reads
# cost about what the lookup of a short table does, so not every request pays them);
# bounds in seconds, from a hash hit to a long rule scan.
ROUTING_BUCKETS = (1e-06, 2.5e-06, 5e-06, 1e-05, 2.5e-05, 5e-05, 0.0001, 0.001)


class EntryPointStats:
    """Connection gauges, the stats of requests that reached no router, and the timed
    router lookups."""

    __slots__ = ("open_connections", "routing", "tcp_open_connections", "unrouted")

    def __init__(self, buckets: Sequence[float] = BUCKETS) -> None:
        self.open_connections = 0  # HTTP(S) connections
        self.tcp_open_connections = 0  # connections proxied by TCP routers
        self.unrouted = TargetStats(buckets)
        # [count, sum, then one count per bucket after the first, the last +Inf]
        self.routing = array("d", bytes(8 * (2 + len(ROUTING_BUCKETS))))

    def routed(self, seconds: float) -> None:
        """Count one timed router lookup."""
        routing = self.routing
        routing[0] += 1
        routing[1] += seconds
        if seconds > ROUTING_BUCKETS[0]:
            routing[2 + bisect_left(ROUTING_BUCKETS, seconds, 1) - 1] += 1


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


class WorkerMetrics:
    """All counters of one worker, keyed by names only at build and collect time."""

    __slots__ = ("buckets", "entrypoints", "header_labels", "targets", "tcp", "tls")

    def __init__(
        self, buckets: Sequence[float] = BUCKETS, header_labels: dict[str, str] | None = None
    ) -> None:
        self.buckets = tuple(sorted(buckets))
        # None without metrics.prometheus.headerLabels: then nothing reads a header for it
        self.header_labels = HeaderLabels(header_labels) if header_labels else None
        self.entrypoints: dict[str, EntryPointStats] = {}
        self.targets: dict[tuple[str, str, str], TargetStats] = {}
        self.tcp: dict[tuple[str, str], TcpStats] = {}
        self.tls = TlsTable()

    def entrypoint(self, name: str) -> EntryPointStats:
        stats = self.entrypoints.get(name)
        if stats is None:
            stats = self.entrypoints[name] = EntryPointStats(self.buckets)
        return stats

    def target(self, entrypoint: str, router: str, service: str) -> TargetStats:
        """The stats object for a graph target (created once, reused across graphs)."""
        key = (entrypoint, router, service)
        stats = self.targets.get(key)
        if stats is None:
            stats = self.targets[key] = TargetStats(self.buckets)
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
        """Plain data, the raw rows: "buckets" (the bounds), "tls" ({id: [version,
        cipher]}), "labels" (headerLabels' `HeaderLabels.dump()`, absent without them),
        "targets" ([[entrypoint, router, service, retries, rows]], unrouted
        requests with router and service ""), "open" ({entrypoint: [HTTP connections,
        TCP-routed connections]}), "routing" ({entrypoint: EntryPointStats.routing as a
        list}), "tcp" ({"routers" | "services": {name: TcpStats.view()}}).

        Only the rows: this runs on the worker's loop, so the per-name views are made by
        whoever reads it (`observe/views.py`), in the control plane.
        """
        targets: list[list[Any]] = []
        for name, ep in self.entrypoints.items():
            targets.append([name, "", "", ep.unrouted.retries, ep.unrouted.dump()])
        for (ep_name, router, service), stats in self.targets.items():
            targets.append([ep_name, router, service, stats.retries, stats.dump()])
        open_connections = {
            name: [ep.open_connections, ep.tcp_open_connections]
            for name, ep in self.entrypoints.items()
        }
        routing = {name: list(ep.routing) for name, ep in self.entrypoints.items()}
        collected: dict[str, Any] = {
            "buckets": list(self.buckets),
            "tls": self.tls.dump(),
            "targets": targets,
            "open": open_connections,
            "routing": routing,
            "tcp": self._tcp_views(),
        }
        if self.header_labels is not None:
            collected["labels"] = self.header_labels.dump()
        return collected

    def _tcp_views(self) -> dict[str, dict[str, dict[str, int]]]:
        tcp_routers: dict[str, dict[str, int]] = {}
        tcp_services: dict[str, dict[str, int]] = {}
        for (router, service), tcp in self.tcp.items():
            view = tcp.view()
            tcp_routers[router] = _add(tcp_routers.get(router), view)
            tcp_services[service] = _add(tcp_services.get(service), view)
        return {"routers": tcp_routers, "services": tcp_services}


def _add(total: dict[str, int] | None, view: dict[str, int]) -> dict[str, int]:
    if total is None:
        return dict(view)
    return {key: total[key] + value for key, value in view.items()}
