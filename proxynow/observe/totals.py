"""Request totals across workers, and the accumulator that keeps them from going back.

`Totals.from_worker` decodes one worker's `WorkerMetrics.collect()` (edge/core/metrics.py) into
series keyed by label values: HTTP rows by (entrypoint, router, service, code, method,
protocol), TLS request counts by (entrypoint, router, service, TLS version, cipher),
retries by service, open connections and sampled router-lookup times by entrypoint.
`Totals.add` sums two of them.

`Accumulator` is what the control plane keeps between scrapes. A worker's counters are
cumulative only while it lives: when it dies, its replacement starts from zero. So the
accumulator remembers the last collection of every worker process, keyed by (worker slot,
pid), and when a process is no longer among the living its last counters move into
`retired`, which is added to every later total. A counter can then only grow (what a
worker counted between its last scrape and its death is lost; that undercounts, never
goes back). A live worker that did not answer a scrape is counted with its last answer.
Gauges (open connections) come from the living only. Pure: no clocks, no I/O.

With `headerLabels`, a series key ends with the header values (one per label, in label-name
order; `()` without them). A worker bounds its own combinations, but the union over workers
and their replacements would not be bounded, so the accumulator's `LabelCap` admits the
first `LABEL_CAP` distinct combinations it decodes, over every worker that ever ran, and
folds every later one into the overflow series (`OVERFLOW_VALUE` for each label), as a
worker folds its own overflow. An admitted combination stays admitted and a folded one
stays folded, so that a series only ever gains rows: no counter goes back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from proxynow.edge.core.metrics import (
    BUCKETS,
    LABEL_CAP,
    OVERFLOW_ID,
    OVERFLOW_VALUE,
    header_id,
    split_key,
)
from proxynow.edge.tls.contexts import go_cipher_name

__all__ = ["Accumulator", "HttpKey", "LabelCap", "TlsKey", "Totals", "tls_version_label"]

Values = tuple[str, ...]  # headerLabels' values, in label-name order
# (entrypoint, router, service, code, method, protocol, header values); router and service
# are "" for a request that matched no router.
HttpKey = tuple[str, str, str, str, str, str, Values]
# (entrypoint, router, service, tls_version, tls_cipher, header values)
TlsKey = tuple[str, str, str, str, str, Values]
WorkerId = tuple[int, int]  # (worker slot, pid)
K = TypeVar("K")

# Python's ssl version names → Traefik's tls_version label values.
_VERSIONS = {"TLSv1": "1.0", "TLSv1.1": "1.1", "TLSv1.2": "1.2", "TLSv1.3": "1.3"}


def tls_version_label(version: str) -> str:
    return _VERSIONS.get(version, version)


class LabelCap:
    """Which header-value combinations get series of their own (see the module's doc)."""

    __slots__ = ("admitted", "names", "overflow")

    def __init__(self, names: Iterable[str] = ()) -> None:
        self.names: tuple[str, ...] = tuple(names)
        self.overflow: Values = (OVERFLOW_VALUE,) * len(self.names)
        self.admitted: set[Values] = set()

    def values(self, combination: Values) -> Values:
        """The series values of a combination a worker reported by its values."""
        if not any(combination) or combination in self.admitted:
            return combination
        if len(self.admitted) >= LABEL_CAP:
            return self.overflow
        self.admitted.add(combination)
        return combination

    def table(self, data: Mapping[str, Any]) -> dict[int, Values]:
        """A worker's header-label ids, as series values (0: every header missing)."""
        labels = data.get("labels")
        empty = ("",) * len(self.names)
        table = {0: empty, OVERFLOW_ID: self.overflow}
        if labels is None or tuple(labels.get("names", ())) != self.names:
            return table  # none configured (or not these): every row is the empty one
        for found, combination in sorted(labels["values"].items(), key=lambda i: int(i[0])):
            table[int(found)] = self.values(tuple(combination))
        return table


@dataclass(slots=True)
class Totals:
    """Counter series (and the open-connections gauge) summed over workers.

    An HTTP row is [count, duration sum, bytes in, bytes out, then per-bucket counts after
    the first bucket (not cumulative), the last one +Inf], as a worker's rows are.
    """

    buckets: tuple[float, ...] = BUCKETS
    http: dict[HttpKey, list[float]] = field(default_factory=dict)
    tls: dict[TlsKey, float] = field(default_factory=dict)
    retries: dict[str, float] = field(default_factory=dict)
    open_connections: dict[str, float] = field(default_factory=dict)
    # entrypoint -> sampled router lookups: [count, sum, per-bucket counts after the first]
    routing: dict[str, list[float]] = field(default_factory=dict)

    @classmethod
    def from_worker(cls, data: Mapping[str, Any], cap: LabelCap | None = None) -> Totals:
        """The totals of one worker's collection (an empty one for a worker not started);
        `cap` decodes headerLabels' ids (none configured without it)."""
        totals = cls(tuple(data.get("buckets", BUCKETS)))
        tls_pairs = {int(i): pair for i, pair in data.get("tls", {}).items()}
        headers = (cap if cap is not None else LabelCap()).table(data)
        for entrypoint, router, service, retries, rows in data.get("targets", ()):
            if retries and service:
                totals.retries[service] = totals.retries.get(service, 0) + retries
            for key, *values in rows:
                key = int(key)
                found = headers.get(header_id(key), headers[OVERFLOW_ID])
                totals._add_row(entrypoint, router, service, key, values, tls_pairs, found)
        for name, counts in data.get("open", {}).items():
            totals.open_connections[name] = float(sum(counts))
        for name, row in data.get("routing", {}).items():
            totals.routing[name] = list(row)
        return totals

    def _add_row(
        self,
        entrypoint: str,
        router: str,
        service: str,
        key: int,
        values: list[float],
        tls_pairs: Mapping[int, list[str]],
        headers: Values,
    ) -> None:
        status, method, protocol, tls_id = split_key(key)
        http_key = (entrypoint, router, service, str(status), method, protocol, headers)
        _add_list(self.http, http_key, values)
        if tls_id:
            version, cipher = tls_pairs.get(tls_id, ("", ""))
            tls_key = (
                entrypoint,
                router,
                service,
                tls_version_label(version),
                go_cipher_name(cipher),
                headers,
            )
            self.tls[tls_key] = self.tls.get(tls_key, 0) + values[0]

    def add(self, other: Totals) -> None:
        """Add `other`'s series to these (buckets must agree: every worker has the same)."""
        for http_key, row in other.http.items():
            _add_list(self.http, http_key, row)
        _add_counts(self.tls, other.tls)
        _add_counts(self.retries, other.retries)
        _add_counts(self.open_connections, other.open_connections)
        for name, row in other.routing.items():
            _add_list(self.routing, name, row)

    def copy(self) -> Totals:
        return Totals(
            self.buckets,
            {key: list(row) for key, row in self.http.items()},
            dict(self.tls),
            dict(self.retries),
            dict(self.open_connections),
            {name: list(row) for name, row in self.routing.items()},
        )


def _add_list(table: dict[Any, list[float]], key: Any, row: list[float]) -> None:
    mine = table.get(key)
    if mine is None:
        table[key] = list(row)
    else:
        for i, value in enumerate(row):
            mine[i] += value


def _add_counts(table: dict[K, float], other: Mapping[K, float]) -> None:
    for key, value in other.items():
        table[key] = table.get(key, 0) + value


class Accumulator:
    """Merges the workers' collections, scrape after scrape, without going backwards."""

    __slots__ = ("_cap", "_last", "_retired")

    def __init__(self, header_labels: Iterable[str] = ()) -> None:
        """`header_labels`: headerLabels' label names (any order), if configured."""
        self._retired = Totals()
        self._last: dict[WorkerId, Totals] = {}
        self._cap = LabelCap(sorted(header_labels))

    def update(self, collections: Iterable[Mapping[str, Any]], alive: Iterable[int]) -> Totals:
        """Take `Supervisor.collect()`'s answers ([{"worker", "pid", "metrics"}]) and the
        pids of the worker processes that exist now; the totals over every worker that
        ever ran."""
        for answer in collections:
            worker: WorkerId = (answer["worker"], answer["pid"])
            self._last[worker] = Totals.from_worker(answer["metrics"], self._cap)
        living = set(alive)
        for worker in [w for w in self._last if w[1] not in living]:
            gone = self._last.pop(worker)
            gone.open_connections = {}  # a dead worker holds no connection
            if not self._retired.http:
                self._retired.buckets = gone.buckets
            self._retired.add(gone)
        total = self._retired.copy()
        for totals in self._last.values():
            if not total.http:
                total.buckets = totals.buckets
            total.add(totals)
        return total
